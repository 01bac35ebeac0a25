"""What is offered to outline and to check: GET /v1/annotate, GET /v1/annotation,
"not annotatable", and GET /v1/annotations?query=."""

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations import drawing, selection, tasks
from annotations import voting as outline_voting
from annotations.models import Annotation, AnnotationTask, NotAnnotatable
from donations.models import Image, ImageLabel
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair, make_voter

pytestmark = pytest.mark.django_db

RECT = {"type": "rect", "left": 10, "top": 20, "width": 100, "height": 50}


def task(label="dog", image=None) -> ImageLabel:
    """A validated pair, waiting for an outline as the crowd's recount makes it."""
    pair = make_pair(label, image or make_image(), status=ImageLabel.Status.VALIDATED)
    tasks.pair_status_changed(pair.pk, pair.label_id, pair.status)
    return ImageLabel.objects.select_related("image", "label__parent").get(pk=pair.pk)


def token_for(voter: Voter) -> str:
    _, token = Voter.create_with_token()
    Voter.objects.filter(token_sha256=Voter.hash_token(token)).delete()
    Voter.objects.filter(pk=voter.pk).update(token_sha256=Voter.hash_token(token))
    return token


def served(client, token=None, **query) -> dict | None:
    headers = {"HTTP_X_VOTER_TOKEN": token} if token else {}
    response = client.get("/v1/annotate", query, **headers)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.content
    return response.json()


def test_it_serves_a_validated_pair_in_the_original_shape(client):
    pair = task()
    body = served(client)
    assert body["uuid"] == str(pair.image.uuid)
    assert (body["label"], body["sublabel"], body["provider"]) == ("dog", "", "donation")
    assert (body["width"], body["height"]) == (640, 480)
    assert body["validation_id"] == str(pair.uuid) and body["ticket"]


def test_serving_a_task_writes_nothing(client):
    task()
    voters = Voter.objects.count()
    with CaptureQueriesContext(connection) as queries:
        assert served(client) is not None
        assert client.get("/v1/annotation").status_code == 404
    assert Voter.objects.count() == voters
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []


def test_pairs_that_are_not_to_be_outlined_are_never_served(client):
    accepted = task("dog")
    Annotation.objects.create(pair=accepted, status=Annotation.Status.ACCEPTED)
    tasks.outline_settled(accepted.pk)
    task(make_label("beach", annotatable=False))
    hidden = task("cat")
    Image.objects.filter(pk=hidden.image_id).update(status=Image.Status.HIDDEN)
    make_pair("bird")  # not validated
    for _ in range(10):
        assert served(client) is None


def test_a_pair_someone_outlined_stays_offered_to_others_but_not_to_them(client):
    pair = task()
    author = make_voter()
    drawing.draw(pair, author, [RECT])
    assert served(client, token_for(author)) is None
    other = served(client, token_for(make_voter()))
    assert other["validation_id"] == str(pair.uuid)
    assert AnnotationTask.objects.get(pk=pair.pk).outlines == 1


def test_pairs_with_fewer_outlines_come_first(client):
    drawn, fresh = task("dog"), task("cat")
    drawing.draw(drawn, make_voter(), [RECT])
    for _ in range(5):
        assert served(client)["validation_id"] == str(fresh.uuid)


def test_label_label_id_and_validation_id_choose_what_is_served(client):
    dog, cat = task("dog"), task("cat")
    for _ in range(5):
        assert served(client, label="cat")["validation_id"] == str(cat.uuid)
        assert served(client, label_id=dog.label_id)["validation_id"] == str(dog.uuid)
    assert served(client, validation_id=dog.uuid)["validation_id"] == str(dog.uuid)
    assert client.get("/v1/annotate", {"label": "unicorn"}).status_code == 404
    assert client.get("/v1/annotate", {"label_id": "x"}).status_code == 404
    assert client.get("/v1/annotate", {"validation_id": str(uuid.uuid4())}).status_code == 404
    assert client.get("/v1/annotate", {"validation_id": make_pair("bird").uuid}).status_code == 404


def not_annotatable(client, pair, token, ticket=None):
    body = {"ticket": ticket} if ticket else {}
    return client.post(
        f"/v1/validation/{pair.uuid}/not-annotatable",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_VOTER_TOKEN=token,
    )


def test_three_trusted_voters_served_the_pair_close_it_as_not_annotatable(client, settings):
    settings.NOT_ANNOTATABLE_TO_CLOSE = 3
    pair = task()
    for n in range(3):
        assert AnnotationTask.objects.get(pk=pair.pk).open
        token = token_for(make_voter(trusted=True, gold_correct=10))
        ticket = served(client, token)["ticket"]
        response = not_annotatable(client, pair, token, ticket)
        assert response.status_code == 200, response.content
        assert AnnotationTask.objects.get(pk=pair.pk).not_annotatable == n + 1
    assert not AnnotationTask.objects.get(pk=pair.pk).open
    assert served(client) is None


def test_fresh_identities_and_unserved_words_never_close_a_pair(client):
    pair = task()
    for _ in range(5):
        token = client.post("/v1/voter").json()["token"]
        ticket = served(client, token)["ticket"]
        assert not_annotatable(client, pair, token, ticket).status_code == 200
    for _ in range(5):  # trusted, but naming a pair of their choosing
        assert not_annotatable(client, pair, token_for(make_voter(trusted=True))).status_code == 200
    assert NotAnnotatable.objects.count() == 10
    assert AnnotationTask.objects.get(pk=pair.pk).open


def test_trusted_voters_who_ask_for_a_pair_by_its_uuid_do_not_close_it(client, settings):
    settings.NOT_ANNOTATABLE_TO_CLOSE = 2
    pair = task()
    for _ in range(3):
        token = token_for(make_voter(trusted=True, gold_correct=10))
        ticket = served(client, token, validation_id=pair.uuid)["ticket"]
        assert not_annotatable(client, pair, token, ticket).status_code == 200
    task_row = AnnotationTask.objects.get(pk=pair.pk)
    assert task_row.open and task_row.not_annotatable == 0


def test_a_voter_who_said_not_annotatable_is_not_served_the_pair_again(client):
    pair = task()
    token = token_for(make_voter())
    assert not_annotatable(client, pair, token).status_code == 200
    assert not_annotatable(client, pair, token).status_code == 200, "saying it twice is fine"
    assert served(client, token) is None


def test_not_annotatable_needs_a_pair_to_outline(client):
    token = token_for(make_voter())
    assert not_annotatable(client, make_pair("dog"), token).status_code == 404
    response = client.post(
        f"/v1/validation/{uuid.uuid4()}/not-annotatable",
        "{}",
        content_type="application/json",
        HTTP_X_VOTER_TOKEN=token,
    )
    assert response.status_code == 404
    assert response.json()["error"] == "no such validated pair to outline"
    assert client.get(f"/v1/validation/{uuid.uuid4()}/not-annotatable").status_code == 405


def test_outlines_to_check_prefer_the_fewest_votes_and_skip_what_was_answered():
    first = drawing.draw(task("dog"), make_voter(), [RECT]).annotation
    second = drawing.draw(task("cat"), make_voter(), [RECT]).annotation
    voter = make_voter(trusted=True, gold_correct=20)
    ticket = outline_voting.check_ticket(voter, first)
    outline_voting.record_vote(first.uuid, voter, 1, "10.1.1.0/24", ticket=ticket)
    for _ in range(5):
        assert selection.outline_to_check(voter) == second
    other = make_voter(trusted=True, gold_correct=20)
    assert {selection.outline_to_check(other) for _ in range(20)} <= {first, second}


def test_a_settled_outline_is_served_to_check_only_where_gold_would_be(monkeypatch):
    annotation = drawing.draw(task(), make_voter(), [RECT]).annotation
    Annotation.objects.filter(pk=annotation.pk).update(status=Annotation.Status.ACCEPTED)
    checker = make_voter(trusted=True, gold_correct=20)
    # Settled outlines stand beside gold (annotations.selection._POOLS), never among the
    # open ones: with no gold due, there is nothing to check.
    monkeypatch.setattr(selection.pair_selection, "wants_gold", lambda voter: False)
    assert all(selection.outline_to_check(checker) is None for _ in range(20))
    monkeypatch.setattr(selection.pair_selection, "wants_gold", lambda voter: True)
    assert selection.outline_to_check(checker) == annotation


def test_the_grid_of_outlines_to_check_has_gold_for_voters_in_training():
    ordinary = [drawing.draw(task("dog"), make_voter(), [RECT]).annotation for _ in range(4)]
    gold = drawing.draw(task("dog"), make_voter(), [RECT]).annotation
    outline_voting.make_gold(gold, True)
    chosen = selection.outlines_to_check(make_voter(), 12)
    assert gold in chosen and set(ordinary) <= set(chosen)


def test_browsing_outlines_by_query(client):
    dog = drawing.draw(task("dog"), make_voter(), [RECT]).annotation
    drawing.draw(task("cat"), make_voter(), [RECT])
    body = client.get("/v1/annotations", {"query": "dog"}).json()
    assert [a["annotation_id"] for a in body["annotations"]] == [str(dog.uuid)]
    assert body["annotations"][0]["annotations"][0]["type"] == "rect"
    assert len(client.get("/v1/annotations", {"query": "dog | cat"}).json()["annotations"]) == 2
    assert client.get("/v1/annotations").status_code == 400
    assert client.get("/v1/annotations", {"query": "dog &"}).status_code == 400
    assert client.get("/v1/annotations", {"query": "~dog"}).status_code == 400
    assert client.get("/v1/annotations", {"query": "dog", "limit": "0"}).status_code == 400
    assert client.get("/v1/annotations", {"query": "unicorn"}).status_code == 400


def test_browsing_shows_no_outline_of_a_hidden_picture(client):
    dog = drawing.draw(task("dog"), make_voter(), [RECT]).annotation
    Image.objects.filter(pk=dog.pair.image_id).update(status=Image.Status.HIDDEN)
    assert client.get("/v1/annotations", {"query": "dog"}).json()["annotations"] == []


def test_merging_a_label_keeps_its_outlines_and_tasks(client):
    from validation.merge import merge_labels

    puppy, dog = make_label("puppy"), make_label("dog")
    moved = task(puppy)
    image = make_image()
    combined, kept = task(puppy, image), task(dog, image)
    author, both = make_voter(), make_voter()
    moved_outline = drawing.draw(moved, author, [RECT]).annotation
    combined_outline = drawing.draw(combined, author, [RECT]).annotation
    drawing.draw(combined, both, [RECT])
    drawing.draw(kept, both, [{**RECT, "left": 40}])
    merge_labels(puppy, dog)
    assert AnnotationTask.objects.get(pk=moved.pk).label_id == dog.pk
    moved_outline.refresh_from_db()
    combined_outline.refresh_from_db()
    assert combined_outline.pair_id == kept.pk, "it moved to the pair it was combined into"
    assert Annotation.objects.filter(pair=kept).count() == 2, "one outline per author stays"
    assert AnnotationTask.objects.get(pk=kept.pk).outlines == 2
    for _ in range(5):
        assert served(client, label="dog")["validation_id"] in (str(moved.uuid), str(kept.uuid))


def test_an_empty_label_id_names_nothing_and_a_validation_id_must_be_a_uuid(client):
    pair = task()
    assert client.get("/v1/annotate?label_id=").status_code == 404
    for wrong in ("", str(pair.pk), "nope"):
        response = client.get("/v1/annotate", {"validation_id": wrong})
        assert response.status_code == 400
        assert response.json()["error"] == "validation_id is a pair's uuid"
    assert client.get("/v1/annotation?label_id=").status_code == 404
