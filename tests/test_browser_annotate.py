"""Drawing outlines in a real browser, with a mouse and with a finger, and the crowd
accepting them on /validate/annotations."""

import json

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from annotations.models import Annotation
from donations.models import ImageLabel
from people.identity import SESSION_KEY
from tests.helpers import make_voter, real_public_image, vote
from validation.models import Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MASTER = (2000, 1500)  # the display rendition is 1024 × 768: half the master's scale


def trusted(n: int):
    """A voter whose gold record makes three agreeing answers settle a question."""
    return make_voter(trusted=True, gold_correct=20, first_ip_prefix=f"198.51.{n}.0/24")


def validated_pair(label: str = "dog", size=MASTER) -> ImageLabel:
    """A public picture the crowd has said shows `label`: a pair waiting for an outline."""
    image = real_public_image(label, size=size)
    pair = image.pairs.get()
    for n in range(3):
        vote(pair, trusted(n + 1), Vote.Answer.YES)
    pair.refresh_from_db()
    assert pair.status == ImageLabel.Status.VALIDATED
    return pair


def signed_in_as(browser, live_server, voter, address: str, **options):
    """A browser context whose session is `voter`'s, coming from `address`."""
    session = SessionStore()
    session[SESSION_KEY] = voter.pk
    session.create()
    context = browser.new_context(
        base_url=live_server.url, extra_http_headers={"X-Real-IP": address}, **options
    )
    host = live_server.url.split("//")[1].split(":")[0]
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "domain": host,
                "path": "/",
            }
        ]
    )
    return context


@pytest.fixture
def addresses(settings):
    """Each browser context says where it comes from (as nginx would), so that the
    voters come from networks of their own."""
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"


def on_screen(page, x: float, y: float) -> tuple[float, float]:
    """Where the master pixel (x, y) is on the screen, at the editor's current zoom."""
    return page.evaluate(
        """([x, y]) => {
          const svg = document.getElementById('stage');
          const p = svg.createSVGPoint(); p.x = x; p.y = y;
          const s = p.matrixTransform(svg.getScreenCTM());
          return [s.x, s.y];
        }""",
        [x, y],
    )


def drag(page, start, end):
    page.mouse.move(*on_screen(page, *start))
    page.mouse.down()
    for k in range(1, 6):
        t = k / 5
        page.mouse.move(
            *on_screen(page, start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
        )
    page.mouse.up()


def click(page, x, y):
    page.mouse.click(*on_screen(page, x, y))


def close_to(actual: float, expected: float, within: float = 2.0) -> bool:
    return abs(actual - expected) <= within


def shapes_of(annotation: Annotation, number: int | None = None) -> list[dict]:
    return annotation.revisions.get(number=number or annotation.revision).shapes


def test_a_rectangle_a_polygon_and_an_ellipse_drawn_with_a_mouse_are_stored_in_master_pixels_and_the_crowd_accepts_them(
    browser, live_server, addresses, screenshot_dir, tmp_path
):
    pair = validated_pair("dog")
    author = make_voter(first_ip_prefix="203.0.113.0/24")
    context = signed_in_as(
        browser, live_server, author, "203.0.113.7", viewport={"width": 1366, "height": 900}
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/annotate")
    page.locator("#annotate[data-ready]").wait_for()
    assert "Outline every dog" in page.get_by_role("heading", level=1).inner_text()

    drag(page, (200, 300), (700, 800))  # the rectangle tool is the first one
    page.keyboard.press("p")
    for x, y in [(1000, 200), (1400, 300), (1300, 700), (1050, 650)]:
        click(page, x, y)
    click(page, 1000, 200)  # on the first point: closes the polygon
    page.keyboard.press("+")  # zoom in (150 %) for the small ellipse
    assert page.locator("#zoom-level").inner_text() == "150 %"
    page.keyboard.press("e")
    drag(page, (900, 900), (1100, 1000))
    assert page.locator("#shape-count").inner_text() == "3 shapes"
    page.screenshot(path=str(screenshot_dir / "annotate-1366.png"), full_page=True)

    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "Your outline of the dog is saved" in page.content()
    annotation = Annotation.objects.get(pair=pair)
    assert annotation.author == author and annotation.revision == 1
    rect, polygon, ellipse = shapes_of(annotation)
    assert rect["type"] == "rect" and all(
        close_to(rect[k], v)
        for k, v in {"left": 200, "top": 300, "width": 500, "height": 500}.items()
    ), rect
    assert polygon["type"] == "polygon" and len(polygon["points"]) == 4
    for point, (x, y) in zip(
        polygon["points"], [(1000, 200), (1400, 300), (1300, 700), (1050, 650)], strict=True
    ):
        assert close_to(point["x"], x) and close_to(point["y"], y), polygon
    assert ellipse["type"] == "ellipse" and all(
        close_to(ellipse[k], v) for k, v in {"left": 900, "top": 900, "rx": 100, "ry": 50}.items()
    ), ellipse

    # The author edits the outline: the rectangle moves; a second revision is stored.
    page.goto(f"/annotate?annotation={annotation.uuid}")
    page.locator("#annotate[data-ready]").wait_for()
    page.keyboard.press("v")
    drag(page, (450, 550), (550, 600))
    with page.expect_navigation():
        page.get_by_role("button", name="Save changes").click()
    assert "Revision 2 of your outline is saved" in page.content()
    annotation.refresh_from_db()
    assert annotation.revision == 2
    moved = shapes_of(annotation)[0]
    assert close_to(moved["left"], 300) and close_to(moved["top"], 350), moved
    first = json.loads(
        page.request.get(f"/v1/annotation?annotation_id={annotation.uuid}&rev=1").text()
    )
    assert close_to(first["annotations"][0]["left"], 200), "revision 1 is still readable"
    assert not errors, errors
    context.close()

    # Three trusted voters, each from a network of their own, accept the outline.
    for n in range(3):
        checker = trusted(10 + n)
        context = signed_in_as(browser, live_server, checker, f"198.51.{10 + n}.20")
        page = context.new_page()
        page.goto("/validate/annotations")
        assert page.get_by_role("heading", level=1).inner_text() == (
            "Is each of these 3 outlines exactly one dog, drawn tightly?"
        )
        assert page.locator("#task-image .outline > *").count() == 3
        if n == 0:
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(screenshot_dir / "check-outline-390.png"), full_page=True)
        page.locator("#task-image[data-shown]").wait_for()
        with page.expect_navigation():
            page.keyboard.press("y")
        context.close()
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.ACCEPTED
    exports_carry_the_drawn_outline(live_server, pair, tmp_path)


# What was drawn, after the edit moved the rectangle: boxes (x1, y1, x2, y2) in master pixels.
DRAWN_BOXES = [(300, 350, 800, 850), (1000, 200, 1400, 700), (900, 900, 1100, 1000)]


def exports_carry_the_drawn_outline(live_server, pair, folder):
    """The accepted outline's COCO, YOLO, VOC and LabelMe downloads load in their readers
    with the boxes drawn above (in the exported picture's pixels)."""
    import requests
    import supervision as sv
    from pycocotools.coco import COCO

    from tests.test_export_outlines import archive, boxes, unpack

    def download(kind: str) -> bytes:
        response = requests.get(
            live_server.url + "/v1/export",
            {"query": "dog", "format": kind},
            headers={"X-Real-IP": "192.0.2.80"},
            timeout=60,
        )
        assert response.status_code == 200, response.content[:300]
        return response.content

    def near(found, scale: float) -> bool:
        want = sorted(("dog", *(v * scale for v in box)) for box in DRAWN_BOXES)
        return len(found) == 3 and all(
            name == "dog" and all(close_to(a, b, 3) for a, b in zip(got, box, strict=True))
            for (name, *got), (_, *box) in zip(sorted(found), want, strict=True)
        )

    (folder / "coco.json").write_bytes(download("coco"))
    coco = COCO(str(folder / "coco.json"))
    entries = coco.loadAnns(coco.getAnnIds())
    (picture,) = coco.dataset["images"]
    scale = picture["width"] / MASTER[0]
    found = [("dog", x, y, x + w, y + h) for x, y, w, h in (e["bbox"] for e in entries)]
    assert near(found, scale), found
    assert all(int(coco.annToMask(e).sum()) > 0 for e in entries)

    top = unpack(download("yolo"), folder / "yolo")
    yolo = sv.DetectionDataset.from_yolo(
        images_directory_path=f"{top}/images",
        annotations_directory_path=f"{top}/labels",
        data_yaml_path=f"{top}/data.yaml",
    )
    top = unpack(download("voc"), folder / "voc")
    voc = sv.DetectionDataset.from_pascal_voc(
        images_directory_path=f"{top}/JPEGImages", annotations_directory_path=f"{top}/Annotations"
    )
    for dataset in (yolo, voc):
        ((path, image, _),) = list(dataset)
        assert str(pair.image.uuid) in path
        assert near(boxes(dataset)[str(pair.image.uuid)], image.shape[1] / MASTER[0])

    document = json.loads(archive(download("labelme"))[f"annotations/{pair.image.uuid}.json"])
    scale = document["imageWidth"] / MASTER[0]
    found = []
    for shape in document["shapes"]:
        xs, ys = [x for x, _ in shape["points"]], [y for _, y in shape["points"]]
        found.append((shape["label"], min(xs), min(ys), max(xs), max(ys)))
    assert [s["shape_type"] for s in document["shapes"]] == ["rectangle", "polygon", "polygon"]
    assert near(found, scale), found


def test_a_finger_draws_a_rectangle_on_a_phone(browser, live_server, addresses, screenshot_dir):
    pair = validated_pair("cat")
    author = make_voter(first_ip_prefix="203.0.113.0/24")
    context = signed_in_as(
        browser,
        live_server,
        author,
        "203.0.113.8",
        viewport={"width": 390, "height": 844},
        has_touch=True,
        is_mobile=True,
    )
    page = context.new_page()
    page.goto("/annotate")
    page.locator("#annotate[data-ready]").wait_for()
    start, end = on_screen(page, 400, 300), on_screen(page, 1200, 900)
    stage = page.locator("#stage")
    touch = {"pointerType": "touch", "pointerId": 7, "isPrimary": True, "button": 0, "buttons": 1}
    stage.dispatch_event("pointerdown", {**touch, "clientX": start[0], "clientY": start[1]})
    for k in range(1, 6):
        x = start[0] + (end[0] - start[0]) * k / 5
        y = start[1] + (end[1] - start[1]) * k / 5
        stage.dispatch_event("pointermove", {**touch, "clientX": x, "clientY": y})
    stage.dispatch_event("pointerup", {**touch, "buttons": 0, "clientX": end[0], "clientY": end[1]})
    assert page.locator("#shape-count").inner_text() == "1 shape"
    page.screenshot(path=str(screenshot_dir / "annotate-390.png"), full_page=True)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "the editor fits the phone's width"
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).tap()
    (rect,) = shapes_of(Annotation.objects.get(pair=pair))
    # A finger is less precise than the numbers say: a display pixel is two master pixels.
    assert all(
        close_to(rect[k], v, 4)
        for k, v in {"left": 400, "top": 300, "width": 800, "height": 600}.items()
    ), rect
    context.close()


def test_without_javascript_the_editor_page_offers_validation_and_checking_posts_a_form(
    browser, live_server, addresses
):
    from annotations import drawing

    pair = validated_pair("dog", size=(640, 480))
    rect = {"type": "rect", "left": 40, "top": 30, "width": 200, "height": 150, "angle": 0}
    annotation = drawing.draw(pair, make_voter(), [rect]).annotation
    checker = trusted(20)
    context = signed_in_as(browser, live_server, checker, "198.51.20.5", java_script_enabled=False)
    page = context.new_page()
    page.goto("/annotate")
    assert page.get_by_text("The drawing editor needs JavaScript").is_visible()
    assert not page.locator("#editor").is_visible()
    page.get_by_role("link", name="checking outlines other people drew").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Is this outline exactly one dog, drawn tightly?"
    )
    page.get_by_role("button", name="No").click()
    page.wait_for_url("**/validate/annotations")
    vote = annotation.votes.get()
    assert vote.voter == checker and vote.answer == Vote.Answer.NO
    context.close()


def test_the_grid_of_crops_is_marked_with_clicks_and_sent_at_once(
    browser, live_server, addresses, screenshot_dir
):
    from annotations import drawing

    outlines = []
    for n in range(4):
        pair = validated_pair("dog", size=(800, 600))
        box = {
            "type": "rect",
            "left": 50 + 100 * n,
            "top": 60,
            "width": 120 + 40 * n,
            "height": 200,
            "angle": 0,
        }
        ring = {"type": "ellipse", "left": 500, "top": 300, "rx": 80, "ry": 50, "angle": 20}
        outlines.append(
            drawing.draw(pair, make_voter(), [box, ring] if n == 3 else [box]).annotation
        )
    checker = trusted(30)
    context = signed_in_as(
        browser, live_server, checker, "198.51.30.5", viewport={"width": 1366, "height": 900}
    )
    page = context.new_page()
    page.goto("/validate/annotations/grid?label=dog")
    crops = page.locator(".grid-choice")
    assert crops.count() == 4
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshot_dir / "check-grid-1366.png"), full_page=True)
    crops.nth(0).click()
    crops.nth(2).click()
    marked = {page.locator(".grid-pick").nth(k).get_attribute("value") for k in (0, 2)}
    assert "(2 marked)" in page.get_by_role("button", name="Send").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "check-grid-390.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    assert "4 answers recorded" in page.content()
    for outline in outlines:
        expected = Vote.Answer.YES if str(outline.uuid) in marked else Vote.Answer.NO
        assert outline.votes.get(voter=checker).answer == expected
    context.close()


def test_a_polygon_that_crosses_itself_is_marked_with_the_reason_and_nothing_is_stored(
    browser, live_server, addresses
):
    validated_pair("dog", size=(800, 600))
    context = signed_in_as(browser, live_server, make_voter(), "203.0.113.9")
    page = context.new_page()
    page.goto("/annotate")
    page.locator("#annotate[data-ready]").wait_for()
    drag(page, (50, 50), (200, 150))
    page.keyboard.press("p")
    for x, y in [(300, 100), (500, 300), (500, 100), (300, 300)]:  # a bow tie
        click(page, x, y)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator("#shape-error")
    error.wait_for()
    assert error.inner_text().startswith("This polygon was not saved: the polygon crosses itself")
    box, polygon = error.bounding_box(), page.locator(".shape.invalid").bounding_box()
    assert abs(box["y"] - (polygon["y"] + polygon["height"])) < 20, "the reason is under the shape"
    assert not Annotation.objects.exists()
    page.keyboard.press("Delete")  # the refused polygon is selected: delete it, save the rest
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert [s["type"] for s in shapes_of(Annotation.objects.get())] == ["rect"]
    context.close()


def test_on_the_check_page_a_key_answers_once_and_only_for_a_picture_on_the_screen(
    browser, live_server, addresses
):
    from annotations import drawing
    from annotations.models import AnnotationVote

    rect = {"type": "rect", "left": 40, "top": 30, "width": 200, "height": 150, "angle": 0}
    for _ in range(2):
        drawing.draw(validated_pair("dog", size=(640, 480)), make_voter(), [rect])
    context = signed_in_as(browser, live_server, trusted(40), "198.51.40.5")
    page = context.new_page()
    held = []
    page.route("**/*display*", lambda route: held.append(route))  # the picture does not arrive
    page.goto("/validate/annotations", wait_until="domcontentloaded")
    page.keyboard.press("y")
    page.get_by_text("Wait for the picture to appear").wait_for(state="attached")
    assert not AnnotationVote.objects.exists(), "an answer for a picture nobody saw"
    for route in held:
        route.continue_()
    page.unroute("**/*display*")
    page.locator("#task-image[data-shown]").wait_for()
    with page.expect_navigation():
        for _ in range(8):  # what a held key sends: one press, then repeats
            page.keyboard.down("y")
    page.keyboard.up("y")
    page.wait_for_load_state()
    assert AnnotationVote.objects.count() == 1
    context.close()


def test_a_polygon_can_start_inside_the_rectangle_just_drawn(browser, live_server, addresses):
    validated_pair("dog", size=(800, 600))
    context = signed_in_as(browser, live_server, make_voter(), "203.0.113.11")
    page = context.new_page()
    page.goto("/annotate")
    page.locator("#annotate[data-ready]").wait_for()
    drag(page, (100, 100), (500, 400))  # selected once drawn
    page.keyboard.press("p")
    for x, y in [(200, 200), (300, 200), (250, 300), (200, 200)]:
        click(page, x, y)
    assert page.locator("#shape-count").inner_text() == "2 shapes"
    rect = page.locator(".shape").first.bounding_box()
    start = on_screen(page, 100, 100)
    assert abs(rect["x"] - start[0]) < 3 and abs(rect["y"] - start[1]) < 3, "the rectangle stayed"
    context.close()


def test_a_double_click_takes_a_polygons_point_away_and_adds_one_on_the_polygon(
    browser, live_server, addresses
):
    validated_pair("dog", size=(800, 600))
    context = signed_in_as(browser, live_server, make_voter(), "203.0.113.12")
    page = context.new_page()
    page.goto("/annotate")
    page.locator("#annotate[data-ready]").wait_for()
    page.keyboard.press("p")
    for x, y in [(100, 100), (500, 100), (500, 400), (300, 500), (100, 400), (100, 100)]:
        click(page, x, y)
    points = "document.querySelector('.shape').getAttribute('points').split(' ').length"
    assert page.evaluate(points) == 5
    page.keyboard.press("v")
    page.mouse.dblclick(*on_screen(page, 300, 500))  # on a point
    assert page.evaluate(points) == 4
    page.mouse.dblclick(*on_screen(page, 300, 200))  # inside, nearest the top edge
    assert page.evaluate(points) == 5
    assert page.locator(".handle-point").count() == 5
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    (polygon,) = shapes_of(Annotation.objects.get())
    assert [round(p["y"]) for p in polygon["points"]][:3] == [100, 200, 100]
    context.close()
