"""README's quick start, walked in a browser: the demo loaded, a newcomer votes, the demo
moderator signs in and finds the queue, and an export finds the demo's pictures.

Its screenshots land in tests/screenshots/; with UPDATE_SCREENSHOTS=1 they are written to
docs/screenshots/, where README shows them.
"""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from labels.models import Label
from tests.helpers import photo_bytes
from tests.test_demo import NAMES
from validation.models import Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture
def shots(screenshot_dir) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        return DOCS
    return screenshot_dir


def test_the_quick_start_works_as_readme_tells_it(browser, live_server, shots, tmp_path, settings):
    settings.DATA_DIR = tmp_path
    for name in NAMES:
        Label.objects.create(name=name)
    out = io.StringIO()
    call_command("demo", stdout=out)
    password = (tmp_path / "demo_moderator_password").read_text().strip()
    assert password in out.getvalue()

    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = phone.new_page()
    page.goto("/validate")
    assert page.locator("#tutorial").is_visible()
    page.locator("#task-image[data-shown]").wait_for()
    page.screenshot(path=str(shots / "quickstart-validate.png"))
    before = Vote.objects.count()
    page.get_by_role("button", name="Yes").click()
    page.locator("#answered:not([hidden])").wait_for()
    assert Vote.objects.count() == before + 1
    page.screenshot(path=str(shots / "quickstart-answered.png"))
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "mine.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes(640, 480)}],
    )
    page.get_by_label("Labels for this photo").fill("cat")
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    assert "1 accepted" in page.content()
    phone.close()

    desktop = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    page = desktop.new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("demo-moderator")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Moderation queue").first.click()
    page.wait_for_url("**/admin/donations/image/queue/")
    assert page.locator(".queue-card").count() == 1, "the newcomer's photo waits"
    page.screenshot(path=str(shots / "quickstart-queue.png"))

    page.goto("/export?query=cat+%7C+cup&format=json&status=any&preview=1")
    assert page.locator("#count-images").inner_text() == "3", "the cat, the coffee, the rocket"
    page.screenshot(path=str(shots / "quickstart-export.png"))
    desktop.close()
