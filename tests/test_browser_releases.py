"""A person finds the releases, reads what changed, downloads one and the revocation list."""

import json
import tarfile
from pathlib import Path

import pytest

from donations.models import ImageLabel
from exports.query import LabelQuery
from exports.releases import cut_release
from tests.helpers import cast, make_image, make_label, make_pair, make_voter, real_public_image
from tests.test_export_outlines import RECT, accepted
from tests.test_release_outlines import MOVED, accept_again

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


@pytest.fixture
def outlined_release():
    """A release of a real picture whose dog outline was accepted; revised after the cut."""
    image = real_public_image(size=(320, 240))
    dog = make_pair("dog", image, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    outline = accepted(dog, [RECT])
    cut_release("2027-01", LabelQuery.parse("dog"), notes="Dogs, outlined.")
    accept_again(outline, [MOVED])  # after the cut: the release keeps the first box
    return image


@pytest.mark.parametrize("width", [390, 1366])
def test_the_release_page_offers_the_detection_formats_with_the_frozen_outlines(
    page, outlined_release, screenshot_dir, tmp_path, width
):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/releases")
    release = page.locator("#release-2027-01")
    assert "Accepted outlines" in release.inner_text()
    for title in ("YOLO detection (tar)", "Pascal VOC (tar)", "LabelMe JSON (tar)"):
        assert release.get_by_role("link", name=title, exact=True).is_visible(), title
    page.screenshot(path=str(screenshot_dir / f"release-outlines-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    with page.expect_download() as download_info:
        release.get_by_role("link", name="YOLO detection (tar)", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "imagemonkey-release-2027-01.yolo.tar"
    with tarfile.open(download.path()) as tar:
        tar.extractall(tmp_path, filter="data")
    top = tmp_path / "imagemonkey-release-2027-01"
    labels = (top / "labels" / f"{outlined_release.uuid}.txt").read_text()
    # The rectangle 10, 20, 100 × 50 on 320 × 240, as it was accepted before the cut.
    assert labels == "0 0.187500 0.187500 0.312500 0.208333\n"
    assert (top / "images" / f"{outlined_release.uuid}.jpg").is_file()
    assert "# release: 2027-01" in (top / "MANIFEST").read_text()
