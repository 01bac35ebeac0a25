import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_reads_the_home_page_and_finds_the_navigation(page, screenshot_dir):
    page.goto("/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Training a model is easy")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="About").is_visible()
    page.screenshot(path=str(screenshot_dir / "home.png"), full_page=True)

    nav.get_by_role("link", name="About").click()
    page.wait_for_url("**/about")
    assert page.get_by_role("heading", level=1).inner_text() == "About ImageMonkey"
    assert page.locator('nav a[aria-current="page"]').inner_text() == "About"


def test_keyboard_users_can_skip_to_the_content(page):
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("element => element === document.activeElement")
    assert skip.is_visible()
