"""Two people outline the same pair: their agreement by IoU, and what it counts for."""

import json
import math

import pytest

from annotations import agreement, drawing, tasks
from annotations import voting as outline_voting
from annotations.models import Agreement, Annotation, AnnotationVote
from donations.models import ImageLabel
from tests.helpers import make_image, make_pair, make_voter, network_of

pytestmark = pytest.mark.django_db

DOG = {"type": "rect", "left": 100, "top": 100, "width": 200, "height": 150}
NEARLY = {"type": "rect", "left": 104, "top": 98, "width": 198, "height": 150}
ELSEWHERE = {"type": "rect", "left": 400, "top": 300, "width": 100, "height": 100}


def task(label="dog"):
    pair = make_pair(label, make_image(), status=ImageLabel.Status.VALIDATED)
    tasks.pair_status_changed(pair.pk, pair.label_id, pair.status)
    return ImageLabel.objects.select_related("image", "label__parent").get(pk=pair.pk)


def trusted():
    return make_voter(trusted=True, gold_correct=20)


def drawn(pair, author, shape, served=True) -> Annotation:
    """An outline drawn for a task its author was served (with the task's ticket), or not."""
    author.save()
    network = network_of(author)
    ticket = drawing.draw_ticket(author, pair, network) if served else None
    return drawing.draw(pair, author, [shape], network, ticket=ticket).annotation


def test_agreeing_independent_outlines_vouch_for_each_other():
    pair = task()
    first_author, second_author = trusted(), trusted()
    first = drawn(pair, first_author, DOG)
    second = drawn(pair, second_author, NEARLY)
    [compared] = Agreement.objects.all()
    assert (compared.first, compared.second) == (second, first)
    assert compared.iou > 0.9
    on_first = AnnotationVote.objects.get(annotation=first)
    on_second = AnnotationVote.objects.get(annotation=second)
    assert (on_first.voter, on_first.answer, on_first.counted) == (second_author, 1, True)
    assert (on_second.voter, on_second.answer, on_second.counted) == (first_author, 1, True)
    assert on_first.ip_prefix == network_of(second_author)


def test_outlines_not_drawn_for_a_served_task_are_compared_but_add_no_evidence():
    pair = task()
    drawn(pair, trusted(), DOG)
    drawn(pair, trusted(), NEARLY, served=False)
    assert Agreement.objects.get().iou > 0.9
    assert not AnnotationVote.objects.exists()


def test_disagreeing_outlines_add_no_evidence_either_way():
    pair = task()
    drawn(pair, trusted(), DOG)
    drawn(pair, trusted(), ELSEWHERE)
    assert Agreement.objects.get().iou == 0
    assert not AnnotationVote.objects.exists()


def test_agreement_is_an_ordinary_vote_that_weighs_nothing_in_training():
    pair = task()
    first = drawn(pair, trusted(), DOG)
    drawn(pair, make_voter(), NEARLY)
    vote = AnnotationVote.objects.get(annotation=first)
    assert not vote.counted and vote.weight == 0


def test_a_check_the_author_made_themselves_stands():
    pair = task()
    first = drawn(pair, trusted(), DOG)
    critic = trusted()
    ticket = outline_voting.check_ticket(critic, first)
    outline_voting.record_vote(first.uuid, critic, 0, network_of(critic), ticket=ticket)
    drawn(pair, critic, NEARLY)
    assert AnnotationVote.objects.get(annotation=first, voter=critic).answer == 0


def test_agreeing_outlines_and_one_check_accept_an_outline():
    pair = task()
    first = drawn(pair, trusted(), DOG)
    drawn(pair, trusted(), NEARLY)
    drawn(pair, trusted(), DOG)
    first.refresh_from_db()
    assert first.status == Annotation.Status.OPEN, "two agreeing outlines are two voters"
    checker = trusted()
    ticket = outline_voting.check_ticket(checker, first)
    outline_voting.record_vote(first.uuid, checker, 1, network_of(checker), ticket=ticket)
    first.refresh_from_db()
    assert first.status == Annotation.Status.ACCEPTED


def test_a_new_revision_is_compared_again():
    pair = task()
    first = drawn(pair, trusted(), DOG)
    drawn(pair, trusted(), ELSEWHERE)
    first = Annotation.objects.select_related("pair__image", "pair__label__parent").get(pk=first.pk)
    drawing.revise(first, first.author, [ELSEWHERE])
    latest = Agreement.objects.get(first=first, first_revision=2)
    assert latest.iou == pytest.approx(1, abs=0.01)
    assert AnnotationVote.objects.filter(annotation=first, revision=2).count() == 1


def test_statistics_report_agreement_per_label(client):
    pair = task()
    drawn(pair, trusted(), DOG)
    drawn(pair, trusted(), ELSEWHERE)
    other = task("cat")
    drawn(other, trusted(), DOG)
    drawn(other, trusted(), NEARLY)
    rows = {row["label"]: row for row in agreement.by_label()}
    assert rows["dog"]["comparisons"] == 1 and rows["dog"]["agreeing"] == 0
    assert rows["cat"]["agreeing"] == 1 and rows["cat"]["mean_iou"] > 0.9
    page = client.get("/statistics").content.decode()
    assert "how well two people agree" in page
    assert '<th scope="row">cat</th>' in page


def api_outline(client, pair, voter, shape, **query):
    """`voter` asks GET /v1/annotate for a pair (`query`) and outlines it with its ticket."""
    from tests.test_annotation_selection import token_for

    token = token_for(voter)
    body = client.get("/v1/annotate", query, HTTP_X_VOTER_TOKEN=token).json()
    assert body["validation_id"] == str(pair.uuid)
    item = {"annotations": [shape], "label": "dog", "ticket": body["ticket"]}
    response = client.post(
        f"/v1/donation/{pair.image.uuid}/annotate",
        json.dumps([item]),
        content_type="application/json",
        HTTP_X_VOTER_TOKEN=token,
    )
    assert response.status_code == 201, response.content
    return Annotation.objects.get(pair=pair, author=voter)


def test_outlines_of_a_pair_asked_for_by_its_validation_id_add_no_evidence(client):
    pair = task()
    for shape in (DOG, NEARLY):
        outline = api_outline(client, pair, trusted(), shape, validation_id=pair.uuid)
        assert not outline.independent, "its author chose the pair"
    assert Agreement.objects.get().iou > 0.9
    assert not AnnotationVote.objects.exists()


def test_outlines_of_a_pair_served_by_chance_through_the_api_vouch_for_each_other(client):
    pair = task()
    for shape in (DOG, NEARLY):
        assert api_outline(client, pair, trusted(), shape).independent
    assert AnnotationVote.objects.filter(answer=AnnotationVote.Answer.YES).count() == 2


def test_outlines_too_big_to_compare_in_a_request_are_not_compared():
    def ring(radius):
        return {
            "type": "polygon",
            "points": [
                {"x": 320 + radius * math.cos(k / 8), "y": 240 + radius * math.sin(k / 8)}
                for k in range(50)
            ],
        }

    pair = task()
    big = [ring(200)] * 30  # 30 × 30 pairs of 50-point polygons: minutes at a hundred
    assert agreement.work(big, big) > agreement.MAX_WORK
    drawn_big = drawing.draw(pair, trusted(), big).annotation
    drawn(pair, trusted(), DOG)
    assert Agreement.objects.get().second == drawn_big, "a small outline is still compared"
    drawing.draw(pair, trusted(), big)
    assert Agreement.objects.count() == 1 + 1, "the second big one is compared with DOG only"
    assert not Agreement.objects.filter(first__pair=pair, iou__gt=0.99).exists()
