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
