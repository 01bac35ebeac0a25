"""The CSV, JSON, JSON Lines and tagged exports of a fixed dataset, byte for byte.

The renderers are tuned for speed (bench/exporting.py); whatever they become, the
same rows must come out as the same bytes. The dataset is fixed down to its uuids,
vote counts and thresholds, with the names that need quoting, defusing or escaping.
"""

import itertools
import random
import uuid

import pytest

from donations.models import Image
from exports.query import LabelQuery
from exports.releases import cut_release
from labels.models import Label
from tests.helpers import make_image, make_label, make_pair

pytestmark = pytest.mark.django_db(transaction=True)

A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
B = uuid.UUID("00000000-0000-4000-8000-00000000000b")
C = uuid.UUID("00000000-0000-4000-8000-00000000000c")
HIDDEN = uuid.UUID("00000000-0000-4000-8000-00000000000d")


@pytest.fixture
def fixed():
    """Three public pictures (and a hidden one) with six pairs of awkwardly named labels."""
    dog = make_label("dog")
    eye = make_label('eye "left"', parent=dog)
    formula = make_label('=sum(1,2) "x"')
    snow = make_label("snowman ☃\\")
    a = make_image(uuid=A, width=800, height=600)
    b = make_image(uuid=B, width=1024, height=768, format=Image.Format.PNG)
    c = make_image(uuid=C)
    hidden = make_image(uuid=HIDDEN, status=Image.Status.HIDDEN)
    rows = [
        (a, dog, 3, 0, 1.0, 0.4375, "validated"),
        (a, eye, 1, 1, 0.5, 0.0625, "open"),
        (a, snow, 0, 0, 0.0, 0.0, "open"),
        (b, formula, 1, 3, 0.25, 0.3, "rejected"),
        (b, dog, 4, 1, 0.8, 0.123456789, "validated"),
        (c, snow, 2, 0, 1.0, 1 / 3, "validated"),
        (hidden, dog, 5, 0, 1.0, 0.9, "validated"),
    ]
    for image, label, yes, no, probability, confidence, status in rows:
        make_pair(
            label,
            image=image,
            num_yes=yes,
            num_no=no,
            probability=probability,
            confidence=confidence,
            status=status,
        )


def download(client, **params) -> bytes:
    response = client.get("/v1/export", params)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


CSV = (
    b"uuid,image_url,width,height,label,sublabel,num_yes,num_no,probability,confidence,status\r\n"
    b'00000000-0000-4000-8000-00000000000a,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000a",800,600,"dog","",3,0,1,0.4375,validated\r\n'
    b'00000000-0000-4000-8000-00000000000a,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000a",800,600,"dog","eye ""left""",1,1,0.5,0.0625,open\r\n'
    b'00000000-0000-4000-8000-00000000000a,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000a",800,600,"snowman \xe2\x98\x83\\","",0,0,0,0,open\r\n'
    b'00000000-0000-4000-8000-00000000000b,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000b",1024,768,"dog","",4,1,0.8,0.123456789,validated\r\n'
    b'00000000-0000-4000-8000-00000000000b,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000b",1024,768,"\'=sum(1,2) ""x""","",1,3,0.25,0.3,rejected\r\n'
    b'00000000-0000-4000-8000-00000000000c,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000c",640,480,"snowman \xe2\x98\x83\\","",2,0,1,0.3333333333333333,validated\r\n'
)

JSON = (
    b'[{"uuid":"00000000-0000-4000-8000-00000000000a","provider":"donation","width":800,"height":600,"annotations":[],"validations":[{"label":"dog","sublabel":"","num_yes":3,"num_no":0,"probability":1,"confidence":0.4375,"status":"validated"},{"label":"dog","sublabel":"eye \\"left\\"","num_yes":1,"num_no":1,"probability":0.5,"confidence":0.0625,"status":"open"},{"label":"snowman \xe2\x98\x83\\\\","sublabel":"","num_yes":0,"num_no":0,"probability":0,"confidence":0,"status":"open"}]}\n'
    b',{"uuid":"00000000-0000-4000-8000-00000000000b","provider":"donation","width":1024,"height":768,"annotations":[],"validations":[{"label":"dog","sublabel":"","num_yes":4,"num_no":1,"probability":0.8,"confidence":0.123456789,"status":"validated"},{"label":"=sum(1,2) \\"x\\"","sublabel":"","num_yes":1,"num_no":3,"probability":0.25,"confidence":0.3,"status":"rejected"}]}\n'
    b',{"uuid":"00000000-0000-4000-8000-00000000000c","provider":"donation","width":640,"height":480,"annotations":[],"validations":[{"label":"snowman \xe2\x98\x83\\\\","sublabel":"","num_yes":2,"num_no":0,"probability":1,"confidence":0.3333333333333333,"status":"validated"}]}\n'
    b"]\n"
)

JSONL = (
    b'{"uuid":"00000000-0000-4000-8000-00000000000a","provider":"donation","width":800,"height":600,"annotations":[],"validations":[{"label":"dog","sublabel":"","num_yes":3,"num_no":0,"probability":1,"confidence":0.4375,"status":"validated"},{"label":"dog","sublabel":"eye \\"left\\"","num_yes":1,"num_no":1,"probability":0.5,"confidence":0.0625,"status":"open"},{"label":"snowman \xe2\x98\x83\\\\","sublabel":"","num_yes":0,"num_no":0,"probability":0,"confidence":0,"status":"open"}]}\n'
    b'{"uuid":"00000000-0000-4000-8000-00000000000b","provider":"donation","width":1024,"height":768,"annotations":[],"validations":[{"label":"dog","sublabel":"","num_yes":4,"num_no":1,"probability":0.8,"confidence":0.123456789,"status":"validated"},{"label":"=sum(1,2) \\"x\\"","sublabel":"","num_yes":1,"num_no":3,"probability":0.25,"confidence":0.3,"status":"rejected"}]}\n'
    b'{"uuid":"00000000-0000-4000-8000-00000000000c","provider":"donation","width":640,"height":480,"annotations":[],"validations":[{"label":"snowman \xe2\x98\x83\\\\","sublabel":"","num_yes":2,"num_no":0,"probability":1,"confidence":0.3333333333333333,"status":"validated"}]}\n'
)

SPLIT_CSV = (
    b"uuid,image_url,width,height,label,sublabel,num_yes,num_no,probability,confidence,status,split\r\n"
    b'00000000-0000-4000-8000-00000000000a,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000a",800,600,"dog","",3,0,1,0.4375,validated,test\r\n'
    b'00000000-0000-4000-8000-00000000000b,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000b",1024,768,"dog","",4,1,0.8,0.123456789,validated,val\r\n'
    b'00000000-0000-4000-8000-00000000000c,"http://testserver/v1/donation/00000000-0000-4000-8000-00000000000c",640,480,"snowman \xe2\x98\x83\\","",2,0,1,0.3333333333333333,validated,test\r\n'
)

TAGGED = (
    b'[{"uuid":"00000000-0000-4000-8000-00000000000a","label":"dog","sublabel":"","provider":"donation","probability":1,"num_yes":3,"num_no":0,"annotations":[]}\n'
    b',{"uuid":"00000000-0000-4000-8000-00000000000b","label":"dog","sublabel":"","provider":"donation","probability":0.8,"num_yes":4,"num_no":1,"annotations":[]}\n'
    b"]\n"
)


def test_the_csv_export_of_a_fixed_dataset_is_these_bytes(client, fixed):
    assert download(client, query="dog | ~dog", format="csv", status="any") == CSV


def test_the_json_export_of_a_fixed_dataset_is_these_bytes(client, fixed):
    assert download(client, query="dog | ~dog", format="json", status="any") == JSON


def test_the_json_lines_export_of_a_fixed_dataset_is_these_bytes(client, fixed):
    assert download(client, query="dog | ~dog", format="jsonl", status="any") == JSONL


def test_a_split_csv_export_of_a_fixed_dataset_is_these_bytes(client, fixed):
    assert download(client, query="dog | ~dog", format="csv", split="50/25/25") == SPLIT_CSV


def test_the_tagged_export_of_a_fixed_dataset_is_these_bytes(client, fixed):
    assert download(client, tags="dog") == TAGGED


def test_a_releases_csv_and_json_are_these_bytes(client, fixed):
    cut_release("2027-03", LabelQuery.parse("dog | ~dog"), status="any")
    Label.objects.filter(name="dog").update(name="hound")  # a release keeps its names
    assert download(client, release="2027-03", format="csv", status="any") == CSV
    assert download(client, release="2027-03", format="json", status="any") == JSON


# The JSON of `dog`: the two pictures with a dog, each with all its pairs.
DOG_JSON = b"".join(JSON.splitlines(keepends=True)[:2]) + b"]\n"


def rendered_json(export, every_pair: bool) -> bytes:
    """The JSON of `export`, its validations rendered the way `every_pair` says."""
    from exports.export import snapshot_for
    from exports.renderers import image_objects

    with snapshot_for(export) as snap:
        body = b"".join(snap.copy_lines(image_objects(export, ",", every_pair=every_pair)))
    return b"[" + body[1:] + b"]\n"


@pytest.mark.parametrize("every_pair", [True, False], ids=["every pair", "matching pictures"])
@pytest.mark.parametrize("query, expected", [("dog | ~dog", JSON), ("dog", DOG_JSON)])
def test_both_ways_of_rendering_the_json_give_the_same_bytes(fixed, every_pair, query, expected):
    from exports.export import Export

    export = Export(
        LabelQuery.parse(query), status="any", image_url_prefix="http://testserver/v1/donation/"
    )
    assert rendered_json(export, every_pair) == expected


@pytest.mark.parametrize("every_pair", [True, False], ids=["every pair", "matching pictures"])
def test_both_ways_of_rendering_a_releases_json_give_the_same_bytes(fixed, every_pair):
    from exports.releases import release_export

    release = cut_release("2027-03", LabelQuery.parse("dog | ~dog"), status="any")
    export = release_export(
        release, image_url_prefix="http://testserver/v1/donation/", status="any"
    )
    assert rendered_json(export, every_pair) == JSON


def test_a_query_of_negations_reads_every_pair_and_one_of_labels_the_matching_ones(fixed):
    from exports.export import Export

    def every_pair(text: str) -> bool:
        return Export(LabelQuery.parse(text)).reads_every_pair

    assert (
        every_pair("dog | ~dog") and every_pair("~dog") and every_pair("~(dog & '=sum(1,2) \"x\"')")
    )
    assert not every_pair("dog") and not every_pair("dog & ~'=sum(1,2) \"x\"'")
    assert not Export(LabelQuery.parse("~dog"), annotations_only=True).reads_every_pair


@pytest.fixture
def thirty_pictures():
    """Thirty pictures with random pairs of six labels: every status, vote and share."""
    rng = random.Random(3)
    labels = [make_label(f"l{n}") for n in range(6)]
    for image in [make_image() for _ in range(30)]:
        for label in rng.sample(labels, rng.randint(0, 5)):
            make_pair(
                label,
                image=image,
                num_yes=rng.randint(0, 5),
                num_no=rng.randint(0, 5),
                probability=rng.choice([0.0, 0.25, 0.5, 1.0]),
                confidence=rng.choice([0.0, 0.1, 0.5, 0.9, 1.0]),
                status=rng.choice(["open", "validated", "rejected"]),
            )


def test_both_ways_of_rendering_the_json_agree_for_every_filter_and_split(thirty_pictures):
    from exports.export import Export

    differ = []
    for text, status, negatives, threshold, split in itertools.product(
        ["l0", "~l0", "l0 | ~l1", "l0 | ~l0", "l1 & ~l2"],
        ["validated", "any", "rejected", "open"],
        [False, True],
        [0.0, 0.5],
        [None, (80, 10, 10)],
    ):
        export = Export(
            LabelQuery.parse(text),
            status=status,
            negatives=negatives,
            min_probability=threshold,
            min_confidence=threshold,
            split=split,
        )
        if rendered_json(export, True) != rendered_json(export, False):
            differ.append((text, status, negatives, threshold, split))
    assert differ == []


def test_both_ways_of_rendering_a_releases_json_agree_for_every_filter(thirty_pictures):
    from exports.releases import release_export

    release = cut_release(
        "2027-09", LabelQuery.parse("l0 | ~l0"), status="any", min_probability=0.25
    )
    for status, negatives, split in itertools.product(
        ["validated", "any", "rejected"], [False, True], [None, (80, 10, 10)]
    ):
        export = release_export(
            release, image_url_prefix="/x/", status=status, negatives=negatives, split=split
        )
        assert rendered_json(export, True) == rendered_json(export, False)
