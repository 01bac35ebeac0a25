"""/v1/validation…: pairs by their public uuid, in the late original API's shapes."""

import json
import uuid

import pytest
from django.db import connection

from donations.models import ImageLabel
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair, serve
from validation import tickets
from validation.models import Vote

pytestmark = pytest.mark.django_db


def open_pair(label="dog", **fields):
    return serve(make_pair(label, make_image(), **fields))


def gold_pair(label="dog"):
    return make_pair(label, make_image(), is_gold=True, gold_answer=True, status="validated")


@pytest.fixture
def token(client):
    return client.post("/v1/voter").json()["token"]


def voter_of(token):
    return Voter.objects.get(token_sha256=Voter.hash_token(token))


def send(client, method, url, body=None, **headers):
    data = "" if body is None else json.dumps(body)
    return getattr(client, method)(url, data, content_type="application/json", **headers)


class TestPublicIds:
    def test_every_pair_gets_its_own_uuid_from_the_database(self):
        first, second = open_pair(), open_pair()
        assert isinstance(first.uuid, uuid.UUID) and first.uuid != second.uuid
        first.refresh_from_db()
        assert ImageLabel.objects.get(uuid=first.uuid) == first

    def test_a_row_written_without_a_uuid_gets_one_as_the_migration_filled_old_rows(self):
        pair = open_pair()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO validation_imagelabel (image_id, label_id, num_yes, num_no, "
                "probability, confidence, status, frozen, servable, settled_as, settle_after, "
                "is_gold, random_key, created, updated) SELECT %s, label_id, 0, 0, 0, 0, "
                "'open', false, false, '', 0, false, 1, now(), now() FROM validation_imagelabel "
                "WHERE id = %s RETURNING uuid",
                [make_image().pk, pair.pk],
            )
            (filled,) = cursor.fetchone()
        assert filled is not None and filled != pair.uuid


class TestServedTask:
    def test_a_task_has_the_original_shape_with_a_ticket_and_no_counts(self, client, token):
        dog = make_label("dog")
        pair = open_pair(make_label("eye", parent=dog))
        response = client.get("/v1/validation", HTTP_X_VOTER_TOKEN=token)
        assert response.status_code == 200
        task = response.json()
        assert task["uuid"] == str(pair.uuid)
        assert (task["label"], task["sublabel"]) == ("dog", "eye")
        assert task["image"]["uuid"] == str(pair.image.uuid)
        assert task["image"]["url"].endswith(f"/v1/donation/{pair.image.uuid}")
        assert task["ticket"] and "num_yes" not in task

    def test_serving_a_task_writes_nothing(self, client):
        open_pair()
        assert client.get("/v1/validation").status_code == 200
        assert not Voter.objects.exists() and not Vote.objects.exists()

    def test_nothing_left_is_404_with_a_reason(self, client, token):
        response = client.get("/v1/validation", HTTP_X_VOTER_TOKEN=token)
        assert response.status_code == 404 and "nothing left" in response.json()["error"]

    def test_a_gold_task_looks_like_any_other(self, client, token, monkeypatch):
        from validation import selection

        ordinary, gold = open_pair(), gold_pair()
        monkeypatch.setattr(selection, "wants_gold", lambda voter: True)
        gold_task = client.get("/v1/validation", HTTP_X_VOTER_TOKEN=token).json()
        monkeypatch.setattr(selection, "wants_gold", lambda voter: False)
        ordinary_task = client.get("/v1/validation", HTTP_X_VOTER_TOKEN=token).json()
        assert gold_task["uuid"] == str(gold.uuid)
        assert ordinary_task["uuid"] == str(ordinary.uuid)
        assert set(gold_task) == set(ordinary_task)
        assert set(gold_task["image"]) == set(ordinary_task["image"])
        assert len(gold_task["ticket"]) == len(ordinary_task["ticket"])


class TestVoteById:
    def test_the_served_task_is_answered_by_its_uuid(self, client, token):
        task = client.get("/v1/validation", HTTP_X_VOTER_TOKEN=open_pair() and token).json()
        response = send(
            client,
            "post",
            f"/v1/validation/{task['uuid']}/validate/no",
            {"ticket": task["ticket"]},
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 200
        assert response.json()["valid"] == "no" and response.json()["replaced"] is False
        vote = Vote.objects.get()
        assert (vote.pair.uuid, vote.answer) == (uuid.UUID(task["uuid"]), Vote.Answer.NO)
        assert vote.voter == voter_of(token)

    def test_the_ticket_may_come_in_the_header_with_no_body(self, client, token):
        task = client.get("/v1/validation", HTTP_X_VOTER_TOKEN=open_pair() and token).json()
        response = client.generic(
            "POST",
            f"/v1/validation/{task['uuid']}/validate/yes",
            b"",
            HTTP_X_VOTER_TOKEN=token,
            HTTP_X_TASK_TICKET=task["ticket"],
        )
        assert response.status_code == 200 and Vote.objects.get().answer == Vote.Answer.YES

    def test_a_vote_without_a_ticket_is_403_and_stores_nothing(self, client, token):
        pair = open_pair()
        response = send(
            client, "post", f"/v1/validation/{pair.uuid}/validate/yes", HTTP_X_VOTER_TOKEN=token
        )
        assert response.status_code == 403 and "ticket" in response.json()["error"]
        assert not Vote.objects.exists()

    def test_an_unknown_or_unpublished_pair_is_404(self, client, token):
        pending = make_pair("dog", make_image(status="pending"))
        for pair_id in (uuid.uuid4(), pending.uuid):
            response = send(
                client, "post", f"/v1/validation/{pair_id}/validate/yes", HTTP_X_VOTER_TOKEN=token
            )
            assert response.status_code == 404
            assert response.json()["error"] == "no public pair with that id"

    def test_votes_by_id_spend_the_vote_rate_limit(self, client, token, settings):
        settings.VOTE_RATE = "1/m"
        pair = open_pair()
        url = f"/v1/validation/{pair.uuid}/validate/yes"
        assert send(client, "post", url, HTTP_X_VOTER_TOKEN=token).status_code == 403
        assert send(client, "post", url, HTTP_X_VOTER_TOKEN=token).status_code == 429


class TestDescribedPair:
    def test_a_pair_named_by_id_shows_its_public_counts_and_no_ticket(self, client):
        pair = open_pair(num_yes=2, num_no=1)
        for url in (f"/v1/validation/{pair.uuid}", f"/v1/validation?validation_id={pair.uuid}"):
            described = client.get(url).json()
            assert described["uuid"] == str(pair.uuid)
            assert (described["num_yes"], described["num_no"]) == (2, 1)
            assert "ticket" not in described

    def test_a_gold_pair_named_by_id_answers_with_the_same_fields(self, client):
        ordinary, gold = open_pair(), gold_pair()
        one = client.get(f"/v1/validation/{ordinary.uuid}").json()
        other = client.get(f"/v1/validation/{gold.uuid}").json()
        assert set(one) == set(other) and set(one["image"]) == set(other["image"])

    def test_a_pair_of_a_pending_picture_is_404(self, client):
        pending = make_pair("dog", make_image(status="pending"))
        assert client.get(f"/v1/validation/{pending.uuid}").status_code == 404
        assert client.get("/v1/validation?validation_id=nope").status_code == 400


class TestBatch:
    def serve_all(self, client, token, count):
        pairs = [open_pair() for _ in range(count)]
        voter = voter_of(token)
        return [
            {"uuid": str(pair.uuid), "valid": "yes", "ticket": tickets.issue(voter, pair, "")}
            for pair in pairs
        ]

    def test_a_batch_is_recorded_whole_and_answers_204(self, client, token):
        items = self.serve_all(client, token, 3)
        items[1]["valid"] = "no"
        response = send(
            client,
            "patch",
            "/v1/validation/validate",
            {"validations": items},
            HTTP_X_VOTER_TOKEN=token,
            REMOTE_ADDR="10.9.9.9",
        )
        assert response.status_code == 204, response.content
        answers = sorted(Vote.objects.values_list("answer", flat=True))
        assert answers == sorted([Vote.Answer.YES, Vote.Answer.NO, Vote.Answer.YES])

    def test_one_bad_ticket_records_nothing(self, client, token):
        items = self.serve_all(client, token, 3)
        items[2]["ticket"] = "forged"
        response = send(
            client,
            "patch",
            "/v1/validation/validate",
            {"validations": items},
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 403 and response.json()["error"].startswith("nothing")
        assert not Vote.objects.exists()

    def test_each_answer_of_a_batch_counts_against_the_vote_limit(self, client, token, settings):
        settings.VOTE_RATE = "2/m"
        items = self.serve_all(client, token, 3)
        response = send(
            client,
            "patch",
            "/v1/validation/validate",
            {"validations": items},
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 429 and not Vote.objects.exists()

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"validations": []},
            {"validations": [{"uuid": "x", "valid": "yes"}]},
            {"validations": [{"uuid": str(uuid.uuid4()), "valid": "maybe"}]},
            {"validations": ["yes"]},
        ],
    )
    def test_a_malformed_batch_is_400(self, client, body):
        assert send(client, "patch", "/v1/validation/validate", body).status_code == 400

    def test_the_same_pair_twice_in_a_batch_is_400(self, client, token):
        item = self.serve_all(client, token, 1)[0]
        response = send(
            client,
            "patch",
            "/v1/validation/validate",
            {"validations": [item, item]},
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 400 and not Vote.objects.exists()


class TestBrowse:
    def test_pairs_of_the_query_labels_on_matching_public_pictures(self, client):
        dogs = {open_pair("dog").uuid for _ in range(3)}
        open_pair("cat")
        make_pair("dog", make_image(status="pending"))
        rows = client.get("/v1/validations?query=dog").json()
        assert {uuid.UUID(row["uuid"]) for row in rows} == dogs
        assert set(rows[0]) == {"uuid", "num_of_yes", "num_of_no", "image", "label"}
        assert rows[0]["label"] == {"name": "dog", "sublabel": ""}

    def test_pages_follow_each_other_by_after(self, client):
        every = sorted(str(open_pair("dog").uuid) for _ in range(5))
        first = client.get("/v1/validations?query=dog&limit=3").json()
        second = client.get(f"/v1/validations?query=dog&limit=3&after={first[-1]['uuid']}").json()
        assert [row["uuid"] for row in first + second] == every

    def test_a_page_is_full_even_when_a_named_label_is_retired(self, client):
        retired = make_label("wolf", active=False)
        for _ in range(12):  # before the dogs in uuid order, nearly always
            make_pair(retired, make_image())
        dogs = {str(open_pair("dog").uuid) for _ in range(2)}
        rows = client.get("/v1/validations?query=dog|wolf&limit=2").json()
        assert {row["uuid"] for row in rows} == dogs

    def test_shuffle_gives_a_bounded_page_from_a_random_point(self, client):
        every = {str(open_pair("dog").uuid) for _ in range(5)}
        rows = client.get("/v1/validations?query=dog&shuffle=true&limit=5").json()
        assert {row["uuid"] for row in rows} == every

    @pytest.mark.parametrize(
        "query",
        [
            "",
            "query=",
            "query=unicorn",
            "query=~dog",
            "query=dog&limit=0",
            "query=dog&limit=101",
            "query=dog&limit=x",
            "query=dog&shuffle=maybe",
            "query=dog&after=nope",
            "query=dog&shuffle=true&after=0f9d3c4e-5a2b-4c1d-8e7f-6a5b4c3d2e1f",
        ],
    )
    def test_bad_parameters_are_400(self, client, query):
        make_label("dog")
        response = client.get(f"/v1/validations?{query}")
        assert response.status_code == 400 and response.json()["error"]
