"""The grid shows each picture whole on request: Zoom, the Z key, or a long press."""

import pytest

from tests.helpers import real_public_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def grid_page(page):
    real_public_image("dog", size=(1200, 300))  # a panorama
    for _ in range(3):
        real_public_image("dog")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/validate/grid?label=dog")
    return page


def test_zoom_shows_the_whole_picture_and_marks_nothing(grid_page, screenshot_dir):
    page = grid_page
    page.get_by_role("link", name="Show picture 1 whole").click()
    dialog = page.locator("dialog.zoom")
    dialog.wait_for(state="visible")
    shown = dialog.locator("img")
    page.wait_for_function("() => document.querySelector('dialog.zoom img').complete")
    box = shown.bounding_box()
    assert box["width"] <= 390 and box["width"] > 300, "the picture fills a phone's width"
    page.screenshot(path=str(screenshot_dir / "grid-zoom-390.png"))
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.locator(".grid-pick:checked").count() == 0


def test_the_z_key_zooms_the_focused_picture(grid_page):
    page = grid_page
    page.locator(".grid-pick").first.focus()
    page.keyboard.press("z")
    page.locator("dialog.zoom").wait_for(state="visible")
    assert page.evaluate("document.activeElement.textContent") == "Close"
    page.keyboard.press("Enter")
    page.locator("dialog.zoom").wait_for(state="hidden")
    assert page.locator(".grid-pick:checked").count() == 0


def test_a_long_press_zooms_instead_of_marking(browser, live_server):
    for _ in range(2):
        real_public_image("dog")
    context = browser.new_context(
        base_url=live_server.url, has_touch=True, viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    page.goto("/validate/grid?label=dog")
    choice = page.locator(".grid-choice").first
    choice.dispatch_event("pointerdown", {"pointerType": "touch", "isPrimary": True})
    page.locator("dialog.zoom").wait_for(state="visible")
    choice.dispatch_event("pointerup", {"pointerType": "touch", "isPrimary": True})
    choice.dispatch_event("click")
    assert page.locator(".grid-pick:checked").count() == 0
    page.keyboard.press("Escape")
    choice.tap()  # a short tap still marks
    assert page.locator(".grid-pick:checked").count() == 1
    context.close()


def test_without_javascript_zoom_opens_the_picture(browser, live_server):
    image = real_public_image("dog")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/validate/grid?label=dog")
    href = page.get_by_role("link", name="Show picture 1 whole").get_attribute("href")
    assert href == image.url("display")
    context.close()
