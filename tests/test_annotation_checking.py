"""Checking outlines: validation's voters, trust, gold, weights, alerts and settling rules,
on the latest revision of an outline."""

import json

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from annotations import drawing, tasks
from annotations import voting as outline_voting
from annotations.models import Annotation, AnnotationTask, AnnotationVote
from donations.models import Image, ImageLabel
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair, make_voter, network_of, vote
from validation import rules
from validation import voting as pair_voting
from validation.models import Alert

pytestmark = pytest.mark.django_db

RECT = {"type": "rect", "left": 10, "top": 20, "width": 100, "height": 50}
YES, NO = AnnotationVote.Answer.YES, AnnotationVote.Answer.NO


def trusted(**fields) -> Voter:
    fields.setdefault("gold_correct", 20)  # capped at 0.9: each vote multiplies the odds by 9
    return make_voter(trusted=True, **fields)


def outlined(label="dog", image=None, author=None, shapes=(RECT,)) -> Annotation:
    pair = make_pair(label, image or make_image(), status=ImageLabel.Status.VALIDATED)
    tasks.pair_status_changed(pair.pk, pair.label_id, pair.status)
    pair = ImageLabel.objects.select_related("image", "label__parent").get(pk=pair.pk)
    return drawing.draw(pair, author or make_voter(), list(shapes)).annotation


def check(annotation: Annotation, voter: Voter, answer=YES, network=None):
    """Answer an outline as if it had been served to this voter, from their own network."""
    annotation.refresh_from_db()
    ticket = outline_voting.check_ticket(voter, annotation)
    return outline_voting.record_vote(
        annotation.uuid,
        voter,
        answer,
        network_of(voter) if network is None else network,
        ticket=ticket,
    )


def api_check(client, annotation, token, answer="yes", **body):
    return client.post(
        f"/v1/annotation/{annotation.uuid}/validate/{answer}",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_VOTER_TOKEN=token,
    )


def token_of(voter: Voter) -> str:
    _, token = Voter.create_with_token()
    Voter.objects.filter(token_sha256=Voter.hash_token(token)).delete()
    Voter.objects.filter(pk=voter.pk).update(token_sha256=Voter.hash_token(token))
    return token


def test_three_trusted_yes_accept_an_outline_and_close_its_task():
    annotation = outlined()
    for _ in range(3):
        check(annotation, trusted())
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.ACCEPTED
    assert annotation.confidence >= 0.995
    task = AnnotationTask.objects.get(pk=annotation.pair_id)
    assert task.accepted and not task.open


def test_three_trusted_no_reject_an_outline_and_the_pair_stays_a_task():
    annotation = outlined()
    for _ in range(3):
        check(annotation, trusted(), NO)
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.REJECTED
    assert AnnotationTask.objects.get(pk=annotation.pair_id).open


def test_votes_of_voters_in_training_are_kept_but_settle_nothing():
    annotation = outlined()
    for _ in range(6):
        check(annotation, make_voter())
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.OPEN
    assert annotation.num_yes == 0 and AnnotationVote.objects.count() == 6
    assert annotation.confidence == 0


def test_one_network_cannot_settle_an_outline_alone():
    annotation = outlined()
    for _ in range(4):
        check(annotation, trusted(), network="10.9.9.0/24")
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.OPEN


def test_the_same_threshold_as_pairs_settles_outlines(settings):
    settings.VALIDATION_POSTERIOR = 0.9999  # two votes at × 9 no longer reach it
    annotation = outlined()
    for _ in range(3):
        check(annotation, trusted())
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.OPEN
    for _ in range(2):
        check(annotation, trusted())
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.ACCEPTED


def test_a_vote_without_the_ticket_of_its_task_is_refused_and_stores_nothing(client):
    annotation = outlined()
    voter = trusted()
    response = api_check(client, annotation, token_of(voter))
    assert response.status_code == 403
    assert "ticket" in response.json()["error"]
    assert not AnnotationVote.objects.exists()


def test_a_served_outline_is_checked_through_the_api(client):
    annotation = outlined()
    voter = trusted()
    token = token_of(voter)
    task = client.get("/v1/annotation", HTTP_X_VOTER_TOKEN=token).json()
    assert task["annotation_id"] == str(annotation.uuid)
    response = api_check(client, annotation, token, ticket=task["ticket"])
    assert response.status_code == 200, response.content
    assert response.json() == {
        "annotation_id": str(annotation.uuid),
        "revision": 1,
        "valid": "yes",
        "replaced": False,
        "counted": True,
    }
    assert AnnotationVote.objects.get().counted


def test_nobody_checks_their_own_outline_nor_one_on_their_own_picture():
    author, donor = trusted(), trusted()
    annotation = outlined(image=make_image(donor=donor), author=author)
    for who in (author, donor):
        with pytest.raises(outline_voting.VoteRefused) as refused:
            check(annotation, who)
        assert refused.value.status == 403
    assert not AnnotationVote.objects.exists()


def test_the_author_is_not_served_their_own_outline(client):
    author = trusted()
    outlined(author=author)
    response = client.get("/v1/annotation", HTTP_X_VOTER_TOKEN=token_of(author))
    assert response.status_code == 404


@pytest.mark.parametrize("status", [Image.Status.HIDDEN, Image.Status.PENDING])
def test_outlines_on_pictures_that_are_not_public_take_no_votes(status):
    annotation = outlined()
    Image.objects.filter(pk=annotation.pair.image_id).update(status=status)
    with pytest.raises(outline_voting.VoteRefused) as refused:
        check(annotation, trusted())
    assert refused.value.status == 404
    assert not AnnotationVote.objects.exists()


def test_a_frozen_pair_takes_no_outline_votes():
    annotation = outlined()
    ImageLabel.objects.filter(pk=annotation.pair_id).update(frozen=True)
    with pytest.raises(outline_voting.VoteRefused) as refused:
        check(annotation, trusted())
    assert refused.value.status == 409


def test_answering_again_replaces_the_answer():
    annotation = outlined()
    voter = trusted()
    check(annotation, voter, YES)
    result = check(annotation, voter, NO)
    assert result.replaced
    annotation.refresh_from_db()
    assert (annotation.num_yes, annotation.num_no) == (0, 1)


def test_one_vote_per_voter_per_revision_is_a_constraint():
    annotation = outlined()
    voter = trusted()
    check(annotation, voter)
    with pytest.raises(IntegrityError), transaction.atomic():
        AnnotationVote.objects.create(annotation=annotation, revision=1, voter=voter, answer=NO)


def test_a_new_revision_starts_its_votes_afresh():
    annotation = outlined()
    author = annotation.author
    voters = [trusted() for _ in range(3)]
    for voter in voters:
        check(annotation, voter)
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.ACCEPTED
    stale_ticket = outline_voting.check_ticket(voters[0], annotation)
    annotation = Annotation.objects.select_related("pair__image", "pair__label__parent").get(
        pk=annotation.pk
    )
    drawing.revise(annotation, author, [{**RECT, "left": 30}])
    annotation.refresh_from_db()
    assert (annotation.revision, annotation.status, annotation.num_yes) == (2, "open", 0)
    assert AnnotationTask.objects.get(pk=annotation.pair_id).open
    with pytest.raises(outline_voting.VoteRefused):
        outline_voting.record_vote(
            annotation.uuid, voters[0], YES, network_of(voters[0]), ticket=stale_ticket
        )
    check(annotation, voters[0], NO)  # the same voter, on the new revision
    annotation.refresh_from_db()
    assert (annotation.num_yes, annotation.num_no) == (0, 1)
    assert AnnotationVote.objects.filter(voter=voters[0]).count() == 2


def test_a_gold_outline_scores_a_first_answer_into_the_voters_gold_record():
    annotation = outlined()
    outline_voting.make_gold(annotation, True)
    learner = make_voter()
    check(annotation, learner, YES)
    learner.refresh_from_db()
    assert (learner.gold_correct, learner.gold_wrong) == (1, 0)
    assert learner.record_on(annotation.pair.label_id) == [1, 0]
    check(annotation, learner, NO)  # only the first answer is scored
    learner.refresh_from_db()
    assert (learner.gold_correct, learner.gold_wrong) == (1, 0)


@pytest.mark.parametrize("answer", [True, False])
def test_a_moderators_gold_outline_is_settled_by_the_crowds_votes_as_a_gold_pair_is(answer):
    annotation = outlined()
    outline_voting.make_gold(annotation, answer)
    annotation.refresh_from_db()
    assert (annotation.status, annotation.is_gold, annotation.gold_answer) == (
        Annotation.Status.OPEN,
        True,
        answer,
    ), "a moderator's answer alone settles nothing"
    assert AnnotationTask.objects.get(pk=annotation.pair_id).open
    check(annotation, make_voter(), YES)  # a voter in training: no say
    agreeing, settled = (
        (YES, Annotation.Status.ACCEPTED) if answer else (NO, Annotation.Status.REJECTED)
    )
    for _ in range(3):
        check(annotation, trusted(), agreeing)
    annotation.refresh_from_db()
    assert (annotation.status, annotation.num_yes + annotation.num_no) == (settled, 3)
    assert annotation.is_gold and annotation.gold_answer is answer
    check(annotation, trusted(), NO if answer else YES)  # on a settled outline: no say
    annotation.refresh_from_db()
    assert (annotation.status, annotation.num_yes + annotation.num_no) == (settled, 3)


def test_a_moderators_gold_outline_is_not_exported_as_an_ordinary_open_one_is_not(client):
    ordinary, gold = outlined(), outlined("cat")
    outline_voting.make_gold(gold, True)
    response = client.get("/v1/export", {"query": "dog | cat"})
    exported = [
        row for row in json.loads(b"".join(response.streaming_content)) if row["annotations"]
    ]
    assert exported == [], "a served gold outline must not be told apart by the export"
    seen = {}
    for annotation in (ordinary, gold):
        body = client.get("/v1/annotation", {"annotation_id": str(annotation.uuid)}).json()
        seen[annotation.pk] = set(body) | {(body["num_yes"], body["num_no"])}
    assert seen[ordinary.pk] == seen[gold.pk]


def test_gold_outlines_count_towards_training_beside_gold_pairs():
    gold_outline = outlined()
    outline_voting.make_gold(gold_outline, True)
    learner = make_voter()
    vote(make_pair("bird", is_gold=True, gold_answer=True), learner, 1)
    vote(make_pair("bird", is_gold=True, gold_answer=False), learner, 0)
    learner.refresh_from_db()
    assert not learner.trusted, "two gold answers are not enough"
    check(gold_outline, learner, YES)
    learner.refresh_from_db()
    assert learner.trusted and learner.gold_correct == 3


def test_a_voter_who_becomes_trusted_on_gold_pairs_counts_on_open_outlines():
    annotation = outlined()
    learner = make_voter(gold_correct=2)
    check(annotation, learner, YES)
    assert not AnnotationVote.objects.get().counted
    for answer in (True, False):
        vote(make_pair("bird", is_gold=True, gold_answer=answer), learner, int(answer))
    learner.refresh_from_db()
    assert learner.trusted
    held = AnnotationVote.objects.get()
    assert held.counted and held.weight > 0
    annotation.refresh_from_db()
    assert annotation.num_yes == 1


def test_gold_and_ordinary_outlines_are_served_alike(client):
    ordinary, gold = outlined(), outlined("cat")
    outline_voting.make_gold(gold, False)
    seen = {}
    for _ in range(40):
        body = client.get("/v1/annotation", HTTP_X_VOTER_TOKEN=token_of(make_voter())).json()
        seen[body["annotation_id"]] = body
        if len(seen) == 2:
            break
    assert set(seen) == {str(ordinary.uuid), str(gold.uuid)}
    first, second = seen.values()
    assert set(first) == set(second)
    assert len(first["ticket"]) == len(second["ticket"])


def test_moderators_answers_are_gold_only_through_the_admin():
    annotation = outlined()
    moderator = trusted()
    from django.contrib.auth.models import User

    moderator.user = User.objects.create(username="mod", is_staff=True)
    moderator.save()
    check(annotation, moderator)
    annotation.refresh_from_db()
    assert not annotation.is_gold


def test_an_outline_that_changes_sides_raises_a_flip_alert():
    annotation = outlined()
    for _ in range(3):
        check(annotation, trusted())
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.ACCEPTED
    # Trust taken from its voters: recounted, it is open again; then rejected.
    for vote_row in AnnotationVote.objects.all():
        pair_voting.discard_votes(vote_row.voter)
    for _ in range(3):
        check(annotation, trusted(), NO)
    annotation.refresh_from_db()
    assert annotation.status == Annotation.Status.REJECTED
    flip = Alert.objects.get(kind=Alert.Kind.FLIP)
    assert flip.pair_id == annotation.pair_id
    assert flip.details["annotation"] == str(annotation.uuid)
    assert "flipped from accepted to rejected" in flip.message


def test_a_burst_of_checks_from_one_network_is_held(settings):
    settings.ALERT_BURST_VOTES = 5
    label = make_label("dog")
    outlines = [outlined(label) for _ in range(6)]
    network = "10.66.66.0/24"
    for annotation in outlines:
        check(annotation, trusted(), network=network)
    burst = Alert.objects.get(kind=Alert.Kind.BURST)
    assert burst.ip_prefix == network and burst.label_id == label.pk
    assert not AnnotationVote.objects.filter(counted=True).exists()
    assert AnnotationVote.objects.filter(quarantined=True).count() == 6
    outline_voting.release_quarantine(burst)
    assert AnnotationVote.objects.filter(counted=True).count() == 6


def test_a_pair_validated_by_the_crowd_becomes_a_task_to_outline():
    pair = make_pair("dog")
    for _ in range(3):
        vote(pair, trusted(), 1)
    pair.refresh_from_db()
    assert pair.status == ImageLabel.Status.VALIDATED
    assert AnnotationTask.objects.get(pk=pair.pk).open


def test_rules_tally_of_a_vote_set_is_the_pairs_sql_tally():
    pair = make_pair("dog")
    voters = [trusted(gold_correct=n) for n in (3, 8, 20)] + [make_voter()]
    for n, voter in enumerate(voters):
        vote(pair, voter, n % 2)
    sql_tally = pair_voting._tally(pair.pk, pair.created)[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT answer = 1, weight, ip_prefix FROM validation_vote WHERE pair_id = %s "
            "AND counted",
            [pair.pk],
        )
        rows = cursor.fetchall()
    assert rules.tally(rows) == sql_tally


@settings_hypothesis(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 30), st.integers(0, 4), st.integers(0, 3)),
        min_size=1,
        max_size=7,
    )
)
def test_an_outlines_outcome_is_what_the_rules_say_of_its_votes(ballots):
    """Each ballot: (yes, gold right, gold wrong, network). Same rules as pairs, no copy."""
    with transaction.atomic():  # each example starts from nothing
        annotation = outlined()
        for said_yes, right, wrong, network in ballots:
            voter = make_voter(trusted=True, gold_correct=right + 3, gold_wrong=wrong)
            check(annotation, voter, YES if said_yes else NO, network=f"10.8.{network}.0/24")
        annotation.refresh_from_db()
        rows = AnnotationVote.objects.filter(annotation=annotation, counted=True)
        for row in rows:
            assert row.weight == pair_voting.weight_of(row.voter, annotation.pair.label_id)
        expected = rules.outcome(
            rules.tally((row.answer == YES, row.weight, row.ip_prefix) for row in rows)
        )
        assert annotation.confidence == pytest.approx(expected.confidence)
        assert annotation.status == outline_voting.STATUS_OF[expected.status]
        transaction.set_rollback(True)


def test_settled_ordinary_outlines_are_served_beside_settled_gold_so_the_export_tells_nothing(
    monkeypatch,
):
    from annotations import selection
    from validation import selection as pair_selection

    ordinary, gold = outlined(), outlined("cat")
    outline_voting.make_gold(gold, True)
    for annotation in (ordinary, gold):
        for _ in range(3):
            check(annotation, trusted(), YES)
        annotation.refresh_from_db()
        assert annotation.status == Annotation.Status.ACCEPTED  # both in the export now
    monkeypatch.setattr(pair_selection, "wants_gold", lambda voter: True)
    served = {selection.outline_to_check(make_voter()).pk for _ in range(40)}
    assert served == {ordinary.pk, gold.pk}
    check(ordinary, trusted(), NO)  # a vote on a settled outline counts for nothing
    ordinary.refresh_from_db()
    assert (ordinary.status, ordinary.num_no) == (Annotation.Status.ACCEPTED, 0)
    grid = selection.outlines_to_check(make_voter(), 12)
    assert {a.pk for a in grid} == {ordinary.pk, gold.pk}, "a trainee's grid holds both"
