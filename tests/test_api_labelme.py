"""/v1/labelme, /v1/donation/<uuid>/labelme and the label catalogue's late original calls."""

import json

import pytest

from donations.models import ImageLabel
from labels.models import LabelSuggestion
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair

pytestmark = pytest.mark.django_db


def send(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def dog():
    dog = make_label("dog", plural="dogs")
    make_label("eye", parent=dog)
    return dog


class TestLabelme:
    def test_a_picture_comes_with_its_labels_as_a_tree(self, client, dog):
        image = make_image()
        pair = make_pair(dog, image, num_yes=2)
        make_pair(dog.sublabels.get(), image)
        answer = client.get(f"/v1/labelme?image_id={image.uuid}")
        assert answer.status_code == 200
        body = answer.json()
        assert body["image"]["uuid"] == str(image.uuid)
        assert body["image"]["url"].endswith(f"/v1/donation/{image.uuid}")
        (entry,) = body["all_labels"]
        assert entry["label"] == "dog"
        assert entry["validation"] == {"uuid": str(pair.uuid), "num_yes": 2, "num_no": 0}
        assert [part["name"] for part in entry["sublabels"]] == ["eye"]

    def test_without_an_id_a_public_picture_is_chosen_and_nothing_written(self, client):
        image = make_image()
        make_image(status="pending")
        assert client.get("/v1/labelme").json()["image"]["uuid"] == str(image.uuid)
        assert not Voter.objects.exists()

    def test_a_pending_or_unknown_picture_is_404_and_a_bad_id_400(self, client):
        pending = make_image(status="pending")
        assert client.get(f"/v1/labelme?image_id={pending.uuid}").status_code == 404
        assert client.get("/v1/labelme?image_id=nope").status_code == 400
        assert client.get("/v1/labelme").status_code == 404


class TestAddLabels:
    def test_labels_and_sublabels_become_pairs_and_unknown_ones_suggestions(self, client, dog):
        image = make_image()
        response = send(
            client,
            f"/v1/donation/{image.uuid}/labelme",
            [{"label": "Dog", "sublabels": ["eye"]}, {"label": "wombat", "annotatable": False}],
        )
        assert response.status_code == 200
        assert response.json() == {
            "added": ["dog", "dog/eye"],
            "already": [],
            "suggested": ["wombat"],
        }
        names = {pair.label.full_name for pair in ImageLabel.objects.filter(image=image)}
        assert names == {"dog", "dog/eye"}
        assert LabelSuggestion.objects.get().name == "wombat"

    def test_the_late_original_sublabel_objects_are_understood(self, client, dog):
        image = make_image()
        body = [{"label": "dog", "sublabels": [{"name": "eye"}]}]
        assert send(client, f"/v1/donation/{image.uuid}/labelme", body).status_code == 200
        assert ImageLabel.objects.filter(image=image).count() == 2

    def test_a_label_the_picture_has_is_said_to_be_there_already(self, client, dog):
        image = make_image()
        make_pair(dog, image)
        response = send(client, f"/v1/donation/{image.uuid}/labelme", [{"label": "dog"}])
        assert response.json()["already"] == ["dog"] and ImageLabel.objects.count() == 1

    def test_the_donor_labels_their_own_pending_donation_and_nobody_else_can(self, client, dog):
        donor, token = Voter.create_with_token()
        image = make_image(status="pending", donor=donor)
        url = f"/v1/donation/{image.uuid}/labelme"
        _, stranger = Voter.create_with_token()
        assert send(client, url, [{"label": "dog"}], HTTP_X_VOTER_TOKEN=stranger).status_code == 404
        assert send(client, url, [{"label": "dog"}]).status_code == 404
        assert send(client, url, [{"label": "dog"}], HTTP_X_VOTER_TOKEN=token).status_code == 200
        pair = ImageLabel.objects.get(image=image)
        assert pair.servable is False, "a pending picture's pair is not asked about yet"

    @pytest.mark.parametrize(
        "body",
        [
            {"label": "dog"},
            [],
            ["dog"],
            [{"sublabels": ["eye"]}],
            [{"label": ""}],
            [{"label": 5}],
            [{"label": "dog", "sublabels": "eye"}],
            [{"label": "dog", "annotatable": "yes"}],
            [{"label": "dog/eye"}],
            [{"label": "x" * 101}],
            [{"label": "a\x00b"}],
            [{"label": "dog", "sublabels": [f"part {n}" for n in range(50)]}],
        ],
    )
    def test_a_malformed_body_is_400_and_adds_nothing(self, client, dog, body):
        image = make_image()
        response = send(client, f"/v1/donation/{image.uuid}/labelme", body)
        assert response.status_code == 400 and response.json()["error"]
        assert not ImageLabel.objects.exists() and not LabelSuggestion.objects.exists()

    def test_each_label_counts_against_the_limit(self, client, dog, settings):
        settings.VOTE_RATE = "2/m"
        image = make_image()
        body = [{"label": "dog", "sublabels": ["eye"]}, {"label": "cat"}]
        response = send(client, f"/v1/donation/{image.uuid}/labelme", body)
        assert response.status_code == 429 and not ImageLabel.objects.exists()


class TestCatalogue:
    def test_detailed_accessors_name_their_parent(self, client, dog):
        rows = client.get("/v1/label/accessors?detailed=true").json()
        assert rows == [
            {"accessor": "dog", "parent_accessor": ""},
            {"accessor": "dog.has='eye'", "parent_accessor": "dog"},
        ]
        assert client.get("/v1/label/accessors").json() == ["dog", "dog.has='eye'"]
        assert client.get("/v1/label/accessors?detailed=true&label_type=refinement").json() == []
        assert client.get("/v1/label/accessors?label_type=colour").status_code == 422

    def test_plurals_map_labels_to_their_plural(self, client, dog):
        make_label("sheep")
        assert client.get("/v1/label/plurals").json() == {"dog": "dogs"}

    def test_a_suggestion_is_recorded_and_listed_and_a_known_label_is_not(self, client, dog):
        assert send(client, "/v1/label/suggest", {"label": "Wombat "}).json() == {
            "label": "wombat",
            "exists": False,
        }
        assert send(client, "/v1/label/suggest", {"label": "dog"}).json()["exists"] is True
        assert client.get("/v1/label/suggestions").json() == ["wombat"]
        assert LabelSuggestion.objects.get().times_requested == 1

    def test_rejected_suggestions_are_never_listed_and_accepted_only_when_asked(self, client):
        LabelSuggestion.objects.create(name="junk", status="rejected")
        LabelSuggestion.objects.create(name="waiting")
        accepted = make_label("otter")
        LabelSuggestion.objects.create(name="otter", status="accepted", label=accepted)
        assert set(client.get("/v1/label/suggestions").json()) == {"waiting", "otter"}
        assert client.get("/v1/label/suggestions?include_unlocked=false").json() == ["waiting"]
        assert client.get("/v1/label/suggestions?include_unlocked=maybe").status_code == 400

    @pytest.mark.parametrize("body", [{}, {"label": ""}, {"label": 3}, {"label": "x" * 101}])
    def test_a_bad_suggestion_is_400(self, client, body):
        assert send(client, "/v1/label/suggest", body).status_code == 400
        assert not LabelSuggestion.objects.exists()
