"""A person builds a query on /export, previews what matches and downloads a CSV."""

import csv
import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from donations.models import ImageLabel
from donations.storage import public_storage
from tests.helpers import cast, make_image, make_label, make_pair, make_voter, photo_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pictures():
    """Two dog pictures the crowd settled on, one it doubts, one it rejected, and a cat."""
    dog = make_label("dog")
    make_label("eye", parent=dog)
    voters = [make_voter() for _ in range(3)]
    images = {}
    for name, answers, status in [
        ("dog 1", [True, True, True], ImageLabel.Status.VALIDATED),
        ("dog 2", [True, True, True], ImageLabel.Status.VALIDATED),
        ("dog 3", [True, True, False], ImageLabel.Status.OPEN),
        ("no dog", [False, False, False], ImageLabel.Status.REJECTED),
        ("cat", [True, True, True], ImageLabel.Status.VALIDATED),
    ]:
        pair = make_pair("cat" if name == "cat" else dog, image=make_image())
        for voter, answer in zip(voters, answers, strict=True):
            cast(pair, voter, answer)
        # What settling decides with trusted voters (these fresh ones are not).
        ImageLabel.objects.filter(pk=pair.pk).update(status=status)
        image = images[name] = pair.image
        public_storage().save(
            image.file_name("thumb"), ContentFile(photo_bytes(256, 192, color=(200, 120, 40)))
        )
    return images


def test_a_person_builds_a_query_previews_it_and_downloads_a_csv(page, pictures, screenshot_dir):
    page.goto("/export")
    assert page.get_by_role("heading", level=1).inner_text() == "Export a dataset"
    assert page.locator('nav a[aria-current="page"]').inner_text() == "Export"
    assert page.get_by_label("Pairs", exact=True).input_value() == "validated"

    page.get_by_label("Query", exact=True).fill("dog")
    page.get_by_label("Add a label").fill("cat")
    page.get_by_role("button", name="Add with “or”").click()
    page.wait_for_url(re.compile(r"add=or"))
    assert page.get_by_label("Query", exact=True).input_value() == "dog | cat"

    page.get_by_role("radio", name=re.compile("^CSV")).check()
    # The script counts as the form changes (the Preview button does it without JavaScript).
    live = page.locator("#live-count")
    live.filter(has_text="3 images match").wait_for()
    page.get_by_label("Add verified negatives").check()
    live.filter(has_text="4 images match").wait_for()

    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(re.compile(r"preview=1"))
    assert page.locator("#match-count").inner_text() == "4"
    assert page.locator("#count-positives").inner_text() == "3"
    assert page.locator("#count-negatives").inner_text() == "1"
    assert page.locator("#estimated-size").inner_text().startswith("≈")
    rows = page.locator("#label-counts tbody tr")
    assert [rows.nth(i).inner_text().split("\t") for i in range(rows.count())] == [
        ["dog", "2", "1"],
        ["cat", "1", "0"],
    ]
    preview = page.locator("#preview-images")
    for name in ("dog 1", "dog 2", "cat", "no dog"):
        assert str(pictures[name].uuid) in preview.inner_text()
    assert str(pictures["dog 3"].uuid) not in preview.inner_text()  # not settled
    assert "no dog" in preview.inner_text()  # the verified negative's badge
    thumbnails = preview.locator("img")
    assert thumbnails.count() == 4
    for index in range(4):  # each thumbnail loaded
        thumbnails.nth(index).scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0",
            arg=thumbnails.nth(index).element_handle(),
        )
    page.set_viewport_size({"width": 1366, "height": 900})
    page.screenshot(path=str(screenshot_dir / "export-1366.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    # Nothing is wider than a phone (a long select option once made the page scroll sideways).
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshot_dir / "export-390.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download as CSV").click()
    download = download_info.value
    assert re.fullmatch(r"imagemonkey-dog-cat-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(Path(download.path()), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["uuid"], row["label"], row["status"]) for row in rows} == {
        (str(pictures["dog 1"].uuid), "dog", "validated"),
        (str(pictures["dog 2"].uuid), "dog", "validated"),
        (str(pictures["no dog"].uuid), "dog", "rejected"),
        (str(pictures["cat"].uuid), "cat", "validated"),
    }


def test_nothing_to_download_is_said_and_the_button_is_disabled(page, pictures, screenshot_dir):
    page.goto("/export?query=dog.has%3D%27eye%27&preview=1")
    assert page.locator("#match-count").inner_text() == "0"
    download = page.locator("#download")
    assert download.is_disabled()
    assert "Nothing to download" in page.locator("#nothing-help").inner_text()
    assert page.get_by_role("link", name=re.compile("^Download")).count() == 0
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "export-nothing-390.png"), full_page=True)


def test_a_wrong_query_is_explained_without_javascript(browser, live_server, pictures):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/export")
    page.get_by_label("Query", exact=True).fill("dog & (cat")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(re.compile(r"preview=1"))
    assert "expected ')' at position 10" in page.locator("#query-errors").inner_text()
    assert page.get_by_label("Query", exact=True).get_attribute("aria-invalid") == "true"
    context.close()


def test_a_query_too_costly_to_run_is_explained_as_it_is_typed_and_on_preview(
    page, pictures, settings, screenshot_dir
):
    settings.EXPORT_MAX_COST = 1  # every query is too costly: the refusal is what is shown
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/export")
    page.get_by_label("Query", exact=True).fill("~dog | ~cat")
    page.locator("#live-count").filter(has_text="too costly to run").wait_for()
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(re.compile(r"preview=1"))
    assert "too costly to run" in page.locator("#query-errors").inner_text()
    assert page.get_by_role("link", name=re.compile("^Download")).count() == 0
    page.screenshot(path=str(screenshot_dir / "export-too-costly-phone.png"), full_page=True)
