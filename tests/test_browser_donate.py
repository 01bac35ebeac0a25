"""A donor's journey in a real browser: donate, see the result, a moderator approves, browse."""

import contextlib

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Error as PlaywrightError

from donations.models import Image
from tests.helpers import make_label, photo_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_donate_two_photos_approve_one_and_find_it(page, browser, live_server, screenshot_dir):
    make_label("dog", description="A pet that barks.")
    photo = photo_bytes(640, 480)
    page.goto("/donate")
    page.screenshot(path=str(screenshot_dir / "donate.png"), full_page=True)
    page.set_input_files(
        "input[type=file]",
        files=[
            {"name": "walk.jpg", "mimeType": "image/jpeg", "buffer": photo},
            {"name": "walk-copy.jpg", "mimeType": "image/jpeg", "buffer": photo},
        ],
    )
    assert page.locator(".preview").count() == 2, "the page previews both photos"
    page.get_by_label("What is in the pictures?").fill("dog")
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    assert "1 accepted, 1 already here" in page.get_by_role("status").first.inner_text()
    page.screenshot(path=str(screenshot_dir / "donate-result.png"), full_page=True)
    image = Image.objects.get()
    assert image.status == "pending"

    User.objects.create_superuser("moderator", "m@example.org", "a long enough password")
    admin = browser.new_context(base_url=live_server.url)
    moderator = admin.new_page()
    moderator.goto("/admin/login/?next=/admin/donations/image/queue/")
    moderator.get_by_label("Username").fill("moderator")
    moderator.get_by_label("Password").fill("a long enough password")
    moderator.get_by_role("button", name="Log in").click()
    moderator.wait_for_url("**/admin/donations/image/queue/")
    moderator.screenshot(path=str(screenshot_dir / "moderation-queue.png"), full_page=True)
    moderator.locator(f"#pick-{image.uuid}").check()
    moderator.get_by_role("button", name="Approve (make public)").click()
    assert "1 picture(s) approved" in moderator.content()
    admin.close()

    page.goto("/browse")
    page.get_by_role("link", name="labelled dog").click()
    page.wait_for_url(f"**/image/{image.uuid}")
    assert page.locator("figure img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert "CC0 1.0" in page.content()
    page.screenshot(path=str(screenshot_dir / "image-page.png"), full_page=True)


def test_donating_without_javascript_still_works(browser, live_server):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "a.png", "mimeType": "image/png", "buffer": photo_bytes(100, 80, "PNG")}],
    )
    page.get_by_role("button", name="Donate").click()
    assert "dedicate them to the public domain" in page.content(), (
        "the server explains what is missing"
    )
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "a.png", "mimeType": "image/png", "buffer": photo_bytes(100, 80, "PNG")}],
    )
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    assert "1 accepted" in page.content()
    context.close()


def photo_file(name: str, shade: int) -> dict:
    return {
        "name": name,
        "mimeType": "image/jpeg",
        "buffer": photo_bytes(320, 240, color=(shade, 90, 200 - shade)),
    }


def test_chosen_photos_stay_chosen_when_the_dedication_is_missing(page):
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]", files=[photo_file(f"{n}.jpg", n * 40) for n in range(3)]
    )
    page.get_by_role("button", name="Donate").click()
    page.locator("#cc0-problem").wait_for()
    assert page.locator(".preview").count() == 3
    assert not Image.objects.exists()
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    assert Image.objects.count() == 3


def test_each_problem_file_is_named_before_anything_is_sent(page):
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]",
        files=[
            photo_file("good.jpg", 10),
            {"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": b""},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"},
        ],
    )
    problems = page.locator("#donate-problems")
    assert "empty.jpg: the file is empty (0 bytes)" in problems.inner_text()
    assert "notes.txt: not a JPEG, PNG or WebP photo" in problems.inner_text()
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    assert Image.objects.count() == 1
    assert Image.objects.get().original_filename == "good.jpg"


def test_remove_stops_an_upload_and_withdraws_one_already_sent(page):
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]", files=[photo_file("first.jpg", 30), photo_file("second.jpg", 160)]
    )
    held = []

    def hold_the_second(route):
        if Image.objects.count() >= 1 or held:
            held.append(route)  # the second upload waits here, unsent
        else:
            route.continue_()

    page.route("**/donate", hold_the_second)
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.locator(".preview.done").wait_for()  # the first was donated
    assert Image.objects.count() == 1
    page.get_by_role("button", name="Remove first.jpg").click()  # sent: withdrawn
    page.get_by_role("button", name="Remove second.jpg").click()  # still sending: stopped
    page.wait_for_function("() => document.querySelectorAll('.preview').length === 0")
    for route in held:
        with contextlib.suppress(PlaywrightError):  # the page already gave up on it
            route.abort()
    assert not Image.objects.exists(), "nothing removed was kept"


def pair_names(image: Image) -> list[str]:
    return sorted(image.pairs.values_list("label__name", flat=True))


def test_on_a_phone_each_photo_gets_labels_of_its_own(page, screenshot_dir):
    for name in ("dog", "cat", "grass"):
        make_label(name)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/donate")
    page.set_input_files(
        "input[type=file]", files=[photo_file("a.jpg", 10), photo_file("b.jpg", 90)]
    )
    page.get_by_label("What is in the pictures?").fill("grass")
    own = page.get_by_label("Labels for this photo")
    own.nth(0).fill("dog")
    own.nth(1).fill("cat")
    page.screenshot(path=str(screenshot_dir / "donate-photo-labels-390.png"), full_page=True)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "the previews fit the phone"
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    first, second = Image.objects.order_by("pk")
    assert pair_names(first) == ["dog", "grass"] and pair_names(second) == ["cat", "grass"]


def test_without_javascript_each_photo_is_labelled_on_the_result_page(browser, live_server):
    for name in ("dog", "cat"):
        make_label(name)
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    page.goto("/donate")
    assert "up to 20 photos and" in page.locator("#images-help").inner_text()
    page.set_input_files(
        "input[type=file]", files=[photo_file("a.jpg", 10), photo_file("b.jpg", 90)]
    )
    page.get_by_label("I took these photos").check()
    page.get_by_role("button", name="Donate").click()
    page.wait_for_url("**/donate/result/**")
    for index, name in enumerate(("dog", "cat")):
        page.get_by_label("Labels for this photo").nth(index).fill(name)
        page.get_by_role("button", name="Add").nth(index).click()
        page.wait_for_url("**/donate/result/**")
        assert "Added to your picture" in page.content()
    first, second = Image.objects.order_by("pk")
    assert pair_names(first) == ["dog"] and pair_names(second) == ["cat"]
    context.close()
