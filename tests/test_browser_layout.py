"""Every public page fits the screen, from a 320-px phone to a 1920-px desktop."""

import pytest

from annotations import drawing
from donations.models import ImageLabel
from tests.helpers import cast, make_voter, real_public_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [320, 390, 768, 1366, 1920]


@pytest.fixture
def site():
    """A few pictures with votes, so that tables, grids and charts have rows."""
    images = [real_public_image("dog", "grass", size=(640, 420)) for _ in range(3)]
    images.append(real_public_image("cat", size=(300, 900)))  # a portrait photo
    voters = [make_voter() for _ in range(3)]
    for image in images:
        for pair in image.pairs.all():
            for voter in voters:
                cast(pair, voter, True)
    # Two people's outlines of the first dog, so that /statistics shows their agreement.
    dog = images[0].pairs.select_related("image", "label__parent").get(label__name="dog")
    ImageLabel.objects.filter(pk=dog.pk).update(status=ImageLabel.Status.VALIDATED)
    dog.status = ImageLabel.Status.VALIDATED
    for left in (100, 110):
        rect = {"type": "rect", "left": left, "top": 100, "width": 200, "height": 150}
        drawing.draw(dog, make_voter(), [rect])
    return images


def pages(site) -> list[str]:
    image = site[0]
    return [
        "/",
        "/about",
        "/api",
        "/labels",
        "/export",
        "/export?query=dog+%7C+cat&format=json&preview=1",
        "/statistics",
        "/donate",
        "/donate/mine",
        "/browse",
        "/browse?label=dog",
        f"/image/{image.uuid}",
        "/validate",
        "/validate/grid",
        "/validate/grid?label=dog",
        "/label",
        "/me",
        "/releases",
        "/no-such-page",
    ]


def test_every_page_fits_every_width_without_scrolling_sideways(page, site, screenshot_dir):
    too_wide = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for url in pages(site):
            page.goto(url)
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll > inner:
                too_wide.append(f"{url} at {width}: {scroll} px")
            if width in (390, 1366) and url in ("/api", "/statistics"):
                name = url.strip("/") + f"-{width}.png"
                page.screenshot(path=str(screenshot_dir / name), full_page=True)
    assert not too_wide, "pages wider than the screen: " + "; ".join(too_wide)


def test_the_main_column_uses_the_width_of_a_desktop(page, site, screenshot_dir):
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/browse")
    for image in page.locator(".grid img").all():
        image.scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshot_dir / "browse-1366.png"))
    main = page.locator("main").bounding_box()
    assert main["width"] > 1100, "main sizes to its content instead of the page"
    thumbnails = page.locator(".grid img").all()
    tops = {round(image.bounding_box()["y"]) for image in thumbnails}
    assert len(thumbnails) == 4 and len(tops) == 1, "four pictures fit in one row"


def test_every_page_title_names_its_heading(page, site):
    wrong = []
    for url in pages(site):
        page.goto(url)
        heading = page.get_by_role("heading", level=1).first.inner_text().strip()
        if not page.title().startswith(heading):
            wrong.append(f"{url}: title {page.title()!r}, heading {heading!r}")
    assert not wrong, "; ".join(wrong)


CONTRAST = """(selector) => {
  const el = document.querySelector(selector);
  const rgba = (text) => text.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  // The background the text sits on: the element's own, laid over its ancestors'.
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    const c = rgba(getComputedStyle(node).backgroundColor);
    if ((c[3] ?? 1) > 0) layers.push(c);
    if ((c[3] ?? 1) === 1) break;
  }
  let bg = [255, 255, 255];
  for (const c of layers.reverse()) {
    const a = c[3] ?? 1;
    bg = bg.map((v, i) => c[i] * a + v * (1 - a));
  }
  const fg = rgba(getComputedStyle(el).color);
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}"""


def test_the_current_and_hovered_navigation_items_are_readable(page, site):
    page.goto("/browse")
    assert page.evaluate(CONTRAST, 'nav a[aria-current="page"]') >= 4.5
    page.locator("nav a", has_text="Donate").hover()
    assert page.evaluate(CONTRAST, 'nav a[href="/donate"]') >= 4.5
