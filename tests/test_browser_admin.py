"""The admin works under the site's Content-Security-Policy: no style or script refused."""

import pytest
from django.contrib.auth.models import User

from tests.helpers import real_public_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_moderators_pages_render_under_the_csp(page, screenshot_dir):
    User.objects.create_superuser("root", "r@example.org", "a long enough password")
    image = real_public_image("dog")
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Moderation queue").first.click()
    page.wait_for_url("**/queue/")
    for url in (
        "/admin/donations/image/",
        f"/admin/donations/image/{image.pk}/change/",
        "/admin/labels/label/",
        "/admin/donations/imagelabel/",
    ):
        page.goto(url)
    page.goto("/admin/donations/image/")
    thumbnail = page.locator("img.admin-thumb").first.bounding_box()
    assert thumbnail["width"] <= 96, "the list's thumbnails keep their size"
    page.goto(f"/admin/donations/image/{image.pk}/change/")
    preview = page.locator("img.admin-preview").first.bounding_box()
    assert preview["width"] <= 512
    page.screenshot(path=str(screenshot_dir / "admin-image.png"), full_page=True)


def test_a_moderator_rejects_with_the_keyboard_and_undoes_it(page, screenshot_dir):
    from donations.ingest import ingest
    from donations.models import Image
    from tests.helpers import photo_bytes

    User.objects.create_superuser("root", "r@example.org", "a long enough password")
    image = ingest(photo_bytes(300, 200), filename="p.jpg").image
    page.goto("/admin/login/?next=/admin/donations/image/queue/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/queue/")
    page.locator(".queue-pick").first.focus()
    page.keyboard.press("Space")
    page.keyboard.press("r")
    page.get_by_role("button", name="Yes, reject 1 picture").click()
    page.get_by_text("undo from the queue").wait_for()
    assert Image.objects.get(pk=image.pk).status == "rejected"
    page.get_by_role("link", name="Rejected, undo possible (1)").click()
    page.locator(".queue-pick").first.focus()
    page.keyboard.press("Space")
    page.screenshot(path=str(screenshot_dir / "moderation-undo.png"), full_page=True)
    page.keyboard.press("u")
    page.get_by_text("1 picture(s) sent back to review").wait_for()
    assert Image.objects.get(pk=image.pk).status == "pending"
