"""The quality report travels with every export: inside every archive, and as JSON."""

# The fixtures imported from tests.test_export are named again by the tests that use them.
# ruff: noqa: F811

import hashlib
import json

import pytest

from donations.models import ImageLabel
from exports.query import LabelQuery
from exports.releases import cut_release
from tests.helpers import make_image, make_pair
from tests.test_export import body, data, get, manifest_hashes, unpacked  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gold(data):
    """Three gold dog pairs the crowd validated, two of them rightly."""
    for answer in (True, True, False):
        pair = make_pair(data.dog, image=make_image())
        ImageLabel.objects.filter(pk=pair.pk).update(
            status=ImageLabel.Status.VALIDATED, is_gold=True, gold_answer=answer
        )
    return data


def dog_row(report: dict) -> dict:
    return next(row for row in report["labels"] if row["label"] == "dog" and not row["sublabel"])


def test_a_tar_carries_the_report_of_its_own_pairs_measured_on_its_snapshot(client, gold):
    _, members = unpacked(body(get(client, query="dog", format="tar", layout="multi")))
    report = json.loads(members["quality.json"])
    assert report["query"] == "dog" and "release" not in report
    dog = dog_row(report)
    assert dog["pairs"] == dog["validated"] == 5  # a, b and the three gold pictures
    assert dog["validated_precision"]["gold_pairs"] == 3
    assert dog["validated_precision"]["agreeing"] == 2
    markdown = members["QUALITY.md"].decode()
    assert markdown.startswith("# Quality of an ImageMonkey export: dog\n")
    assert "2 of 3 gold" in markdown
    hashes = manifest_hashes(members["MANIFEST"])
    assert hashes["QUALITY.md"] == hashlib.sha256(members["QUALITY.md"]).hexdigest()
    assert hashes["quality.json"] == hashlib.sha256(members["quality.json"]).hexdigest()


def test_the_report_counts_only_the_pairs_the_export_holds(client, gold):
    report = json.loads(
        unpacked(body(get(client, query="dog | cat", format="tar")))[1]["quality.json"]
    )
    assert {row["label"] for row in report["labels"]} == {"dog"}  # cat is rejected: not held
    with_negatives = client.get("/v1/export/quality", {"query": "dog | cat", "negatives": "true"})
    cat = next(row for row in with_negatives.json()["labels"] if row["label"] == "cat")
    assert cat["rejected"] == cat["settled"] == 1


def test_the_json_report_is_the_archives_for_the_same_parameters(client, gold):
    response = client.get("/v1/export/quality", {"query": "dog"})
    assert response.status_code == 200
    served = response.json()
    _, members = unpacked(body(get(client, query="dog", format="tar")))
    archived = json.loads(members["quality.json"])
    for report in (served, archived):
        report.pop("snapshot")
    assert served == archived


def test_a_releases_json_report_is_the_one_measured_when_it_was_cut(client, gold):
    release = cut_release("2027-01", LabelQuery.parse("dog"))
    served = client.get("/v1/export/quality", {"release": "2027-01"}).json()
    assert served == release.quality and served["release"] == "2027-01"


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"query": "dog & )"}, 400, "expected a label name"),
        ({}, 400, "a query is required"),
        ({"release": "1999-01"}, 404, "there is no release"),
        ({"query": "dog", "status": "maybe"}, 400, "status: must be one of"),
    ],
)
def test_a_wrong_quality_request_is_refused_with_the_reason(client, data, params, status, error):
    response = client.get("/v1/export/quality", params)
    assert response.status_code == status
    assert error in response.json()["error"]
