"""The blind re-vote sample: settled pairs asked again, as ordinary tasks, of trusted voters."""

import pytest
from django.db import connection

from donations.models import ImageLabel
from exports import quality
from exports.query import Sql
from tests.helpers import make_pair, make_voter, serve, vote
from validation import rules, selection
from validation.models import RevoteSample, Vote

pytestmark = pytest.mark.django_db

YES, NO = Vote.Answer.YES, Vote.Answer.NO


def trusted(**fields):
    fields.setdefault("gold_correct", 40)
    return make_voter(trusted=True, **fields)


def settled(answer=YES, label="dog") -> ImageLabel:
    """A pair settled by three expert votes (the least that settles one)."""
    pair = serve(make_pair(label))
    for _ in range(3):
        vote(pair, trusted(), answer)
    pair.refresh_from_db()
    assert pair.status == ("validated" if answer == YES else "rejected")
    return pair


def test_a_pair_joins_the_sample_at_the_rate_when_it_first_settles(settings):
    settings.REVOTE_SAMPLE_RATE = 1.0
    pair = settled(NO)
    assert RevoteSample.objects.get(pair=pair).settled_as == "rejected"
    settings.REVOTE_SAMPLE_RATE = 0.0
    assert not RevoteSample.objects.filter(pair=settled()).exists()


def test_gold_is_never_drawn_and_the_draw_follows_the_rate(settings):
    settings.REVOTE_SAMPLE_RATE = 0.02
    assert rules.draws_revote(0.01, is_gold=False)
    assert not rules.draws_revote(0.03, is_gold=False)
    assert not rules.draws_revote(0.0, is_gold=True)
    settings.REVOTE_EVERY = 0
    assert not rules.wants_revote(0.0)


def test_a_trusted_voter_is_served_a_sampled_pair_as_an_ordinary_task(settings):
    settings.REVOTE_SAMPLE_RATE, settings.REVOTE_EVERY, settings.GOLD_EVERY = 1.0, 1, 10**9
    pair = settled()
    voter = trusted()
    task = selection.next_task(voter)
    assert task is not None and task.pk == pair.pk
    newcomer = make_voter()  # in training: gold and open pairs only, never a re-vote
    assert selection.next_task(newcomer) is None


def test_a_revote_is_stored_uncounted_and_never_moves_the_settled_pair(settings):
    settings.REVOTE_SAMPLE_RATE = 1.0
    pair = settled()
    before = (pair.status, pair.num_yes, pair.num_no, pair.confidence)
    for _ in range(5):
        vote(pair, trusted(), NO)
    pair.refresh_from_db()
    assert (pair.status, pair.num_yes, pair.num_no, pair.confidence) == before
    assert Vote.objects.filter(pair=pair, answer=NO, counted=False).count() == 5


def test_the_quality_report_estimates_precision_from_the_revotes(settings):
    settings.REVOTE_SAMPLE_RATE = 1.0
    validated, rejected = settled(YES), settled(NO)
    for answer in (YES, YES, YES, NO):
        vote(validated, trusted(), answer)
    vote(rejected, trusted(), NO)
    vote(rejected, make_voter(), YES)  # not trusted: not in the estimate
    pairs = Sql(
        "SELECT image_id, label_id, status FROM validation_imagelabel WHERE id = ANY(%s)",
        [[validated.pk, rejected.pk]],
    )
    with connection.cursor() as cursor:
        no_outlines = Sql("SELECT NULL::int, 0 WHERE FALSE")
        report = quality.measure(pairs, cursor, {"query": "dog", "snapshot": "now"}, no_outlines)
    (dog,) = report["labels"]
    assert dog["validated_revote"]["revotes"] == 4
    assert dog["validated_revote"]["precision"] == 0.75
    low, high = dog["validated_revote"]["interval_95"]
    assert 0 < low < 0.75 < high < 1
    assert dog["rejected_revote"] == {
        "revotes": 1,
        "agreeing": 1,
        "precision": 1.0,
        "interval_95": quality.wilson(1, 1),
    }
    markdown = quality.as_markdown(report)
    assert "## Blind re-vote sample" in markdown and "75% (" in markdown
    assert "3 of 4 re-votes" in markdown
