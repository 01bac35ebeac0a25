"""A person finds the releases, reads what changed, downloads one and the revocation list."""

import json
from pathlib import Path

import pytest

from exports.query import LabelQuery
from exports.releases import cut_release
from tests.helpers import cast, make_image, make_label, make_pair, make_voter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def releases():
    dog, cat = make_label("dog"), make_label("cat")
    voters = [make_voter() for _ in range(3)]
    images = []
    for label in (dog, dog, cat):
        pair = make_pair(label, image=make_image())
        for voter in voters:
            cast(pair, voter, True)
        images.append(pair.image)
    cut_release(
        "2027-01", LabelQuery.parse("dog"), status="any", notes="Dogs only, for a first try."
    )
    cut_release("2027-02", LabelQuery.parse("dog | cat"), status="any", notes="Cats join the dogs.")
    images[0].decide("hide")  # taken down after both releases
    return images


@pytest.mark.parametrize("width", [390, 1366])
def test_a_person_reads_the_releases_and_downloads_one(page, releases, screenshot_dir, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Releases").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Releases"
    assert page.locator('nav a[aria-current="page"]').inner_text() == "Releases"
    newest = page.locator("#release-2027-02")
    assert newest.get_by_role("heading", level=2).inner_text() == "Release 2027-02"
    assert "Cats join the dogs." in newest.inner_text()
    assert "1 pair added, 0 removed, 0 changed" in newest.inner_text()
    assert "The first release." in page.locator("#release-2027-01").inner_text()
    page.screenshot(path=str(screenshot_dir / f"releases-{width}.png"), full_page=True)
    # No horizontal scrolling, whatever the width.
    wide = page.evaluate(
        "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right"
        " > document.documentElement.clientWidth).map(e => e.tagName + ' ' + e.textContent.slice(0, 40))"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide

    with page.expect_download() as download_info:
        newest.get_by_role("link", name="JSON Lines", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "imagemonkey-release-2027-02.jsonl"
    lines = Path(download.path()).read_text().splitlines()
    uuids = {json.loads(line)["uuid"] for line in lines}
    assert uuids == {str(image.uuid) for image in releases[1:]}  # the hidden one is left out

    revocations = page.request.get(
        page.get_by_role("link", name="revocations.jsonl").get_attribute("href")
    )
    (entry,) = [json.loads(line) for line in revocations.text().splitlines()]
    assert entry["uuid"] == str(releases[0].uuid) and entry["reason"] == "reports"


def test_the_releases_page_fits_every_width_with_its_quality_open(page, releases, screenshot_dir):
    too_wide = []
    for width in [320, 390, 768, 1366, 1920]:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/releases")
        for summary in page.locator("summary").all():
            summary.click()
        if width == 390:
            page.screenshot(path=str(screenshot_dir / "releases-quality-390.png"), full_page=True)
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            culprits = page.evaluate(
                "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
                " > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + ' '"
                " + Math.round(e.getBoundingClientRect().width)).slice(0, 12)"
            )
            too_wide.append(f"{width}: {scroll} px {culprits}")
    assert not too_wide, too_wide
