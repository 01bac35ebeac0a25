"""Honest votes: one per voter per pair, training and trust, settling, selection, alerts, limits."""

import ipaddress
import math
import random
import re
import threading

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from donations.models import ImageLabel
from people.identity import ip_prefix
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair, make_voter, serve, vote
from validation import selection, tickets, voting
from validation.models import Alert, Vote
from validation.rules import vote_weight_for
from validation.voting import VoteRefused, discard_votes, reopen

pytestmark = pytest.mark.django_db

YES, NO, SKIP = Vote.Answer.YES, Vote.Answer.NO, Vote.Answer.SKIP


def page_ticket(page) -> str:
    """The task ticket a voting page carries in its form."""
    return re.search(r'name="ticket" value="([^"]+)"', page.content.decode())[1]


def open_pair(label="dog", **fields) -> ImageLabel:
    pair = make_pair(label, **fields)
    serve(pair)
    return pair


def gold(answer: bool, label="dog") -> ImageLabel:
    pair = open_pair(label, is_gold=True, gold_answer=answer)
    return pair


def trusted(**fields) -> Voter:
    fields.setdefault("gold_correct", 3)
    return make_voter(trusted=True, **fields)


class TestOneVotePerVoter:
    def test_a_trusted_vote_counts(self):
        pair = open_pair()
        vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no, pair.probability) == (1, 0, 1.0)

    def test_a_replaced_answer_moves_exactly_one_count(self):
        pair, voter = open_pair(), trusted()
        vote(pair, trusted(), YES)
        vote(pair, voter, YES)
        vote(pair, voter, NO)
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (1, 1)
        assert Vote.objects.filter(pair=pair, voter=voter).count() == 1
        vote(pair, voter, SKIP)
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (1, 0)

    def test_a_voter_cannot_vote_on_their_own_donation(self):
        donor = trusted()
        pair = open_pair(image=make_image(donor=donor))
        with pytest.raises(VoteRefused, match="you donated"):
            vote(pair, donor, YES)

    def test_pending_pictures_and_frozen_pairs_take_no_votes(self):
        with pytest.raises(VoteRefused):
            vote(open_pair(image=make_image(status="pending")), trusted(), YES)
        frozen = open_pair(frozen=True)
        with pytest.raises(VoteRefused, match="closed"):
            vote(frozen, trusted(), YES)


@pytest.mark.django_db(transaction=True)
def test_fifty_identical_concurrent_votes_are_one_vote():
    pair, voter = open_pair(), trusted()
    errors = []
    barrier = threading.Barrier(10)

    def answer():
        try:
            barrier.wait()
            for _ in range(5):
                vote(pair, voter, YES)
        except Exception as error:  # any failure is a test failure
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=answer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    pair.refresh_from_db()
    assert Vote.objects.filter(pair=pair).count() == 1
    assert (pair.num_yes, pair.num_no) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_of_different_voters_all_count_exactly_once():
    pair = open_pair()
    voters = [trusted() for _ in range(20)]
    barrier = threading.Barrier(20)

    def answer(voter, choice):
        barrier.wait()
        try:
            vote(pair, voter, choice)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=answer, args=(v, YES if n % 4 else NO))
        for n, v in enumerate(voters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pair.refresh_from_db()
    assert Vote.objects.filter(pair=pair).count() == 20
    counted = Vote.objects.filter(pair=pair, counted=True)
    # Votes that arrive after the pair settled are stored but do not count.
    assert (pair.num_yes, pair.num_no) == (
        counted.filter(answer=YES).count(),
        counted.filter(answer=NO).count(),
    )
    assert pair.num_yes + pair.num_no >= 3


class TestTraining:
    def test_training_votes_do_not_count_until_gold_is_passed(self):
        pair, newcomer = open_pair("cat"), make_voter()
        vote(pair, newcomer, YES)
        pair.refresh_from_db()
        assert (pair.num_yes, Vote.objects.get(voter=newcomer).counted) == (0, False)
        for answer in (True, False, True):
            vote(gold(answer), newcomer, YES if answer else NO)
        newcomer.refresh_from_db()
        assert newcomer.trusted
        pair.refresh_from_db()
        assert pair.num_yes == 1, "earlier votes count once the voter is trusted"

    def test_two_wrong_gold_answers_keep_a_voter_in_training(self):
        newcomer = make_voter()
        for answer, said in ((True, YES), (False, YES), (True, NO), (True, YES), (False, NO)):
            vote(gold(answer), newcomer, said)
        newcomer.refresh_from_db()
        assert (newcomer.gold_correct, newcomer.gold_wrong, newcomer.trusted) == (3, 2, False)

    def test_a_voter_who_fails_gold_is_demoted_and_counts_are_recomputed(self):
        voter = make_voter()
        for answer in (True, True, False):
            vote(gold(answer), voter, YES if answer else NO)
        pairs = [open_pair("cat") for _ in range(3)]
        for pair in pairs:
            vote(pair, voter, YES)
        assert ImageLabel.objects.get(pk=pairs[0].pk).num_yes == 1
        for _ in range(2):
            vote(gold(False), voter, YES)  # wrong, twice: 3 of 5 = 0.6
        voter.refresh_from_db()
        assert not voter.trusted
        assert [ImageLabel.objects.get(pk=p.pk).num_yes for p in pairs] == [0, 0, 0]

    def test_a_voter_right_only_on_gold_yes_pairs_stays_in_training(self):
        voter = make_voter()
        for _ in range(4):
            vote(gold(True), voter, YES)
        voter.refresh_from_db()
        assert (voter.gold_correct, voter.trusted) == (4, False), "never met a gold no"
        vote(gold(False), voter, NO)
        voter.refresh_from_db()
        assert voter.trusted

    def test_gold_counts_only_the_first_answer(self):
        voter, pair = make_voter(), gold(True)
        vote(pair, voter, YES)
        vote(pair, voter, NO)
        vote(pair, voter, YES)
        voter.refresh_from_db()
        assert (voter.gold_correct, voter.gold_wrong) == (1, 0)

    def test_on_a_fresh_instance_a_moderators_answers_become_gold(self, settings):
        settings.GOLD_MIN_POOL = 2
        from django.contrib.auth.models import User

        moderator = make_voter(user=User.objects.create_user("mod", is_staff=True))
        first, second, third = open_pair(), open_pair(), open_pair()
        vote(first, moderator, YES)
        vote(second, moderator, NO)
        vote(third, moderator, YES)
        gold_pairs = ImageLabel.objects.filter(is_gold=True)
        assert {(p.pk, p.gold_answer) for p in gold_pairs} == {(first.pk, True), (second.pk, False)}
        first.refresh_from_db()
        assert first.num_yes == 1, "a moderator's vote counts"

    def test_a_pair_settled_unanimously_by_many_trusted_voters_is_promoted_to_gold(self, settings):
        settings.GOLD_PROMOTE_MIN_VOTES, settings.GOLD_MIN_POOL = 16, 0
        pair = open_pair(settle_after=16)  # a reopened pair, so that votes keep counting
        for _ in range(16):
            vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert pair.status == "validated" and pair.is_gold and pair.gold_answer is True

    def test_unanimous_votes_from_one_network_never_make_gold(self, settings):
        settings.GOLD_PROMOTE_MIN_VOTES, settings.GOLD_MIN_POOL = 8, 0
        pair = open_pair(settle_after=8)
        for _ in range(8):
            vote(pair, trusted(), YES, ip_prefix="198.51.100.0/24")
        pair.refresh_from_db()
        assert not pair.is_gold
        assert pair.status == "open", "one network alone does not settle a pair either"

    def test_while_the_gold_pool_is_small_only_moderators_make_gold(self, settings):
        settings.GOLD_PROMOTE_MIN_VOTES, settings.GOLD_MIN_POOL = 8, 20
        pair = open_pair(settle_after=8)
        for _ in range(8):
            vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert pair.status == "validated" and not pair.is_gold


class TestSettling:
    """Each counted vote weighs log(a / (1 − a)), a = (gold right + 2) / (gold answered + 3),
    at most 0.9; a pair settles when P(label present) reaches 0.99 either way."""

    @pytest.fixture(autouse=True)
    def rules(self, settings):
        settings.VALIDATION_POSTERIOR = 0.99
        settings.VOTER_ACCURACY_PRIOR = (2, 1)
        settings.VOTER_ACCURACY_MAX = 0.9
        settings.VOTER_LABEL_PRIOR = 3

    def test_a_pair_is_validated_when_the_posterior_reaches_the_threshold(self):
        pair = open_pair()
        for _ in range(2):
            vote(pair, trusted(), YES)  # 3 gold right: a = 5/6, each yes × 5 on the odds
        pair.refresh_from_db()
        assert pair.status == "open" and pair.confidence == pytest.approx(25 / 26)
        vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert pair.status == "validated" and pair.confidence == pytest.approx(125 / 126)
        assert (pair.num_yes, pair.num_no, pair.probability) == (3, 0, 1.0)
        assert not pair.servable

    def test_a_pair_is_rejected_when_the_posterior_falls_to_one_minus_the_threshold(self):
        pair = open_pair()
        for _ in range(2):
            vote(pair, trusted(), NO)
        pair.refresh_from_db()
        assert pair.status == "open"
        vote(pair, trusted(), NO)
        pair.refresh_from_db()
        assert pair.status == "rejected" and pair.probability == 0
        assert pair.confidence == pytest.approx(1 / 126)

    def test_a_dissenting_vote_cancels_an_agreeing_one_of_the_same_weight(self):
        pair = open_pair()
        for answer in (YES, YES, NO, YES):
            vote(pair, trusted(), answer)
        pair.refresh_from_db()
        assert pair.status == "open" and pair.confidence == pytest.approx(25 / 26)
        assert (pair.num_yes, pair.num_no, pair.probability) == (3, 1, 0.75)

    def test_no_fewer_than_three_votes_settle_a_pair_however_good_the_voters(self):
        pair = open_pair()
        experts = [trusted(gold_correct=40) for _ in range(3)]  # 42/43, capped at 0.9: × 9
        for expert in experts[:2]:
            vote(pair, expert, YES)
        pair.refresh_from_db()
        assert pair.status == "open" and pair.confidence == pytest.approx(81 / 82)
        vote(pair, experts[2], YES)
        pair.refresh_from_db()
        assert pair.status == "validated" and pair.confidence == pytest.approx(729 / 730)

    def test_a_vote_weighs_by_its_voters_gold_record(self):
        sure, shaky = trusted(gold_correct=18), trusted(gold_correct=6, gold_wrong=2)
        assert voting.weight_of(sure) == pytest.approx(math.log(9))  # 20/21, capped at 0.9
        assert voting.weight_of(shaky) == pytest.approx(math.log(8 / 3))  # 8/11
        assert voting.weight_of(make_voter(gold_correct=3, gold_wrong=6)) == 0, (
            "below chance: nothing"
        )
        pair = open_pair()
        for voter, answer in ((sure, YES), (shaky, NO), (trusted(), YES)):
            vote(pair, voter, answer)
        pair.refresh_from_db()
        odds = 9 / (8 / 3) * 5
        assert pair.confidence == pytest.approx(odds / (1 + odds))

    def test_a_pair_without_a_vote_that_weighs_has_no_confidence(self):
        pair = open_pair()
        vote(pair, make_voter(), YES)  # in training
        pair.refresh_from_db()
        assert (pair.num_yes, pair.confidence, pair.status) == (0, 0.0, "open")

    def test_a_moderators_vote_weighs_as_much_as_any_vote_can(self, settings):
        from django.contrib.auth.models import User

        settings.GOLD_MIN_POOL = 0  # no cold start: the moderator's answer stays a vote

        moderator = make_voter(user=User.objects.create_user("mod", is_staff=True))
        assert voting.weight_of(moderator) == pytest.approx(math.log(9))
        pair = open_pair()
        vote(pair, moderator, NO)
        vote(pair, trusted(gold_correct=5), NO)  # 7/8: × 7
        pair.refresh_from_db()
        assert pair.status == "open" and pair.confidence == pytest.approx(1 / 64)
        vote(pair, trusted(), NO)
        pair.refresh_from_db()
        assert pair.status == "rejected" and pair.confidence == pytest.approx(1 / 316)

    def test_a_moderator_can_reopen_a_settled_pair(self):
        pair = open_pair()
        for _ in range(3):
            vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert pair.status == "validated"
        reopen(pair)
        pair.refresh_from_db()
        assert pair.status == "open" and pair.servable and pair.settle_after == 6
        for _ in range(2):
            vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert pair.status == "open", "a reopened pair waits for REOPEN_EXTRA_VOTES more votes"
        vote(pair, trusted(), YES)
        pair.refresh_from_db()
        assert pair.status == "validated"

    def test_a_vote_carries_the_weight_its_voters_record_gives_it_when_cast(self):
        dog = make_label("dog")
        voter = trusted(gold_correct=5, gold_wrong=1, gold_by_label={f"label:{dog.pk}": [2, 1]})
        cast_vote = vote(open_pair(dog), voter, YES).vote
        stored = Vote.objects.get(pk=cast_vote.pk)
        assert stored.counted
        assert stored.weight == pytest.approx(vote_weight_for(5, 1, [2, 1]))

    def test_a_vote_that_does_not_count_weighs_nothing(self):
        cast_vote = vote(open_pair(), make_voter(), YES).vote
        assert Vote.objects.values_list("counted", "weight").get(pk=cast_vote.pk) == (False, 0.0)

    def test_missing_the_gold_of_one_label_takes_the_say_on_that_label_only(self):
        dog, cat = make_label("dog"), make_label("cat")
        vandal = trusted(gold_correct=9)  # a = 11/12, capped at 0.9 everywhere: × 9
        settled = open_pair(dog)
        for voter in (vandal, trusted(), trusted()):  # × 9 × 5 × 5
            vote(settled, voter, YES)
        settled.refresh_from_db()
        assert settled.status == "validated"
        result = vote(gold(False, label=dog), vandal, YES)  # wrong on dog's gold
        assert result.gold_missed and not result.trust_changed
        vandal.refresh_from_db()
        assert vandal.gold_by_label == {f"label:{dog.pk}": [0, 1]}
        # Overall 9 right, 1 wrong: a = 11/13. On dog, beside the missed gold, one answer
        # that agreed with a settled outcome (worth half a gold answer):
        # (0 + 0.5 + 3 × 11/13) / (1 + 0.5 + 3).
        assert vandal.consensus_by_label == {f"label:{dog.pk}": [1, 0]}
        assert voting.weight_of(vandal, cat.pk) == pytest.approx(math.log(11 / 2))
        on_dog = (0.5 + 3 * 11 / 13) / 4.5
        assert voting.weight_of(vandal, dog.pk) == pytest.approx(math.log(on_dog / (1 - on_dog)))
        settled.refresh_from_db()
        assert settled.status == "open", "the pair it helped validate is recounted"

    def test_answering_against_settled_outcomes_on_a_label_takes_the_say_there(self):
        dog, cat = make_label("dog"), make_label("cat")
        detector = trusted(gold_correct=20)  # perfect on gold: as heavy as a vote can be
        for _ in range(6):
            pair = open_pair(dog)
            vote(pair, detector, NO)  # against the truth, which the others tell
            for _ in range(5):
                vote(pair, trusted(), YES)
            pair.refresh_from_db()
            assert pair.status == "validated"
        detector.refresh_from_db()
        assert detector.consensus_by_label == {f"label:{dog.pk}": [0, 6]}
        assert voting.weight_of(detector, dog.pk) < 0.5, "gold cannot tell, the crowd can"
        assert voting.weight_of(detector, cat.pk) == pytest.approx(math.log(9))

    def test_an_always_yes_voter_never_gets_weight(self):
        random.seed(6)
        for answer in (True, False) * 6:
            gold(answer)
        pairs = [open_pair("cat") for _ in range(12)]
        bot = make_voter()
        for _ in range(24):
            task = selection.next_task(bot)
            vote(task, bot, YES)
        bot.refresh_from_db()
        assert not bot.trusted and bot.gold_correct >= 3
        assert bot.gold_wrong >= bot.gold_correct - 1, "gold answers alternate yes and no"
        assert not Vote.objects.filter(voter=bot, counted=True).exists()
        assert all(p.num_yes == 0 for p in ImageLabel.objects.filter(pk__in=[p.pk for p in pairs]))

    def test_discarding_a_voters_votes_recomputes_the_counts(self):
        vandal, pair = trusted(), open_pair()
        vote(pair, vandal, NO)
        vote(pair, trusted(), YES)
        discard_votes(vandal)
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (1, 0)
        vote(open_pair(), Voter.objects.get(pk=vandal.pk), NO)
        assert not Vote.objects.filter(voter=vandal, counted=True).exists()


def test_recounting_a_voter_skips_pairs_deleted_meanwhile():
    voter = trusted()
    kept, gone = open_pair(), open_pair()
    vote(kept, voter, YES)
    vote(gone, voter, YES)
    gone_id = gone.pk
    gone.delete()
    assert voting._resettle([kept.pk, gone_id]) == 2
    kept.refresh_from_db()
    assert kept.num_yes == 1


def test_recounting_a_deleted_pair_is_an_error_not_a_pair_of_nones():
    pair = open_pair()
    ImageLabel.objects.filter(pk=pair.pk).delete()
    with pytest.raises(ImageLabel.DoesNotExist):
        voting.recount(pair)


class TestSelection:
    def test_seen_pairs_and_own_donations_are_never_served(self):
        voter = trusted()
        seen, own = open_pair(), open_pair(image=make_image(donor=voter))
        fresh = open_pair()
        vote(seen, voter, SKIP)
        served = {selection.next_task(voter).pk for _ in range(20)}
        assert served == {fresh.pk}
        assert own.pk not in served

    def test_settled_frozen_and_pending_pairs_are_not_served(self):
        voter = trusted()
        open_pair(status="validated")
        open_pair(frozen=True)
        open_pair(image=make_image(status="pending"))
        assert selection.next_task(voter) is None

    def test_the_label_filter_restricts_tasks(self):
        voter = trusted()
        open_pair("dog")
        cat = open_pair("cat")
        assert {selection.next_task(voter, cat.label).pk for _ in range(10)} == {cat.pk}

    def test_voters_in_training_meet_gold_among_their_first_tasks(self):
        newcomer = make_voter()
        golden = gold(True)
        for _ in range(5):
            open_pair()
        first = selection.next_task(newcomer)
        assert first.pk == golden.pk

    def test_a_newcomers_first_task_is_gold_only_by_chance(self):
        random.seed(7)
        golden = {gold(True).pk, gold(False).pk}
        for _ in range(20):
            open_pair()
        firsts = [selection.next_task(make_voter()).pk in golden for _ in range(200)]
        assert 0.35 < sum(firsts) / len(firsts) < 0.65, "gold is not the first task every time"

    def test_serving_a_task_loads_only_the_winner_and_writes_nothing(self, settings):
        settings.GOLD_EVERY = 10**9  # no gold draw in this test
        voter = trusted(gold_correct=20)
        for _ in range(30):
            open_pair()
        with CaptureQueriesContext(connection) as queries:
            task = selection.next_task(voter)
        assert task is not None and task.image.uuid and task.label.name
        statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
        # The window (and its wrap-around past the end of the key space), then the winner.
        assert statements in (["SELECT"] * 2, ["SELECT"] * 3), statements

    def test_trusted_voters_meet_gold_now_and_then_at_random_moments(self, settings):
        settings.GOLD_EVERY = 3
        random.seed(4)
        settled_gold = [
            make_pair(status="validated" if n % 2 else "rejected", is_gold=True, gold_answer=n % 2)
            for n in range(40)
        ]
        golden = {pair.pk for pair in settled_gold}  # served only as gold, never as open pairs
        for _ in range(40):
            open_pair()
        positions = []
        for _ in range(4):
            voter = trusted()
            served = [selection.next_task(voter).pk for _ in range(30)]
            positions.append(tuple(n for n, pk in enumerate(served) if pk in golden))
        assert all(4 <= len(p) <= 18 for p in positions), positions  # about 1 in 3
        assert len(set(positions)) == 4, "gold comes at different moments for each voter"

    def test_newly_trusted_voters_meet_gold_often_until_their_probation_ends(self, settings):
        settings.GOLD_EVERY, settings.GOLD_PROBATION = 10, 10
        random.seed(7)
        golden = {
            make_pair(status="rejected", is_gold=True, gold_answer=False).pk for _ in range(60)
        }
        for _ in range(60):
            open_pair()
        newcomer, veteran = trusted(), trusted(gold_correct=10)
        new_share = sum(selection.next_task(newcomer).pk in golden for _ in range(45))
        old_share = sum(selection.next_task(veteran).pk in golden for _ in range(45))
        assert new_share >= 9 and old_share <= 9, (new_share, old_share)  # ~15 against ~4.5

    def test_gold_for_a_voter_alternates_between_yes_and_no_answers(self):
        random.seed(5)
        yes = {gold(True).pk for _ in range(10)}
        for _ in range(10):
            gold(False)
        voter = make_voter()
        answers = []
        for _ in range(8):
            task = selection.gold_task(voter)
            answers.append(task.pk in yes)
            vote(task, voter, YES)
        assert answers.count(True) == answers.count(False) == 4

    def test_a_pair_close_to_settling_comes_before_a_fresh_one(self, settings):
        settings.VALIDATION_POSTERIOR = 0.995
        almost = open_pair()
        for _ in range(3):
            vote(almost, trusted(), YES)  # odds 125: 0.992, short of 0.995
        almost.refresh_from_db()
        assert almost.status == "open"
        for _ in range(3):
            open_pair()
        assert selection.next_task(trusted()).pk == almost.pk

    def test_fewest_votes_come_first(self):
        voter = trusted()
        busy, quiet = open_pair(), open_pair()
        for _ in range(4):
            vote(busy, trusted(), YES)
        assert selection.next_task(voter).pk == quiet.pk


class TestAlerts:
    def test_an_outcome_flip_raises_an_alert(self):
        pair = open_pair()
        voters = [trusted() for _ in range(16)]
        for voter in voters:
            vote(pair, voter, YES)
        for voter in voters:
            vote(pair, voter, NO)
        alert = Alert.objects.get(kind="flip")
        assert alert.pair == pair and "validated to rejected" in alert.message
        assert alert.votes().count() == 16

    def test_a_fast_probability_swing_raises_an_alert(self):
        pair = open_pair()
        for _ in range(4):  # voters of a modest record: the pair stays open throughout
            vote(pair, trusted(gold_wrong=1), YES)
        Vote.objects.filter(pair=pair).update(updated="2000-01-01T00:00:00Z")
        for _ in range(8):
            vote(pair, trusted(gold_wrong=1), NO)
        alert = Alert.objects.get(kind="swing")
        assert alert.details["from"] == 1.0 and alert.details["to"] < 0.5

    def test_many_votes_from_one_network_raise_a_burst_alert(self, settings):
        settings.ALERT_BURST_VOTES = 5
        dog = make_label("dog")
        for _ in range(6):
            vote(open_pair(dog), make_voter(), YES, ip_prefix="203.0.113.0/24")
        alert = Alert.objects.get(kind="burst")
        assert alert.ip_prefix == "203.0.113.0/24" and alert.label == dog
        assert alert.votes().count() == 6
        vote(open_pair(dog), make_voter(), YES, ip_prefix="198.51.100.0/24")
        assert Alert.objects.count() == 1

    def test_a_burst_holds_its_networks_votes_on_the_label_until_a_moderator_clears_it(
        self, settings
    ):
        settings.ALERT_BURST_VOTES = 4
        dog, cat = make_label("dog"), make_label("cat")
        farm = "203.0.113.0/24"
        pairs = [open_pair(dog) for _ in range(3)]
        for pair in pairs:  # three honest networks first
            for _ in range(2):
                vote(pair, trusted(), YES)
        for pair in pairs + [open_pair(dog) for _ in range(3)]:
            vote(pair, trusted(), NO, ip_prefix=farm)  # half of the label's recent votes
        alert = Alert.objects.get(kind="burst")
        held = Vote.objects.filter(ip_prefix=farm)
        assert held.count() == 6 and not held.filter(counted=True).exists()
        for pair in pairs:
            pair.refresh_from_db()
            assert (pair.num_yes, pair.num_no) == (2, 0), "the held votes are out of the counts"
        later = vote(open_pair(dog), trusted(), NO, ip_prefix=farm)
        assert not Vote.objects.get(pk=later.vote.pk).counted, "the quarantine goes on"
        elsewhere = vote(open_pair(cat), trusted(), NO, ip_prefix=farm)
        assert Vote.objects.get(pk=elsewhere.vote.pk).counted, "other labels are not held"

        voting.release_quarantine(alert)
        pairs[0].refresh_from_db()
        assert (pairs[0].num_yes, pairs[0].num_no) == (2, 1)
        assert not Vote.objects.filter(quarantined=True).exists()

    def test_a_busy_networks_share_of_a_busy_label_is_no_burst(self, settings):
        settings.ALERT_BURST_VOTES = 4
        dog = make_label("dog")
        for _ in range(12):  # most of the label's traffic comes from elsewhere
            vote(open_pair(dog), trusted(), YES)
        for _ in range(4):
            vote(open_pair(dog), trusted(), YES, ip_prefix="192.0.2.0/24")
        assert not Alert.objects.filter(kind="burst").exists()


class TestVotingPages:
    def test_the_voting_page_asks_one_question_with_keyboard_hints(self, client):
        open_pair(make_label("dog", description="A pet that barks."))
        body = client.get("/validate").content.decode()
        assert "Is there a dog in this picture?" in body and "A pet that barks." in body
        assert 'value="yes"' in body and 'value="skip"' in body and "<kbd>Y</kbd>" in body

    def test_a_vote_redirects_to_the_next_task(self, client):
        pair = open_pair()
        ticket = page_ticket(client.get("/validate"))
        response = client.post(f"/validate/{pair.pk}/vote", {"answer": "yes", "ticket": ticket})
        assert response.status_code == 302
        assert response["Location"] == f"/validate?answered={pair.pk}"
        assert Vote.objects.get().answer == YES

    def test_a_bad_answer_is_refused_in_words(self, client):
        pair = open_pair()
        response = client.post(
            f"/validate/{pair.pk}/vote", {"answer": "maybe"}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 400 and "yes, no or skip" in response.json()["error"]
        assert client.get(f"/validate/{pair.pk}/vote").status_code == 405

    def test_votes_need_the_csrf_token(self):
        pair = open_pair()
        strict = Client(enforce_csrf_checks=True)
        assert strict.post(f"/validate/{pair.pk}/vote", {"answer": "yes"}).status_code == 403
        assert not Vote.objects.exists()

    def test_the_json_answer_carries_the_next_task_and_the_one_after(self, client):
        first, second, third = open_pair(), open_pair(), open_pair()
        page = client.get("/validate")
        shown = int(re.search(r"/validate/(\d+)/vote", page.content.decode())[1])
        answer = client.post(
            f"/validate/{shown}/vote",
            {"answer": "no", "ticket": page_ticket(page)},
            HTTP_ACCEPT="application/json",
        ).json()
        first, second, third = sorted((first, second, third), key=lambda pair: pair.pk != shown)
        assert answer["next"]["pair"] in {second.pk, third.pk}
        assert answer["then"]["pair"] in {second.pk, third.pk} - {answer["next"]["pair"]}
        following = client.post(
            answer["next"]["vote_url"],
            {
                "answer": "yes",
                "prefer": answer["then"]["pair"],
                "prefer_ticket": answer["then"]["ticket"],
                "ticket": answer["next"]["ticket"],
            },
            HTTP_ACCEPT="application/json",
        ).json()
        assert following["next"]["pair"] == answer["then"]["pair"], (
            "the preloaded picture comes next"
        )

    def test_a_preferred_pair_is_served_next_only_with_the_ticket_it_was_served_with(self, client):
        pairs = [open_pair() for _ in range(40)]
        page = client.get("/validate")
        url, ticket = (
            re.search(r'action="(/validate/\d+/vote)"', page.content.decode())[1],
            page_ticket(page),
        )
        target = pairs[-1]
        served_target = []
        for _ in range(5):  # asking for a pair it was never served gets what selection picks
            answer = client.post(
                url,
                {"answer": "skip", "ticket": ticket, "prefer": str(target.pk)},
                HTTP_ACCEPT="application/json",
            ).json()
            served_target.append(answer["next"]["pair"] == target.pk)
            url, ticket = answer["next"]["vote_url"], answer["next"]["ticket"]
        assert not all(served_target)
        then = answer["then"]
        following = client.post(
            url,
            {"answer": "skip", "ticket": ticket, "prefer": "²", "prefer_ticket": "x"},
            HTTP_ACCEPT="application/json",
        )
        assert following.status_code == 200, "an odd digit in prefer is no 500"
        assert then is not None

    def preferring(self, client, target: ImageLabel) -> dict:
        """A vote on another pair that asks for `target` next, with target's real ticket."""
        first = open_pair()
        network = ip_prefix("127.0.0.1")
        client.post(
            f"/validate/{first.pk}/vote",
            {"answer": "skip", "ticket": tickets.issue(Voter(), first, network)},
        )
        voter = Voter.objects.get()
        other = open_pair()
        return client.post(
            f"/validate/{other.pk}/vote",
            {
                "answer": "skip",
                "ticket": tickets.issue(voter, other, network),
                "prefer": str(target.pk),
                "prefer_ticket": tickets.issue(voter, target, network),
            },
            HTTP_ACCEPT="application/json",
        ).json()

    @pytest.mark.parametrize("gold", [False, True], ids=["ordinary", "gold"])
    def test_a_preloaded_pair_that_settled_meanwhile_comes_next_alike_gold_or_not(
        self, client, gold
    ):
        target = open_pair()
        ImageLabel.objects.filter(pk=target.pk).update(
            status=ImageLabel.Status.VALIDATED,
            servable=False,
            is_gold=gold,
            gold_answer=True if gold else None,
        )
        assert self.preferring(client, target)["next"]["pair"] == target.pk

    def test_a_preloaded_pair_whose_picture_was_hidden_is_not_served(self, client):
        target = open_pair(is_gold=True, gold_answer=True)
        target.image.decide("hide")
        answer = self.preferring(client, target)
        assert answer["next"] is None or answer["next"]["pair"] != target.pk

    def test_a_friendly_page_when_nothing_is_left(self, client):
        make_image()
        response = client.get("/validate?label=dog")
        assert response.status_code == 200
        assert "You have seen everything" in response.content.decode()

    def test_the_grid_records_marked_as_yes_and_the_rest_as_no_at_once(self, client):
        dog = make_label("dog")
        pairs = [open_pair(dog) for _ in range(12)]
        page = client.get("/validate/grid?label=dog")
        assert page.content.decode().count('name="shown"') == 12
        marked = [p.pk for p in pairs[:5]]
        grid_tickets = dict(
            re.findall(r'name="(ticket-\d+)" value="([^"]+)"', page.content.decode())
        )
        response = client.post(
            "/validate/grid?label=dog",
            {
                "label": "dog",
                "shown": [p.pk for p in pairs],
                "yes": marked,
                "unmarked": "no",
                **grid_tickets,
            },
        )
        assert response.status_code == 302
        answers = dict(Vote.objects.values_list("pair_id", "answer"))
        assert answers == {p.pk: (YES if p.pk in marked else NO) for p in pairs}

    def test_every_answer_of_a_grid_counts_against_the_vote_limit(self, client, settings):
        settings.VOTE_RATE = "5/m"
        dog = make_label("dog")
        pairs = [open_pair(dog) for _ in range(12)]
        page = client.get("/validate/grid?label=dog")
        grid_tickets = dict(
            re.findall(r'name="(ticket-\d+)" value="([^"]+)"', page.content.decode())
        )
        response = client.post(
            "/validate/grid?label=dog",
            {"label": "dog", "shown": [p.pk for p in pairs], "unmarked": "no", **grid_tickets},
        )
        assert response.status_code == 429
        assert not Vote.objects.exists()

    def grid_answers(self, client, **fields):
        dog = make_label("dog")
        pairs = [open_pair(dog) for _ in range(4)]
        page = client.get("/validate/grid?label=dog")
        grid_tickets = dict(
            re.findall(r'name="(ticket-\d+)" value="([^"]+)"', page.content.decode())
        )
        return client.post(
            "/validate/grid?label=dog",
            {"label": "dog", "shown": [p.pk for p in pairs], **grid_tickets, **fields},
            follow=True,
        )

    def test_the_grid_asks_what_unmarked_pictures_are_and_records_skips_as_such(self, client):
        response = self.grid_answers(client, unmarked="skip")
        assert set(Vote.objects.values_list("answer", flat=True)) == {Vote.Answer.SKIP}
        assert response.redirect_chain, "the answers were taken"
        open_pair("dog")
        page = client.get("/validate/grid?label=dog").content.decode()
        assert 'name="unmarked" value="no" id="unmarked-no" checked' in page

    def test_a_grid_without_a_choice_for_unmarked_pictures_records_nothing(self, client):
        response = self.grid_answers(client)
        assert "Say what the pictures you did not mark are" in response.content.decode()
        assert not Vote.objects.exists()

    def test_the_grid_picker_offers_only_labels_with_pictures_to_judge_most_first(self, client):
        make_label("unicorn")
        for _ in range(2):
            open_pair("cat")
        open_pair("dog")
        page = client.get("/validate/grid").content.decode()
        options = re.findall(r'<option value="([^"]+)">', page)
        assert options == ["cat", "dog"]

    def test_a_grid_with_one_bad_picture_records_nothing(self, client):
        dog = make_label("dog")
        pairs = [open_pair(dog) for _ in range(3)]
        other = open_pair("cat")
        client.post(
            "/validate/grid?label=dog",
            {"label": "dog", "shown": [*[p.pk for p in pairs], other.pk], "unmarked": "no"},
        )
        assert not Vote.objects.exists()

    def test_anyone_adds_a_label_or_a_suggestion_to_a_picture(self, client):
        image = make_image()
        make_label("ball")
        client.post(f"/image/{image.uuid}/labels", {"label": "Ball"})
        pair = ImageLabel.objects.get(image=image)
        assert (pair.label.name, pair.num_yes, pair.servable) == ("ball", 0, True)
        response = client.post(
            f"/image/{image.uuid}/labels", {"label": "frisbee golf"}, follow=True
        )
        assert "sent it to our curators" in response.content.decode()

    def test_label_mode_walks_through_pictures_with_few_labels(self, client):
        few, many = make_image(), make_image()
        for name in ("a1", "a2", "a3"):
            make_pair(name, many)
        response = client.get("/label")
        assert response.context["image"] == few

    def test_label_mode_stays_on_the_picture_a_label_was_added_to(self, client):
        few, other = make_image(), make_image()
        make_pair("a1", other)
        make_label("ball")
        response = client.post(
            f"/image/{few.uuid}/labels", {"label": "ball", "next": "/label"}, follow=True
        )
        assert response.context["image"] == few
        assert "Added “ball”" in response.content.decode()
        assert 'href="/label"' in response.content.decode()  # in the navigation

    def test_a_new_site_says_there_are_no_pictures_yet(self, client):
        response = client.get("/validate")
        assert "There are no pictures yet" in response.content.decode()

    def test_a_voter_in_training_is_told_why_answers_do_not_count_yet(self, client):
        open_pair()
        page = client.get("/validate").content.decode()
        assert "this site is new" in page
        gold = open_pair(is_gold=True, gold_answer=True)
        assert gold.is_gold
        page = client.get("/validate").content.decode()
        assert "Your first answers are practice" in page

    def test_my_numbers_page_and_statistics_page(self, client):
        pair = open_pair()
        client.post(f"/validate/{pair.pk}/vote", {"answer": "yes"})
        body = client.get("/me").content.decode()
        assert "pictures answered" in body and "Not yet" in body
        stats = client.get("/statistics").content.decode()
        assert "<svg" in stats and "Per label" in stats and "dog" in stats


class TestLimits:
    def test_votes_are_rate_limited_with_a_429(self, client, settings):
        settings.VOTE_RATE = "3/h"
        pairs = [open_pair() for _ in range(4)]
        codes = [
            client.post(f"/validate/{p.pk}/vote", {"answer": "yes"}).status_code for p in pairs
        ]
        assert codes == [302, 302, 302, 429]

    def test_a_spoofed_forwarded_for_does_not_reset_the_limit(self, client, settings):
        settings.VOTE_RATE = "2/h"
        pairs = [open_pair() for _ in range(3)]
        codes = [
            Client()
            .post(f"/validate/{p.pk}/vote", {"answer": "yes"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
            .status_code
            for n, p in enumerate(pairs)
        ]
        assert codes == [302, 302, 429]

    def test_with_redis_down_voting_answers_503_and_browsing_still_works(self, client):
        pair = open_pair()
        dead = {
            name: {**conf, "LOCATION": "unix:///nonexistent/redis.sock"}
            for name, conf in settings.CACHES.items()
        }
        from django.test import override_settings

        with override_settings(CACHES=dead):
            vote = client.post(f"/validate/{pair.pk}/vote", {"answer": "yes"})
            assert vote.status_code == 503
            assert "try again shortly" in vote.content.decode()
            assert client.get("/browse").status_code == 200
            assert client.get(f"/image/{pair.image.uuid}").status_code == 200
            assert client.get("/").status_code == 200
        assert not Vote.objects.exists()


@pytest.mark.parametrize(
    "address",
    [
        "192.168.1.77",
        "0.0.0.0",  # noqa: S104 - an address to parse, not a bind
        "255.255.255.255",
        "10.0.0.256",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "١.2.3.4",
        " 1.2.3.4",
        "::ffff:10.1.2.3",
        "2001:db8::1",
        "garbage",
        "",
    ],
)
def test_the_network_prefix_of_an_address_matches_the_ipaddress_module(address):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        expected = "unknown"
    else:
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        bits = 24 if ip.version == 4 else 48
        expected = str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))
    assert ip_prefix(address) == expected


def test_addresses_of_one_ipv6_customer_are_one_network():
    assert ip_prefix("2001:db8:1:2::1") == ip_prefix("2001:db8:1:ff00::9") == "2001:db8:1::/48"


def test_the_open_task_counts_are_read_from_the_cache_for_a_minute(django_assert_max_num_queries):
    dog = make_label("dog")
    open_pair(dog)
    assert [(label.name, label.open) for label in selection.labels_with_open_tasks()] == [
        ("dog", 1)
    ]
    open_pair(dog)
    with django_assert_max_num_queries(1):  # the labels only: the counts come from the cache
        assert selection.labels_with_open_tasks()[0].open == 1
