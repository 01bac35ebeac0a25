"""A visitor votes anonymously, passes training, donates, signs up (confirming the address
from a mail received by a real SMTP server on loopback), and on a second device signs in
and is trusted at once, with the votes and the donation of the first."""

import email
import re
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from donations.models import Image
from people.models import Voter
from tests.helpers import photo_bytes, real_public_image
from validation.models import Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple 7"


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content))
        self.arrived.set()
        return "250 OK"

    def wait_for_link(self, pattern: str) -> str:
        assert self.arrived.wait(20), "no mail arrived"
        body = self.messages[-1].get_payload(decode=True) or b""
        if self.messages[-1].is_multipart():
            body = self.messages[-1].get_payload(0).get_payload(decode=True)
        match = re.search(pattern, body.decode())
        assert match, body.decode()
        return match.group(0)


@pytest.fixture
def inbox(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    controller.stop()


def current_pair_id(page) -> int:
    return int(page.locator("#vote-form").get_attribute("action").split("/")[2])


def test_a_trained_visitor_signs_up_and_a_second_device_is_trusted_at_once(
    page, browser, live_server, inbox, screenshot_dir
):
    from donations.models import ImageLabel

    for answer in (True, True, False):
        image = real_public_image("dog")
        image.pairs.update(is_gold=True, gold_answer=answer)
    for _ in range(12):
        real_public_image("dog")

    # Anonymous: vote until trained.
    page.goto("/validate")
    for _ in range(15):
        if Voter.objects.filter(trusted=True).exists():
            break
        pair = ImageLabel.objects.get(pk=current_pair_id(page))
        truth = pair.gold_answer if pair.is_gold else True
        page.locator("#task-image[data-shown]").wait_for()
        page.keyboard.press("y" if truth else "n")
        page.wait_for_function(
            "previous => document.querySelector('#vote-form').action.split('/')[4] !== previous",
            arg=str(pair.pk),
        )
    visitor = Voter.objects.get()
    assert visitor.trusted and visitor.user is None
    votes = Vote.objects.filter(voter=visitor).count()

    # … and donate a photo.
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "mine.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes(320, 240)}],
    )
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    donation = Image.objects.get(original_filename="mine.jpg")

    # Sign up; the mail comes through the SMTP server.
    page.get_by_role("link", name="Sign in").click()
    page.get_by_role("link", name="sign up").click()
    page.screenshot(path=str(screenshot_dir / "sign-up.png"), full_page=True)
    assert page.get_by_role("heading", level=1).inner_text() in page.title()
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/")
    link = inbox.wait_for_link(r"http://[^\s]+/accounts/confirm-email/[^\s]+")
    assert inbox.messages[-1]["To"] == "ada@example.org"
    page.goto(link)
    page.screenshot(path=str(screenshot_dir / "confirm-email.png"), full_page=True)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/settings")
    assert page.get_by_role("heading", level=1).inner_text() == "Settings"

    # A second device: sign in, and the account is trusted at once.
    other = browser.new_context(base_url=live_server.url)
    phone = other.new_page()
    phone.goto("/accounts/login/")
    phone.screenshot(path=str(screenshot_dir / "sign-in.png"), full_page=True)
    phone.get_by_label("Login:").fill("ada@example.org")
    phone.get_by_label("Password:", exact=True).fill(PASSWORD)
    phone.get_by_role("button", name="Sign In").click()
    phone.wait_for_url("**/settings")
    phone.goto("/me")
    assert "Yes" in phone.locator(".badge").first.inner_text(), "trusted at once"
    assert str(votes) in phone.locator(".counts").inner_text()
    phone.goto("/donate/mine")
    assert "mine.jpg" in phone.content()
    account = Voter.objects.get(user__username="ada")
    assert account.pk == visitor.pk and account.trusted
    assert Vote.objects.filter(voter=account).count() == votes
    donation.refresh_from_db()
    assert donation.donor == account
    other.close()
