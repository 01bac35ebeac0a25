"""/v1/statistics and /v1/activity in the original's shapes, with no voter in them."""

import json

import pytest
from django.utils import timezone

from labels.models import LabelSuggestion
from tests.helpers import make_image, make_pair, make_voter
from validation.models import Vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    voter = make_voter()
    dog = make_pair("dog", make_image(), status="validated")
    make_pair("dog", make_image(), status="rejected")
    make_image()  # public, with no label
    make_image(status="pending")
    Vote.objects.create(pair=dog, voter=voter, answer=Vote.Answer.YES)
    LabelSuggestion.objects.create(name="wombat")
    return voter


def test_the_summary_has_the_explore_shape(client, site):
    body = client.get("/v1/statistics").json()
    assert body["validations"] == [
        {"label": "dog", "count": 2, "error_rate": 0.5, "total_validations": 2}
    ]
    assert body["num_of_donations"] == 3 and body["num_of_unlabeled_donations"] == 1
    assert body["num_of_validations"] == 1 and body["num_of_labels"] == 1
    assert body["num_of_label_suggestions"] == 1
    assert body["donations_per_country"] == [] and body["num_of_annotations"] == 0


def test_activity_is_counted_per_day_and_names_no_voter_or_pair(client, site):
    body = client.get("/v1/activity").json()
    today = timezone.now().date().isoformat()
    assert body == {
        "activity": [
            {"name": "validation", "type": "verified", "date": today, "count": 1},
            {"name": "donation", "type": "created", "date": today, "count": 4},
        ],
        "period": "last-month",
    }
    text = json.dumps(body)
    assert str(site.pk) not in text.replace(today, "")


def test_reading_them_writes_nothing(client, site):
    from people.models import Voter

    before = Voter.objects.count()
    client.get("/v1/statistics")
    client.get("/v1/activity")
    assert Voter.objects.count() == before
