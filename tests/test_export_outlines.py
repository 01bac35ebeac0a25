"""Exports carry the outlines the crowd accepted: JSON in the original's shapes, COCO
annotations, YOLO, Pascal VOC and LabelMe, checked with the readers people use."""

import io
import json
import math
import tarfile

import pytest

from annotations import drawing, geometry, tasks
from annotations import voting as outline_voting
from annotations.models import Annotation, AnnotationVote
from donations.models import ImageLabel
from exports.query import LabelQuery, QueryError
from tests.helpers import make_image, make_pair, make_voter, network_of, real_public_image

pytestmark = pytest.mark.django_db(transaction=True)  # exports read in a snapshot of their own

RECT = {"type": "rect", "left": 10, "top": 20, "width": 100, "height": 50, "angle": 0}
TURNED = {"type": "rect", "left": 150, "top": 40, "width": 60, "height": 30, "angle": 30}
ELLIPSE = {"type": "ellipse", "left": 200, "top": 120, "rx": 40, "ry": 25, "angle": 0}
POLYGON = {"type": "polygon", "points": [{"x": 20, "y": 150}, {"x": 120, "y": 160},
                                         {"x": 70, "y": 230}], "angle": 0}  # fmt: skip


def accepted(pair: ImageLabel, shapes: list[dict]) -> Annotation:
    """An outline of `pair`, accepted by three trusted voters."""
    tasks.pair_status_changed(pair.pk, pair.label_id, pair.status)
    pair = ImageLabel.objects.select_related("image", "label__parent").get(pk=pair.pk)
    return crowd_accepts(drawing.draw(pair, make_voter(), shapes).annotation)


def crowd_accepts(annotation: Annotation) -> Annotation:
    """Three trusted voters, each from a network of their own, say yes to the outline."""
    for _ in range(3):
        voter = make_voter(trusted=True, gold_correct=20)
        annotation.refresh_from_db()
        ticket = outline_voting.check_ticket(voter, annotation)
        outline_voting.record_vote(
            annotation.uuid, voter, AnnotationVote.Answer.YES, network_of(voter), ticket=ticket
        )
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.ACCEPTED
    return annotation


def get(client, **params):
    response = client.get("/v1/export", params)
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


@pytest.fixture
def outlined():
    image = make_image(width=320, height=240)
    dog = make_pair("dog", image, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    cat = make_pair("cat", image, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    accepted(dog, [RECT, TURNED, ELLIPSE])
    accepted(cat, [POLYGON])
    plain = make_image(width=100, height=100)
    make_pair("dog", plain, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    return image, plain, dog, cat


def test_json_carries_each_shape_in_the_originals_form_with_its_label(client, outlined):
    image, plain, _, _ = outlined
    rows = {row["uuid"]: row for row in json.loads(get(client, query="dog | cat"))}
    shapes = rows[str(image.uuid)]["annotations"]
    assert shapes == [
        {"label": "dog", "sublabel": "", **RECT},
        {"label": "dog", "sublabel": "", **TURNED},
        {"label": "dog", "sublabel": "", **ELLIPSE},
        {"label": "cat", "sublabel": "", **POLYGON},
    ]
    assert rows[str(plain.uuid)]["annotations"] == []


def test_annotations_only_leaves_out_pictures_without_an_accepted_outline(client, outlined):
    image, plain, _, _ = outlined
    rows = json.loads(get(client, query="dog", annotations_only="true"))
    assert [row["uuid"] for row in rows] == [str(image.uuid)]
    lines = get(client, query="dog", annotations_only="true", format="jsonl").splitlines()
    assert [json.loads(line)["uuid"] for line in lines] == [str(image.uuid)]


def test_a_detection_format_counts_and_previews_only_the_outlined_pictures(client, outlined):
    image, plain, _, _ = outlined
    assert client.get("/v1/export/count", {"query": "dog"}).json() == {"images": 2}
    for kind in ("yolo", "voc", "labelme"):
        counted = client.get("/v1/export/count", {"query": "dog", "format": kind}).json()
        assert counted == {"images": 1}, kind
    page = client.get("/export", {"query": "dog", "format": "yolo"}).content.decode()
    assert str(image.uuid) in page and str(plain.uuid) not in page


def test_an_outline_the_crowd_has_not_accepted_is_not_exported(client):
    image = make_image(width=320, height=240)
    pair = make_pair("dog", image, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    tasks.pair_status_changed(pair.pk, pair.label_id, pair.status)
    pair = ImageLabel.objects.select_related("image", "label__parent").get(pk=pair.pk)
    drawing.draw(pair, make_voter(), [RECT])
    (row,) = json.loads(get(client, query="dog"))
    assert row["annotations"] == []
    assert json.loads(get(client, query="dog", format="coco"))["annotations"] == []


def test_coco_loads_in_pycocotools_with_our_boxes_polygons_and_areas(client, outlined, tmp_path):
    from pycocotools.coco import COCO

    image, _, dog, cat = outlined
    path = tmp_path / "outlines.coco.json"
    path.write_bytes(get(client, query="dog | cat", format="coco"))
    coco = COCO(str(path))
    entries = coco.loadAnns(coco.getAnnIds(imgIds=[image.pk]))
    assert [e["category_id"] for e in entries] == [dog.label_id] * 3 + [cat.label_id]
    assert entries[0]["bbox"] == [10, 20, 100, 50]
    assert entries[0]["segmentation"] == [[10, 20, 110, 20, 110, 70, 10, 70]]
    assert all(e["iscrowd"] == 0 for e in entries)
    assert len({e["id"] for e in coco.dataset["annotations"]}) == len(coco.dataset["annotations"])
    for entry, shape in zip(entries, [RECT, TURNED, ELLIPSE, POLYGON], strict=True):
        # Our area is the exact polygon's; pycocotools' mask counts whole pixels.
        mask = coco.annToMask(entry)
        assert int(mask.sum()) == pytest.approx(entry["area"], rel=0.06)
        assert entry["area"] == pytest.approx(geometry.coco_object(shape, 320, 240)["area"])
    assert entries[2]["area"] == pytest.approx(math.pi * 40 * 25, rel=0.01)  # the ellipse


def test_a_turned_rectangle_exports_turned(client, outlined):
    coco = json.loads(get(client, query="dog", format="coco"))
    turned = coco["annotations"][1]
    points = turned["segmentation"][0]
    xs, ys = points[0::2], points[1::2]
    assert (xs[0], ys[0]) == (150, 40)  # turned about its top-left corner
    # 60 × 30 turned 30° clockwise: the far corner moves right and down.
    assert xs[1] == pytest.approx(150 + 60 * math.cos(math.radians(30)), abs=0.01)
    assert ys[1] == pytest.approx(40 + 60 * math.sin(math.radians(30)), abs=0.01)
    assert turned["bbox"][0] == pytest.approx(min(xs), abs=0.01)
    assert turned["area"] == pytest.approx(60 * 30, rel=1e-6)


def test_the_query_language_compares_sizes_outline_counts_and_coverage(client, outlined):
    image, plain, _, _ = outlined

    def uuids(query):
        return {row["uuid"] for row in json.loads(get(client, query=query))}

    assert uuids("dog & image.width >= 320px") == {str(image.uuid)}
    assert uuids("dog & image.height < 200px") == {str(plain.uuid)}
    assert uuids("dog & image.num_annotations = 2") == {str(image.uuid)}
    assert uuids("dog & image.num_annotations = 0") == {str(plain.uuid)}
    covered = geometry.measured([RECT, TURNED, ELLIPSE], 320, 240)["coverage"] * 100
    assert uuids(f"dog & annotation.coverage > {math.floor(covered)}%") == {str(image.uuid)}
    assert uuids(f"dog & annotation.coverage > {math.ceil(covered) + 1}%") == set()


@pytest.mark.parametrize(
    "text, problem",
    [
        ("image.width >> 3", "a number"),
        ("image.width 3", "one of > < >= <= ="),
        ("image.colour = 3", "'has' after '.'"),
        ("image.width = 99999999999", "a number up to"),
    ],
)
def test_a_bad_attribute_comparison_says_what_was_expected(text, problem):
    with pytest.raises(QueryError) as error:
        LabelQuery.parse(text)
    assert problem in error.value.message


def test_a_bad_attribute_comparison_is_a_400_not_a_500(client):
    response = client.get("/v1/export", {"query": "image.width >= x"})
    assert response.status_code == 400
    assert "a number" in response.json()["error"]


def archive(content: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}


@pytest.fixture
def detections():
    """Two real pictures with accepted outlines, one without."""
    first = real_public_image(size=(320, 240))
    dog = make_pair("dog", first, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    cat = make_pair("cat", first, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    accepted(dog, [RECT, ELLIPSE])
    accepted(cat, [POLYGON])
    second = real_public_image(size=(400, 300))
    dog2 = make_pair("dog", second, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    accepted(dog2, [{"type": "rect", "left": 40, "top": 30, "width": 200, "height": 100}])
    bare = real_public_image(size=(200, 200))
    make_pair("dog", bare, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    return first, second, bare


def unpack(content: bytes, folder) -> str:
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        tar.extractall(folder, filter="data")
        (top,) = {m.name.split("/")[0] for m in tar}
    return str(folder / top)


def boxes(detections):
    """{image file stem: sorted [(class name, x1, y1, x2, y2)]} from a supervision dataset."""
    found = {}
    for path, _image, detection in detections:
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        names = [detections.classes[c] for c in detection.class_id]
        found[stem] = sorted(
            (name, *(round(float(v)) for v in box))
            for name, box in zip(names, detection.xyxy, strict=True)
        )
    return found


EXPECTED = {
    # first picture: the rectangle, the ellipse's box, the triangle's box
    0: [("cat", 20, 150, 120, 230), ("dog", 10, 20, 110, 70), ("dog", 200, 120, 280, 170)],
    1: [("dog", 40, 30, 240, 130)],
}


def expected(detections):
    first, second, _ = detections
    return {str(first.uuid): EXPECTED[0], str(second.uuid): EXPECTED[1]}


def test_yolo_round_trips_through_supervision(client, detections, tmp_path):
    import supervision as sv

    top = unpack(get(client, query="dog | cat", format="yolo"), tmp_path)
    dataset = sv.DetectionDataset.from_yolo(
        images_directory_path=f"{top}/images",
        annotations_directory_path=f"{top}/labels",
        data_yaml_path=f"{top}/data.yaml",
    )
    found = boxes(dataset)
    # supervision rounds a box's normalised corners back to pixels: within a pixel.
    for stem, want in expected(detections).items():
        assert len(found[stem]) == len(want)
        for (name, *box), (want_name, *want_box) in zip(found[stem], want, strict=True):
            assert name == want_name
            assert box == pytest.approx(want_box, abs=1)
    assert str(detections[2].uuid) not in found  # no outline: not in a detection dataset


def test_pascal_voc_round_trips_through_supervision(client, detections, tmp_path):
    import supervision as sv

    top = unpack(get(client, query="dog | cat", format="voc"), tmp_path)
    dataset = sv.DetectionDataset.from_pascal_voc(
        images_directory_path=f"{top}/JPEGImages", annotations_directory_path=f"{top}/Annotations"
    )
    found = boxes(dataset)
    for stem, want in expected(detections).items():
        assert found[stem] == want


def test_labelme_writes_each_outline_as_a_polygon_or_rectangle(client, detections):
    first, second, bare = detections
    files = archive(get(client, query="dog | cat", format="labelme"))
    document = json.loads(files[f"annotations/{first.uuid}.json"])
    assert (document["imageWidth"], document["imageHeight"]) == (320, 240)
    assert document["imagePath"] == f"../images/{first.uuid}.jpg"
    assert document["imageData"] is None
    kinds = [(s["label"], s["shape_type"], len(s["points"])) for s in document["shapes"]]
    assert kinds == [("dog", "rectangle", 2), ("dog", "polygon", 64), ("cat", "polygon", 3)]
    assert document["shapes"][0]["points"] == [[10, 20], [110, 70]]
    assert f"images/{second.uuid}.jpg" in files
    assert not any(str(bare.uuid) in name for name in files)


def test_a_smaller_size_scales_the_boxes_with_the_picture(client, detections):
    first = detections[0]
    files = archive(get(client, query="dog", format="voc", size="256"))
    xml = files[f"Annotations/{first.uuid}.xml"].decode()
    # 320 × 240 shown at 256 × 192: every coordinate times 0.8.
    assert "<width>256</width>" in xml and "<height>192</height>" in xml
    # VOC counts pixels from 1: the box's first column is xmin 8 + 1.
    assert "<xmin>9</xmin>" in xml and "<xmax>88</xmax>" in xml


def test_coco_with_annotations_only_keeps_the_outlined_pictures_and_the_same_annotations(
    client, outlined
):
    image, plain, _, _ = outlined
    everything = json.loads(get(client, query="dog", format="coco"))
    only = json.loads(get(client, query="dog", format="coco", annotations_only="true"))
    assert {entry["id"] for entry in everything["images"]} == {image.pk, plain.pk}
    assert [entry["id"] for entry in only["images"]] == [image.pk]
    assert len(only["annotations"]) == 4
    assert only["annotations"] == everything["annotations"]


def coco_lines(body: bytes) -> dict[str, list[bytes]]:
    """A COCO file's image, category and annotation entries, each as the bytes written."""
    _, rest = body.split(b'"images": [\n', 1)
    images, rest = rest.split(b'], "categories": [\n', 1)
    categories, annotations = rest.split(b'], "annotations": [\n', 1)
    assert annotations.endswith(b"]}\n")
    parts = {"images": images, "categories": categories, "annotations": annotations[:-3]}
    return {name: [line.removeprefix(b",") for line in part.splitlines()] for name, part in parts.items()}  # fmt: skip


def entry_id(line: bytes) -> int:
    return json.loads(line)["id"]


def test_annotations_only_writes_the_outlined_pictures_entries_and_categories_as_the_full_file(
    client, outlined
):
    image, plain, dog, _ = outlined
    # On the outlined picture: a label nobody outlined, and a verified negative.
    bird = make_pair("bird", image, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)
    fox = make_pair("fox", image, status=ImageLabel.Status.REJECTED, probability=0, confidence=1)
    # A label only the picture without outlines has.
    horse = make_pair("horse", plain, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)  # fmt: skip
    second = make_image(width=200, height=100)
    accepted(make_pair("dog", second, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1), [RECT])  # fmt: skip
    params = {"query": "dog | horse", "format": "coco", "negatives": "true", "split": "80/10/10"}
    full = coco_lines(get(client, **params))
    only = coco_lines(get(client, **params, annotations_only="true"))

    outlined_ids = {image.pk, second.pk}
    assert [entry_id(line) for line in full["images"]] == sorted([image.pk, plain.pk, second.pk])
    assert only["images"] == [line for line in full["images"] if entry_id(line) in outlined_ids]
    assert only["categories"] == [
        line for line in full["categories"] if entry_id(line) != horse.label_id
    ]
    assert {entry_id(line) for line in only["categories"]} >= {bird.label_id, fox.label_id}
    assert only["annotations"] == full["annotations"]
    assert dog.label_id in json.loads(only["images"][0])["pos_category_ids"]


def test_an_image_entry_split_between_chunks_still_gives_its_picture_and_categories():
    from exports.renderers import _ImageEntries

    line = b',{"id":1234,"file_name":"a.jpg","imagemonkey_labels":[{"category_id":12345,"status":"open"},{"category_id":7,"x":1}]}\n'  # fmt: skip
    for cut in range(1, len(line)):
        for second in range(cut + 1, len(line) + 1):
            entries = _ImageEntries()
            chunks = [b'{"id":9,"file_name":"b.png"}\n', line[:cut], line[cut:second], line[second:]]  # fmt: skip
            assert b"".join(entries.reading(iter(chunks))) == b"".join(chunks)
            assert entries.category_ids() == [7, 12345], (cut, second)
            bits = entries.images
            assert [n for n in range(len(bits) * 8) if bits[n >> 3] >> (n & 7) & 1] == [9, 1234]
