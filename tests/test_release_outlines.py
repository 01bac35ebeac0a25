"""Releases carry the outlines accepted when they were cut: frozen at the revision the crowd
had accepted, in every format a live export carries them, whatever happens to them later."""

import json

import pytest
from django.db import IntegrityError, transaction

from annotations import drawing, geometry
from annotations.models import Annotation
from donations.models import Image, ImageLabel
from exports.models import Release, ReleaseOutline
from exports.query import LabelQuery
from exports.releases import cut_release
from labels.models import Label
from tests.helpers import make_pair, real_public_image
from tests.test_export import unpacked
from tests.test_export_outlines import (
    ELLIPSE,
    EXPECTED,
    POLYGON,
    RECT,
    accepted,
    boxes,
    crowd_accepts,
    get,
    unpack,
)

pytestmark = pytest.mark.django_db(transaction=True)  # exports read in a snapshot of their own

WIDE = {"type": "rect", "left": 40, "top": 30, "width": 200, "height": 100}
MOVED = {"type": "rect", "left": 5, "top": 5, "width": 30, "height": 30, "angle": 0}
OUTLINE_FORMATS = ["json", "jsonl", "coco", "yolo", "voc", "labelme"]


def validated(label: str, image: Image) -> ImageLabel:
    return make_pair(label, image, status=ImageLabel.Status.VALIDATED, probability=1, confidence=1)


def accept_again(annotation: Annotation, shapes: list[dict]) -> Annotation:
    """A new revision of the outline by its author, accepted by three trusted voters."""
    annotation = Annotation.objects.select_related(
        "author", "pair__image", "pair__label__parent"
    ).get(pk=annotation.pk)
    drawing.revise(annotation, annotation.author, shapes)
    annotation = crowd_accepts(annotation)
    assert annotation.revision == 2
    return annotation


@pytest.fixture
def world():
    """Two real pictures with accepted outlines (dog and cat on the first), one without."""
    first = real_public_image(size=(320, 240))
    dog, cat = validated("dog", first), validated("cat", first)
    dog_outline = accepted(dog, [RECT, ELLIPSE])
    cat_outline = accepted(cat, [POLYGON])
    second = real_public_image(size=(400, 300))
    second_outline = accepted(validated("dog", second), [WIDE])
    bare = real_public_image(size=(200, 200))
    bare_dog = validated("dog", bare)
    return {
        "first": first,
        "second": second,
        "bare": bare,
        "bare_dog": bare_dog,
        "dog": dog_outline,
        "cat": cat_outline,
        "wide": second_outline,
    }


def cut(slug: str = "2027-01") -> Release:
    return cut_release(slug, LabelQuery.parse("dog | cat"))


def released(client, **params) -> bytes:
    return get(client, release="2027-01", status="validated", **params)


def comparable(name: str, content: bytes):
    """A download without what differs between a live export and a release of its moment."""
    if name == "coco":
        coco = json.loads(content)
        for key in ("date_created", "year", "release"):
            coco["info"].pop(key, None)
        return coco
    if name in ("yolo", "voc", "labelme"):
        _, members = unpacked(content)  # the top folder is named after the export
        manifest = members.pop("MANIFEST").decode().splitlines()
        kept = [line for line in manifest if not line.startswith(("# snapshot", "# release"))]
        return members, kept
    return content


def test_a_release_carries_the_outlines_a_live_export_of_its_moment_did_in_every_format(
    client, world
):
    before = {
        name: get(client, query="dog | cat", status="validated", format=name)
        for name in OUTLINE_FORMATS
    }
    release = cut()
    assert release.outlines == 3
    # Then everything changes: a new revision, a rejection, a new outline, a renamed label.
    accept_again(world["dog"], [MOVED])
    Annotation.objects.filter(pk=world["cat"].pk).update(status=Annotation.Status.REJECTED)
    accepted(world["bare_dog"], [RECT])
    Label.objects.filter(name="dog").update(name="hound")
    for name in OUTLINE_FORMATS:
        after = released(client, format=name)
        assert comparable(name, after) == comparable(name, before[name]), name


def test_an_outline_accepted_after_the_cut_is_not_in_the_release(client, world):
    cut()
    accepted(world["bare_dog"], [RECT])
    bare = str(world["bare"].uuid)
    rows = {row["uuid"]: row for row in json.loads(released(client, format="json"))}
    assert rows[bare]["annotations"] == []
    coco = json.loads(released(client, format="coco"))
    assert world["bare"].pk not in {entry["image_id"] for entry in coco["annotations"]}
    _, members = unpacked(released(client, format="yolo"))
    assert not any(bare in name for name in members)
    live = {row["uuid"]: row for row in json.loads(get(client, query="dog"))}
    assert live[bare]["annotations"] == [{"label": "dog", "sublabel": "", **RECT}]


def test_a_new_revision_accepted_after_the_cut_does_not_change_the_releases_geometry(client, world):
    release = cut()
    frozen = ReleaseOutline.objects.get(entry__release=release, annotation_id=world["dog"].pk)
    assert frozen.revision == 1
    accept_again(world["dog"], [MOVED])
    first = str(world["first"].uuid)
    rows = {row["uuid"]: row for row in json.loads(released(client, format="json"))}
    cat = {"label": "cat", "sublabel": "", **POLYGON}
    assert rows[first]["annotations"] == [
        {"label": "dog", "sublabel": "", **RECT},
        {"label": "dog", "sublabel": "", **ELLIPSE},
        cat,
    ]
    live = {row["uuid"]: row for row in json.loads(get(client, query="dog"))}
    assert live[first]["annotations"] == [{"label": "dog", "sublabel": "", **MOVED}, cat]
    # A rejection of the outline later changes nothing either.
    Annotation.objects.filter(pk=world["dog"].pk).update(status=Annotation.Status.REJECTED)
    again = {row["uuid"]: row for row in json.loads(released(client, format="json"))}
    assert again[first]["annotations"] == rows[first]["annotations"]


def test_coco_from_a_release_loads_in_pycocotools_with_the_frozen_areas(client, world, tmp_path):
    from pycocotools.coco import COCO

    cut()
    accept_again(world["dog"], [MOVED])  # after the cut: not in the release
    path = tmp_path / "release.coco.json"
    path.write_bytes(released(client, format="coco"))
    coco = COCO(str(path))
    assert coco.dataset["info"]["release"] == "2027-01"
    first = world["first"]
    entries = coco.loadAnns(coco.getAnnIds(imgIds=[first.pk]))
    dog_id = world["dog"].pair.label_id
    assert [e["category_id"] for e in entries] == [dog_id, dog_id, world["cat"].pair.label_id]
    assert entries[0]["bbox"] == [10, 20, 100, 50]
    for entry, shape in zip(entries, [RECT, ELLIPSE, POLYGON], strict=True):
        assert entry["area"] == pytest.approx(geometry.coco_object(shape, 320, 240)["area"])
        assert int(coco.annToMask(entry).sum()) == pytest.approx(entry["area"], rel=0.06)
    assert {c["name"] for c in coco.dataset["categories"]} == {"dog", "cat"}


def test_yolo_from_a_release_round_trips_through_supervision(client, world, tmp_path):
    import supervision as sv

    cut()
    accept_again(world["wide"], [MOVED])  # after the cut: the release keeps the wide box
    top = unpack(released(client, format="yolo"), tmp_path)
    dataset = sv.DetectionDataset.from_yolo(
        images_directory_path=f"{top}/images",
        annotations_directory_path=f"{top}/labels",
        data_yaml_path=f"{top}/data.yaml",
    )
    found = boxes(dataset)
    want = {str(world["first"].uuid): EXPECTED[0], str(world["second"].uuid): EXPECTED[1]}
    assert set(found) == set(want)  # the picture without an outline is not in it
    for stem, shapes in want.items():
        assert len(found[stem]) == len(shapes)
        for (name, *box), (want_name, *want_box) in zip(found[stem], shapes, strict=True):
            assert name == want_name
            assert box == pytest.approx(want_box, abs=1)


def test_a_releases_detection_count_holds_only_the_pictures_with_a_frozen_outline(client, world):
    cut()
    accepted(world["bare_dog"], [RECT])  # after the cut
    count = client.get("/v1/export/count", {"release": "2027-01"}).json()
    assert count == {"images": 3}
    for kind in ("yolo", "voc", "labelme"):
        counted = client.get("/v1/export/count", {"release": "2027-01", "format": kind}).json()
        assert counted == {"images": 2}, kind


def test_a_takedown_removes_the_pictures_outlines_from_the_release(client, world):
    cut()
    first = world["first"]
    Image.objects.get(pk=first.pk).decide("hide")
    for name in OUTLINE_FORMATS:
        content = released(client, format=name)
        assert str(first.uuid).encode() not in content, name
        assert str(world["second"].uuid).encode() in content, name
    coco = json.loads(released(client, format="coco"))
    assert {entry["image_id"] for entry in coco["annotations"]} == {world["second"].pk}


def test_the_changes_between_releases_count_and_list_outlines(client, world):
    cut("2027-01")
    accept_again(world["dog"], [MOVED])
    Annotation.objects.filter(pk=world["cat"].pk).update(status=Annotation.Status.REJECTED)
    added = accepted(world["bare_dog"], [RECT])
    newer = cut("2027-02")
    assert newer.outlines == 3
    counts = (newer.outlines_added, newer.outlines_removed, newer.outlines_changed)
    assert counts == (1, 1, 1)
    listed = client.get("/v1/releases").json()[0]
    assert listed["outlines"] == 3
    assert listed["outline_changes_since_previous"] == {"added": 1, "removed": 1, "changed": 1}
    response = client.get("/v1/releases/2027-02/changes")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    outlines = {
        (line["change"], line["uuid"], line["label"], line["outline"]): (
            line["before"],
            line["after"],
        )
        for line in lines
        if line["kind"] == "outline"
    }
    first, bare = str(world["first"].uuid), str(world["bare"].uuid)
    assert outlines == {
        ("changed", first, "dog", world["dog"].pk): (
            {"revision": 1, "shapes": 2},
            {"revision": 2, "shapes": 1},
        ),
        ("removed", first, "cat", world["cat"].pk): ({"revision": 1, "shapes": 1}, None),
        ("added", bare, "dog", added.pk): (None, {"revision": 1, "shapes": 1}),
    }
    assert {line["kind"] for line in lines} == {"outline"}  # the pairs did not change
    page = client.get("/releases").content.decode()
    assert "1 outline added, 1 removed, 1 changed" in page


def test_a_release_freezes_one_row_per_outline_at_its_accepted_revision(world):
    release = cut()
    rows = ReleaseOutline.objects.filter(entry__release=release)
    assert sorted(rows.values_list("annotation_id", "revision")) == sorted(
        (world[name].pk, 1) for name in ("dog", "cat", "wide")
    )
    assert sum(len(row.export_coco) for row in rows) == 4
    row = rows.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReleaseOutline.objects.create(
            entry_id=row.entry_id,
            annotation_id=row.annotation_id,
            revision=2,
            export_original=row.export_original,
            export_coco=row.export_coco,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReleaseOutline.objects.create(
            entry_id=row.entry_id, annotation_id=0, revision=1, export_original=[], export_coco=[]
        )


def test_the_releases_quality_report_counts_its_frozen_outlines_per_label(client, world):
    release = cut()
    accepted(world["bare_dog"], [RECT])  # after the cut: not counted
    counts = {
        row["label"]: (row["outlines"], row["outline_shapes"]) for row in release.quality["labels"]
    }
    assert counts == {"dog": (2, 3), "cat": (1, 1)}
    _, members = unpacked(released(client, format="tar", layout="multi"))
    markdown = members["QUALITY.md"].decode()
    assert "## Accepted outlines" in markdown and "| dog | 2 | 3 |" in markdown
    live = client.get("/v1/export/quality", {"query": "dog | cat"}).json()
    assert {row["label"]: row["outlines"] for row in live["labels"]} == {"dog": 3, "cat": 1}
