"""The /v1/ API: shapes, errors and identity, as the original ImageMonkey's clients expect."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from donations.ingest import ingest
from donations.models import Image, ImageLabel, Report
from labels.models import Label
from people.identity import ip_prefix
from people.models import Voter
from tests.helpers import (
    make_image,
    make_label,
    make_pair,
    network_of,
    photo_bytes,
    real_public_image,
    serve,
    vote,
)
from validation import tickets
from validation.models import Alert, Vote

pytestmark = pytest.mark.django_db


VOTE_PATH = re.compile(r"^/v1/donation/([0-9a-f-]{36})/validate/(yes|no)$")


def post_json(client, url, body, method="post", **headers):
    """Send JSON as a client of the API would: a vote carries the ticket of its task (as if
    the task had been served, unless the body says "ticket" itself) and comes from the
    voter's own network."""
    if isinstance(body, dict) and (VOTE_PATH.match(url) or url == "/v1/donation/validate"):
        voter = _token_voter(headers.get("HTTP_X_VOTER_TOKEN"))
        if voter is not None:
            headers.setdefault("REMOTE_ADDR", network_of(voter).replace("0/24", "7"))
        label = Label.objects.resolve(
            f"{body.get('label')}/{body['sublabel']}"
            if body.get("sublabel")
            else body.get("label") or ""
        )
        network = ip_prefix(headers.get("REMOTE_ADDR", "127.0.0.1"))
        if (found := VOTE_PATH.match(url)) and "ticket" not in body:
            body = {**body, "ticket": _ticket(voter, found[1], label, network)}
        for item in body.get("validations") or []:
            if isinstance(item, dict) and "ticket" not in item:
                item["ticket"] = _ticket(voter, item.get("uuid"), label, network)
    return getattr(client, method)(
        url, json.dumps(body), content_type="application/json", **headers
    )


def _token_voter(token):
    return Voter.objects.filter(token_sha256=Voter.hash_token(token)).first() if token else None


def _ticket(voter, image_uuid, label, network):
    pairs = ImageLabel.objects.filter(image__uuid=image_uuid)
    pair = pairs.filter(label=label).first() if label else pairs.first()
    if pair is None:
        return None
    return tickets.issue(voter or Voter(), pair, network)


def open_pair(label="dog", image=None):
    pair = make_pair(label, image or make_image())
    serve(pair)
    return pair


@pytest.fixture
def token(client):
    return client.post("/v1/voter").json()["token"]


class TestVoterIdentity:
    def test_a_voter_token_names_one_voter(self, client, token):
        pair = open_pair()
        url = f"/v1/donation/{pair.image.uuid}/validate/yes"
        post_json(client, url, {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
        post_json(client, url, {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
        assert Vote.objects.count() == 1
        assert client.get("/v1/me", HTTP_X_VOTER_TOKEN=token).json() == {
            "votes": 1,
            "gold_answered": 0,
            "trusted": False,
            "agreement": None,
        }

    def test_an_unknown_token_is_refused(self, client):
        response = client.get("/v1/me", HTTP_X_VOTER_TOKEN="made-up")
        assert response.status_code == 401 and "POST /v1/voter" in response.json()["error"]

    def test_without_a_token_each_call_is_a_fresh_anonymous_voter(self, client):
        pair = open_pair()
        url = f"/v1/donation/{pair.image.uuid}/validate/yes"
        post_json(client, url, {"label": "dog"})
        post_json(client, url, {"label": "dog"})
        assert Vote.objects.filter(pair=pair).count() == 2
        assert Voter.objects.count() == 2

    def test_api_votes_never_use_the_session_cookie(self):
        browser = Client(enforce_csrf_checks=True)
        pair = open_pair()
        browser.get("/validate")  # the session now has a voter
        session_voter = browser.session.get("voter_id")
        post_json(browser, f"/v1/donation/{pair.image.uuid}/validate/yes", {"label": "dog"})
        vote = Vote.objects.get()
        assert vote.voter_id != session_voter, "a cross-site post cannot vote as the visitor"

    def test_read_only_calls_allow_any_origin(self, client):
        response = client.get("/v1/label", HTTP_ORIGIN="https://elsewhere.example")
        assert response["Access-Control-Allow-Origin"] == "*"
        assert client.options("/v1/validate").status_code == 204


class TestValidate:
    def test_the_next_task_has_the_original_shape(self, client, token):
        dog = make_label("dog")
        eye = make_label("eye", parent=dog)
        pair = open_pair(eye)
        task = client.get("/v1/validate", HTTP_X_VOTER_TOKEN=token).json()
        ticket = task.pop("ticket")
        assert task == {
            "uuid": str(pair.image.uuid),
            "label": "dog",
            "sublabel": "eye",
            "provider": "donation",
        }, "the original shape, and the ticket the vote presents"
        assert isinstance(ticket, str) and ticket

    def test_nothing_left_is_a_404_with_a_reason(self, client, token):
        response = client.get("/v1/validate", HTTP_X_VOTER_TOKEN=token)
        assert response.status_code == 404 and "nothing left" in response.json()["error"]

    def test_grouped_validation_returns_donations_of_one_label(self, client, token):
        dog = make_label("dog")
        pairs = [open_pair(dog) for _ in range(5)]
        open_pair("cat")
        body = client.get(
            "/v1/validate?grouped=true&label=dog&limit=3", HTTP_X_VOTER_TOKEN=token
        ).json()
        assert body["label"] == "dog" and len(body["donations"]) == 3
        assert {d["uuid"] for d in body["donations"]} <= {str(p.image.uuid) for p in pairs}
        assert all(d["provider"] == "donation" for d in body["donations"])

    def test_a_grid_of_one_is_one_picture_even_in_training(self, client, token):
        dog = make_label("dog")
        for _ in range(3):
            make_pair(dog, is_gold=True, gold_answer=True)
            open_pair(dog)
        response = client.get(
            "/v1/validate?grouped=true&label=dog&limit=1", HTTP_X_VOTER_TOKEN=token
        )
        assert response.status_code == 200 and len(response.json()["donations"]) == 1

    @pytest.mark.parametrize(
        ("query", "status"),
        [
            ("grouped=true&label=dog&limit=0", 400),
            ("grouped=true&label=dog&limit=x", 400),
            ("limit=", 400),
            ("label=unicorn", 404),
        ],
    )
    def test_bad_parameters_get_a_reason(self, client, query, status):
        make_label("dog")
        response = client.get(f"/v1/validate?{query}")
        assert response.status_code == status and response.json()["error"]


class TestVote:
    def test_a_vote_answers_with_the_pair(self, client, token):
        pair = open_pair()
        response = post_json(
            client,
            f"/v1/donation/{pair.image.uuid}/validate/no",
            {"label": "dog", "sublabel": ""},
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 200
        assert response.json() == {
            "uuid": str(pair.image.uuid),
            "label": "dog",
            "sublabel": "",
            "provider": "donation",
            "valid": "no",
            "replaced": False,
            "counted": False,
        }

    @pytest.mark.parametrize(
        ("body", "status", "words"),
        [
            ("not json", 400, "not valid JSON"),
            ([1, 2], 400, "JSON object"),
            ({}, 400, "give the label"),
            ({"label": " \n\t"}, 400, "give the label"),
            ({"label": "unicorn"}, 404, "unknown label"),
            ({"label": "cat"}, 404, "no such public picture"),
            ({"label": "dog", "sublabel": 5}, 400, "sublabel must be a string"),
        ],
    )
    def test_bad_votes_are_refused_with_a_reason(self, client, body, status, words):
        make_label("cat")
        pair = open_pair()
        data = body if isinstance(body, str) else json.dumps(body)
        response = client.post(
            f"/v1/donation/{pair.image.uuid}/validate/yes", data, content_type="application/json"
        )
        assert response.status_code == status and words in response.json()["error"]
        assert not Vote.objects.exists()

    def test_pending_pictures_cannot_be_voted_on(self, client):
        pair = open_pair(image=make_image(status="pending"))
        response = post_json(
            client, f"/v1/donation/{pair.image.uuid}/validate/yes", {"label": "dog"}
        )
        assert response.status_code == 404

    def test_get_on_a_vote_url_is_405(self, client):
        pair = open_pair()
        assert client.get(f"/v1/donation/{pair.image.uuid}/validate/yes").status_code == 405

    def test_many_votes_at_once_all_or_nothing(self, client, token):
        dog = make_label("dog")
        pairs = [open_pair(dog) for _ in range(3)]
        body = {
            "label": "dog",
            "sublabel": "",
            "validations": [
                {"uuid": str(p.image.uuid), "valid": "yes" if n else "no"}
                for n, p in enumerate(pairs)
            ],
        }
        response = post_json(
            client, "/v1/donation/validate", body, method="patch", HTTP_X_VOTER_TOKEN=token
        )
        assert response.status_code == 200 and response.json() == {"recorded": 3}
        bad = {
            **body,
            "validations": [*body["validations"], {"uuid": str(make_image().uuid), "valid": "yes"}],
        }
        other = client.post("/v1/voter").json()["token"]
        response = post_json(
            client, "/v1/donation/validate", bad, method="patch", HTTP_X_VOTER_TOKEN=other
        )
        assert response.status_code == 404
        assert Vote.objects.count() == 3, "the second batch recorded nothing"

    def test_votes_are_rate_limited_per_address_and_voter(self, client, token, settings):
        settings.VOTE_RATE = "2/h"
        pairs = [open_pair() for _ in range(3)]
        codes = [
            post_json(
                client,
                f"/v1/donation/{p.image.uuid}/validate/yes",
                {"label": "dog"},
                HTTP_X_VOTER_TOKEN=token,
                REMOTE_ADDR="127.0.0.1",
            ).status_code
            for p in pairs
        ]
        assert codes == [200, 200, 429]
        limited = post_json(
            client,
            f"/v1/donation/{pairs[2].image.uuid}/validate/yes",
            {"label": "dog"},
            REMOTE_ADDR="127.0.0.1",
        )
        assert limited.status_code == 429 and "Too many requests" in limited.json()["error"]

    def test_every_vote_of_a_batch_counts_against_the_limit(self, client, token, settings):
        settings.VOTE_RATE = "10/m"
        pairs = [open_pair() for _ in range(11)]
        body = {
            "label": "dog",
            "validations": [{"uuid": str(p.image.uuid), "valid": "yes"} for p in pairs],
        }
        response = post_json(
            client, "/v1/donation/validate", body, method="patch", HTTP_X_VOTER_TOKEN=token
        )
        assert response.status_code == 429
        assert not Vote.objects.exists()
        body["validations"] = body["validations"][:2]
        assert (
            post_json(
                client, "/v1/donation/validate", body, method="patch", HTTP_X_VOTER_TOKEN=token
            ).status_code
            == 429
        ), "the refused batch was spent too"

    def test_new_voter_tokens_are_limited_per_address_and_per_network(self, settings):
        settings.VOTER_RATE, settings.VOTER_NETWORK_RATE = "3/h", "5/h"
        one = [Client().post("/v1/voter", REMOTE_ADDR="198.51.100.1") for _ in range(4)]
        assert [r.status_code for r in one] == [201, 201, 201, 429]
        farm = [Client().post("/v1/voter", REMOTE_ADDR=f"198.51.100.{n}") for n in range(2, 6)]
        assert [r.status_code for r in farm] == [201, 201, 429, 429]
        assert Client().post("/v1/voter", REMOTE_ADDR="203.0.113.1").status_code == 201


def trusted_token(**fields) -> tuple[str, Voter]:
    voter, token = Voter.create_with_token(trusted=True, gold_correct=8, **fields)
    return token, voter


def vote_url(pair, answer="yes") -> str:
    return f"/v1/donation/{pair.image.uuid}/validate/{answer}"


class TestTheVotePath:
    """Every vote, a token holder's too, goes through voting.record_vote."""

    def test_a_token_vote_is_a_few_statements_in_one_transaction(self, client):
        token, _ = trusted_token()
        first, second = open_pair(), open_pair()
        post_json(client, vote_url(first), {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
        voter = Voter.objects.get(token_sha256=Voter.hash_token(token))
        body = {"label": "dog", "ticket": tickets.issue(voter, second)}
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                vote_url(second),
                json.dumps(body),
                content_type="application/json",
                HTTP_X_VOTER_TOKEN=token,
                REMOTE_ADDR="10.0.0.7",
            )
        assert response.status_code == 200 and response.json()["counted"] is True
        statements = [q["sql"] for q in queries.captured_queries]
        # the voter, the locked pair, the vote, the tally, the pair's update, the burst
        # check, and the transaction around them
        assert len(statements) <= 8, statements
        assert statements[0].startswith("SELECT") and "validation_voter" in statements[0]
        assert not any("imagemonkey_" in sql for sql in statements)

    def test_the_pair_settles_exactly_as_record_vote_settles_it(self, client):
        by_api, by_python = open_pair(), open_pair()
        for answer in ("yes", "yes", "no", "yes", "yes", "yes"):
            token, voter = trusted_token(gold_wrong=1)
            post_json(client, vote_url(by_api, answer), {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
            vote(by_python, voter, Vote.Answer.YES if answer == "yes" else Vote.Answer.NO)
        by_api.refresh_from_db()
        by_python.refresh_from_db()
        fields = ("num_yes", "num_no", "probability", "confidence", "status", "servable")
        assert [getattr(by_api, f) for f in fields] == [getattr(by_python, f) for f in fields]
        assert by_api.status == "validated" and by_api.settled_as == "validated"

    def test_answering_again_replaces_the_vote(self, client):
        token, _ = trusted_token()
        pair = open_pair()
        post_json(client, vote_url(pair, "yes"), {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
        again = post_json(client, vote_url(pair, "no"), {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
        assert again.json()["replaced"] is True
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (0, 1)
        assert Vote.objects.get(pair=pair).answer == Vote.Answer.NO

    @pytest.mark.parametrize(
        ("case", "status", "words"),
        [
            ("own", 403, "you donated"),
            ("frozen", 409, "closed this picture"),
            ("pending", 404, "no such public picture"),
            ("other label", 404, "no such public picture"),
        ],
    )
    def test_votes_that_cannot_be_taken_are_refused_with_a_reason(
        self, client, case, status, words
    ):
        token, voter = trusted_token()
        make_label("cat")
        image = make_image(
            donor=voter if case == "own" else None,
            status="pending" if case == "pending" else "public",
        )
        pair = open_pair(image=image)
        if case == "frozen":
            ImageLabel.objects.filter(pk=pair.pk).update(frozen=True)
        label = "cat" if case == "other label" else "dog"
        response = post_json(client, vote_url(pair), {"label": label}, HTTP_X_VOTER_TOKEN=token)
        assert response.status_code == status and words in response.json()["error"]
        assert not Vote.objects.exists()

    def test_a_sublabel_whose_parent_was_deactivated_takes_no_votes(self, client):
        token, _ = trusted_token()
        dog = make_label("dog")
        eye = make_label("eye", parent=dog)
        pair = open_pair(eye)
        post_json(
            client,
            vote_url(open_pair(eye)),
            {"label": "dog", "sublabel": "eye"},
            HTTP_X_VOTER_TOKEN=token,
        )  # the label is in this process's map now
        Label.objects.filter(pk=dog.pk).update(active=False)  # no signal: the map keeps it
        response = post_json(
            client, vote_url(pair), {"label": "dog", "sublabel": "eye"}, HTTP_X_VOTER_TOKEN=token
        )
        assert response.status_code == 404 and "not open for votes" in response.json()["error"]
        assert not Vote.objects.filter(pair=pair).exists()

    def test_a_token_header_of_blanks_is_refused(self, client):
        pair = open_pair()
        response = post_json(client, vote_url(pair), {"label": "dog"}, HTTP_X_VOTER_TOKEN="\xa0 ")
        assert response.status_code == 401 and "POST /v1/voter" in response.json()["error"]
        assert not Vote.objects.exists()

    def test_an_unknown_token_is_refused_before_anything_is_stored(self, client):
        pair = open_pair()
        response = post_json(client, vote_url(pair), {"label": "dog"}, HTTP_X_VOTER_TOKEN="nope")
        assert response.status_code == 401 and "POST /v1/voter" in response.json()["error"]
        assert not Vote.objects.exists()

    def test_a_gold_answer_by_token_still_scores_training(self, client, token):
        golden = make_pair("dog", is_gold=True, gold_answer=True)
        response = post_json(client, vote_url(golden), {"label": "dog"}, HTTP_X_VOTER_TOKEN=token)
        assert response.status_code == 200
        voter = Voter.objects.get(token_sha256=Voter.hash_token(token))
        assert (voter.gold_correct, voter.gold_wrong) == (1, 0)
        assert voter.gold_by_label == {Voter.label_key(golden.label_id): [1, 0]}

    def test_a_burst_of_token_votes_from_one_network_raises_an_alert(self, client, settings):
        settings.ALERT_BURST_VOTES = 3
        for _ in range(3):
            token, _ = trusted_token()
            pair = open_pair()
            post_json(
                client,
                vote_url(pair),
                {"label": "dog"},
                HTTP_X_VOTER_TOKEN=token,
                REMOTE_ADDR="127.0.0.1",
            )
        alert = Alert.objects.get()
        assert alert.kind == "burst" and alert.ip_prefix == "127.0.0.0/24"
        assert alert.message == (
            "3+ votes on “dog” from 127.0.0.0/24 within 10 minutes; held out of the counts."
        )
        assert not Vote.objects.filter(counted=True).exists(), "the burst's votes are held"
        assert Vote.objects.filter(quarantined=True).count() == 3


class TestDonate:
    def test_a_donation_answers_200_with_its_uuid_as_the_original_did(self, client, token):
        make_label("dog")
        response = client.post(
            "/v1/donate",
            {
                "image": SimpleUploadedFile("x.jpg", photo_bytes()),
                "label": "dog",
                "add_sublabels": "false",
            },
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 200
        assert response.json()["dedication"] == "cc0"
        assert "public domain (CC0 1.0)" in response.json()["license"]
        image = Image.objects.get(uuid=response.json()["uuid"])
        assert image.status == "pending" and image.donor.token_sha256
        assert ImageLabel.objects.get(image=image).label.name == "dog"

    def test_an_image_collection_without_an_api_token_is_named_and_not_added(self, client):
        response = client.post(
            "/v1/donate",
            {"image": SimpleUploadedFile("x.jpg", photo_bytes()), "image_collection": "trip"},
        )
        assert response.status_code == 200
        assert response.json()["image_collection"]["name"] == "trip"
        assert response.json()["image_collection"]["added"] is False

    @pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b"])
    def test_a_bad_image_collection_is_400_and_stores_nothing(self, client, name):
        response = client.post(
            "/v1/donate",
            {"image": SimpleUploadedFile("x.jpg", photo_bytes()), "image_collection": name},
        )
        assert response.status_code == 400 and "image_collection" in response.json()["error"]
        assert not Image.objects.exists()

    def test_the_cc0_dedication_is_accepted_and_any_other_refused(self, client):
        given = client.post(
            "/v1/donate", {"image": SimpleUploadedFile("x.jpg", photo_bytes()), "dedication": "cc0"}
        )
        assert given.status_code == 200
        other = client.post(
            "/v1/donate",
            {"image": SimpleUploadedFile("y.jpg", photo_bytes()), "dedication": "cc-by"},
        )
        assert other.status_code == 400 and "public domain" in other.json()["error"]
        assert Image.objects.count() == 1

    def test_add_sublabels_may_come_in_the_query_string_as_the_bulk_uploader_sends_it(self, client):
        make_label("eye", parent=make_label("dog"))
        response = client.post(
            "/v1/donate?add_sublabels=true",
            {"image": SimpleUploadedFile("x.jpg", photo_bytes()), "label": "dog"},
        )
        assert response.status_code == 200
        assert ImageLabel.objects.get(label__name="dog").ask_parts is True

    def test_a_duplicate_is_409_naming_the_public_original(self, client):
        data = photo_bytes()
        image = ingest(data).image
        image.decide("approve")
        response = client.post("/v1/donate", {"image": SimpleUploadedFile("x.jpg", data)})
        assert response.status_code == 409
        assert response.json()["uuid"] == str(image.uuid)

    def test_a_pending_duplicate_is_409_without_naming_it(self, client):
        picture = photo_bytes()
        client.post("/v1/donate", {"image": SimpleUploadedFile("a.jpg", picture)})
        response = client.post("/v1/donate", {"image": SimpleUploadedFile("b.jpg", picture)})
        assert response.status_code == 409 and "uuid" not in response.json()

    def test_a_file_that_is_not_an_image_is_422(self, client):
        response = client.post(
            "/v1/donate", {"image": SimpleUploadedFile("x.jpg", b"II*\x00" + b"\x00" * 100)}
        )
        assert response.status_code == 422 and "TIFF" in response.json()["error"]
        assert not Image.objects.exists()

    def test_one_file_per_request(self, client):
        response = client.post(
            "/v1/donate",
            {
                "image": [
                    SimpleUploadedFile("a.jpg", photo_bytes()),
                    SimpleUploadedFile("b.jpg", photo_bytes()),
                ]
            },
        )
        assert response.status_code == 400 and "exactly one file" in response.json()["error"]
        assert client.post("/v1/donate", {"label": "dog"}).status_code == 400

    def test_too_large_is_413(self, client, settings):
        settings.MAX_UPLOAD_MB = 1
        response = client.post(
            "/v1/donate", {"image": SimpleUploadedFile("a.jpg", b"\xff\xd8" + b"\x00" * 2_000_000)}
        )
        assert response.status_code == 413 and "larger than 1 MB" in response.json()["error"]

    @pytest.mark.parametrize("value", ["perhaps", "", "yes", "TRUE"])
    def test_add_sublabels_speaks_the_flags_one_vocabulary_and_refuses_the_rest(
        self, client, value
    ):
        response = client.post(
            "/v1/donate",
            {"image": SimpleUploadedFile("a.jpg", photo_bytes()), "add_sublabels": value},
        )
        assert response.status_code == 400
        assert response.json()["error"] == "add_sublabels is true or false"
        assert not Image.objects.exists()


class TestDonationImage:
    def test_public_bytes_and_stored_sizes(self, client):
        image = real_public_image(size=(1600, 1200))
        full = client.get(f"/v1/donation/{image.uuid}")
        assert full.status_code == 200 and full["Content-Type"] == "image/jpeg"
        master = b"".join(full.streaming_content)
        small = b"".join(client.get(f"/v1/donation/{image.uuid}?width=200").streaming_content)
        medium = b"".join(
            client.get(f"/v1/donation/{image.uuid}?width=800&height=600").streaming_content
        )
        assert len(small) < len(medium) < len(master)
        import io

        from PIL import Image as PILImage

        assert PILImage.open(io.BytesIO(small)).size == (256, 192)
        assert PILImage.open(io.BytesIO(medium)).size == (1024, 768)

    def test_not_public_is_404(self, client):
        pending = make_image(status="pending")
        assert client.get(f"/v1/donation/{pending.uuid}").status_code == 404

    @pytest.mark.parametrize("query", ["width=abc", "width=-1", "height=0", "width=999999999"])
    def test_bad_sizes_are_400(self, client, query):
        image = real_public_image()
        assert client.get(f"/v1/donation/{image.uuid}?{query}").status_code == 400


class TestReport:
    def test_a_report_is_stored_once_per_voter(self, client, token):
        image = real_public_image()
        response = post_json(
            client,
            f"/v1/report/{image.uuid}",
            {"reason": "shows my neighbour"},
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 200 and response.json() == {"reported": True}
        report = Report.objects.get()
        assert (report.reason, report.text) == ("other", "shows my neighbour")
        again = post_json(
            client, f"/v1/report/{image.uuid}", {"reason": "copyright"}, HTTP_X_VOTER_TOKEN=token
        )
        assert again.status_code == 409

    def test_a_report_needs_a_reason(self, client):
        image = real_public_image()
        assert post_json(client, f"/v1/report/{image.uuid}", {}).status_code == 400
        assert post_json(client, f"/v1/report/{image.uuid}", {"reason": "  "}).status_code == 400


def test_the_openapi_description_is_valid_and_lists_every_route(client):
    from openapi_spec_validator import validate

    spec = client.get("/v1/openapi.json").json()
    validate(spec)
    for path in (
        "/v1/label",
        "/v1/validate",
        "/v1/donate",
        "/v1/donation/{uuid}",
        "/v1/me",
        "/v1/voter",
    ):
        assert path in spec["paths"]


def test_the_api_page_has_curl_and_python_examples(client):
    body = client.get("/api").content.decode()
    assert "curl " in body and "import requests" in body and "/v1/openapi.json" in body


def test_the_api_page_says_donations_are_public_domain_and_where_it_differs_from_the_original(
    client,
):
    body = client.get("/api").content.decode()
    assert "dedicated to the public domain (CC0 1.0)" in body
    for difference in ("No client secrets in headers", "No unlimited votes", "No unauthenticated"):
        assert difference in body


class TestVotesOnlyOnWhatWasServed:
    def raw_vote(self, client, pair, token, **body):
        return client.post(
            vote_url(pair),
            json.dumps({"label": "dog", **body}),
            content_type="application/json",
            HTTP_X_VOTER_TOKEN=token,
        )

    def test_a_served_task_carries_a_ticket_that_its_vote_presents(self, client):
        token, _ = trusted_token()
        pair = open_pair()
        task = client.get("/v1/validate", HTTP_X_VOTER_TOKEN=token).json()
        response = self.raw_vote(client, pair, token, ticket=task["ticket"])
        assert response.status_code == 200 and Vote.objects.count() == 1

    def test_the_ticket_may_come_as_a_header(self, client):
        token, _ = trusted_token()
        pair = open_pair()
        task = client.get("/v1/validate", HTTP_X_VOTER_TOKEN=token).json()
        response = client.post(
            vote_url(pair),
            json.dumps({"label": "dog"}),
            content_type="application/json",
            HTTP_X_VOTER_TOKEN=token,
            HTTP_X_TASK_TICKET=task["ticket"],
        )
        assert response.status_code == 200

    @pytest.mark.parametrize("case", ["none", "garbage", "other pair", "other voter", "expired"])
    def test_a_vote_without_a_valid_ticket_is_403_and_stores_nothing(self, client, case, settings):
        token, voter = trusted_token()
        _, someone = trusted_token()
        pair, other = open_pair(), open_pair()
        ticket = {
            "none": None,
            "garbage": "WzEsMl0:1xY:forged",
            "other pair": tickets.issue(voter, other),
            "other voter": tickets.issue(someone, pair),
            "expired": tickets.issue(voter, pair),
        }[case]
        if case == "expired":
            settings.TASK_TICKET_SECONDS = -1
        body = {} if ticket is None else {"ticket": ticket}
        response = self.raw_vote(client, pair, token, **body)
        assert response.status_code == 403 and response.json()["error"]
        assert not Vote.objects.exists()
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (0, 0)

    def test_a_batch_needs_a_ticket_per_item_and_records_nothing_without(self, client):
        token, voter = trusted_token()
        first, second = open_pair(), open_pair()
        items = [
            {"uuid": str(first.image.uuid), "valid": "yes", "ticket": tickets.issue(voter, first)},
            {"uuid": str(second.image.uuid), "valid": "yes", "ticket": "nope"},
        ]
        response = client.patch(
            "/v1/donation/validate",
            json.dumps({"label": "dog", "validations": items}),
            content_type="application/json",
            HTTP_X_VOTER_TOKEN=token,
        )
        assert response.status_code == 403 and "nothing was recorded" in response.json()["error"]
        assert not Vote.objects.exists()

    def test_a_moderator_votes_by_uuid_without_a_ticket(self, client):
        from django.contrib.auth.models import User

        moderator = User.objects.create_user("mod", password="x", is_staff=True)
        voter, token = Voter.create_with_token(user=moderator)
        pair = open_pair()
        response = self.raw_vote(client, pair, token)
        assert response.status_code == 200 and response.json()["counted"] is True
        assert Vote.objects.get().voter == voter

    def test_a_pair_that_settled_after_it_was_served_takes_the_vote_without_counting_it(
        self, client
    ):
        token, voter = trusted_token()
        pair = open_pair()
        ticket = tickets.issue(voter, pair)  # served, then the others answer first
        for _ in range(4):
            vote(pair, trusted_token()[1], Vote.Answer.YES)
        pair.refresh_from_db()
        settled = (pair.num_yes, pair.num_no, pair.status)
        assert pair.status == "validated"
        response = self.raw_vote(client, pair, token, ticket=ticket)
        assert response.status_code == 200
        assert response.json()["counted"] is True, "the answer says nothing of the pair"
        assert Vote.objects.get(voter=voter).counted is False
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no, pair.status) == settled


class TestPagesOfOtherSites:
    """A page elsewhere cannot make its visitors' browsers write through the API."""

    @pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:9"])
    def test_a_browser_write_from_another_site_is_refused(self, client, origin):
        image = real_public_image()
        upload = SimpleUploadedFile("p.jpg", photo_bytes(), "image/jpeg")
        refused = [
            client.post("/v1/donate", {"image": upload}, HTTP_ORIGIN=origin),
            client.post("/v1/voter", HTTP_ORIGIN=origin),
            client.post(
                f"/v1/report/{image.uuid}",
                {"reason": "sensitive"},
                content_type="application/json",
                HTTP_ORIGIN=origin,
            ),
        ]
        pair = open_pair()
        body = {"label": "dog", "validations": [{"uuid": str(pair.image.uuid), "valid": "yes"}]}
        refused += [
            post_json(
                client, f"/v1/donation/{pair.image.uuid}/validate/yes", {"label": "dog"},
                HTTP_ORIGIN=origin,
            ),
            post_json(client, "/v1/donation/validate", body, method="patch", HTTP_ORIGIN=origin),
        ]  # fmt: skip
        assert [r.status_code for r in refused] == [403] * 5
        assert "other sites" in refused[0].json()["error"]
        assert Image.objects.count() == 2 and not Voter.objects.exists()
        assert not Vote.objects.exists()

    def test_scripts_extensions_and_our_own_pages_may_write(self, client):
        for headers in (
            {},
            {"HTTP_ORIGIN": "chrome-extension://abc"},
            {"HTTP_ORIGIN": "http://testserver"},
        ):
            assert client.post("/v1/voter", **headers).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_batches_over_the_same_pairs_in_opposite_orders_both_succeed(monkeypatch):
    """Pairs are locked in one order whatever order a batch names them in: no deadlock."""
    import contextlib
    import threading

    from validation import api as validation_api

    pairs = [open_pair() for _ in range(2)]
    tokens = [trusted_token()[0] for _ in range(2)]
    barrier = threading.Barrier(2, timeout=3)
    recorded = validation_api.record_vote
    local = threading.local()

    def record_then_wait(*args, **kwargs):
        result = recorded(*args, **kwargs)
        if not getattr(local, "waited", False):  # both hold their first lock, then go on
            local.waited = True
            # A broken barrier: the other batch waits for our lock; go on and release it.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return result

    monkeypatch.setattr(validation_api, "record_vote", record_then_wait)
    codes = []

    def batch(token, order):
        try:
            body = {
                "label": "dog",
                "validations": [{"uuid": str(p.image.uuid), "valid": "yes"} for p in order],
            }
            response = post_json(
                Client(), "/v1/donation/validate", body, method="patch", HTTP_X_VOTER_TOKEN=token
            )
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=batch, args=(tokens[0], pairs)),
        threading.Thread(target=batch, args=(tokens[1], pairs[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200, 200]
    assert Vote.objects.count() == 4
