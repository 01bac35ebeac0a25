"""The pair has one owner and the rules one home: what used to drift between copies."""

import re

import pytest
from django.db import connection
from django.test import Client

from donations.models import Image, ImageLabel
from donations.pairs import accept_suggestion, is_servable, suggest
from labels.models import Label
from people.models import Voter
from tests.helpers import make_image, make_label, make_pair, make_voter, serve, vote
from validation import rules, selection, tickets
from validation.models import Vote

pytestmark = pytest.mark.django_db


def trusted() -> Voter:
    return make_voter(trusted=True, gold_correct=3)


class TestServable:
    def test_a_pair_from_an_accepted_suggestion_on_a_public_picture_is_asked_about(self):
        image = make_image(status=Image.Status.PUBLIC)
        suggestion = suggest("paddle board", image)
        label = accept_suggestion(suggestion)
        pair = ImageLabel.objects.get(image=image, label=label)
        assert pair.servable
        assert selection.next_task(make_voter()) == pair

    def test_a_part_of_a_deactivated_label_is_never_served(self):
        dog = make_label("dog")
        eye = serve(make_pair(make_label("eye", parent=dog)))
        assert eye.servable
        dog.active = False
        dog.save()
        eye.refresh_from_db()
        assert not eye.servable
        assert selection.next_task(make_voter()) is None

    def test_gold_of_a_deactivated_label_is_not_served_either(self):
        dog = make_label("dog")
        eye = make_label("eye", parent=dog)
        make_pair(eye, is_gold=True, gold_answer=True, status="validated")
        assert selection.gold_task(make_voter()) is not None
        Label.objects.filter(pk=dog.pk).update(active=False)
        assert selection.gold_task(make_voter()) is None

    def test_a_reactivated_label_is_served_again(self):
        cat = make_label("cat")
        pair = serve(make_pair(cat))
        cat.active = False
        cat.save()
        cat.active = True
        cat.save()
        pair.refresh_from_db()
        assert pair.servable

    def test_a_settled_pair_stops_being_served_and_a_reopened_one_starts_again(self):
        from validation.voting import reopen

        pair = serve(make_pair("dog"))
        for _ in range(4):
            vote(pair, trusted(), Vote.Answer.YES)
        pair.refresh_from_db()
        assert pair.status == "validated" and not pair.servable
        reopen(pair)
        pair.refresh_from_db()
        assert pair.status == "open" and pair.servable

    def test_the_servable_flag_agrees_with_the_rule_after_a_moderation_decision(self):
        image = make_image(status=Image.Status.PENDING)
        pair = make_pair("dog", image=image)
        image.decide("approve")
        pair.refresh_from_db()
        assert pair.servable == is_servable(pair) is True
        image.decide("quarantine")
        pair.refresh_from_db()
        assert pair.servable == is_servable(pair) is False


class TestGetsWriteNothing:
    @pytest.mark.parametrize(
        "path",
        [
            "/",
            "/validate",
            "/validate/grid?label=dog",
            "/label",
            "/me",
            "/browse",
            "/donate",
            "/releases",
        ],
    )
    def test_a_page_view_by_a_new_visitor_creates_no_voter(self, path):
        serve(make_pair("dog"))
        before = Voter.objects.count()
        for _ in range(5):
            response = Client().get(path)
            assert response.status_code == 200, path
        assert Voter.objects.count() == before

    def test_an_anonymous_task_from_the_api_creates_nothing(self):
        pair = serve(make_pair("dog"))
        before = (Voter.objects.count(), Vote.objects.count())
        for _ in range(5):
            response = Client().get("/v1/validate")
            assert response.status_code == 200
            assert response.json()["uuid"] == str(pair.image.uuid)
        assert (Voter.objects.count(), Vote.objects.count()) == before

    def test_a_visitors_first_vote_creates_their_voter_and_keeps_it(self):
        serve(make_pair("dog")), serve(make_pair("dog"))
        client = Client()
        page = client.get("/validate")
        assert Voter.objects.count() == 0
        pair_id = re.search(r"/validate/(\d+)/vote", page.content.decode())[1]
        ticket = re.search(r'name="ticket" value="([^"]+)"', page.content.decode())[1]
        answer = client.post(
            f"/validate/{pair_id}/vote",
            {"answer": "yes", "ticket": ticket},
            HTTP_ACCEPT="application/json",
        ).json()
        client.post(
            answer["next"]["vote_url"], {"answer": "no", "ticket": answer["next"]["ticket"]}
        )
        assert Voter.objects.count() == 1
        assert Vote.objects.filter(voter=Voter.objects.get()).count() == 2

    def test_an_anonymous_api_vote_creates_its_voter(self):
        pair = serve(make_pair("dog"))
        task = Client().get("/v1/validate").json()
        response = Client().post(
            f"/v1/donation/{pair.image.uuid}/validate/yes",
            {"label": "dog", "ticket": task["ticket"]},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        assert Voter.objects.count() == 1 and Vote.objects.count() == 1


class TestOneImplementation:
    def test_the_database_has_no_vote_functions_after_migrating(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'imagemonkey%%'")
            assert cursor.fetchall() == []

    def test_a_pairs_outcome_is_what_the_rules_say_of_its_votes(self):
        pair = serve(make_pair("dog"))
        voters = [trusted(), trusted(), make_voter(trusted=True, gold_correct=9, gold_wrong=1)]
        answers = (Vote.Answer.YES, Vote.Answer.NO, Vote.Answer.YES)
        for voter, answer in zip(voters, answers, strict=True):
            vote(pair, voter, answer)
        pair.refresh_from_db()
        votes = list(Vote.objects.filter(pair=pair, counted=True))
        evidence = sum(v.weight if v.answer == Vote.Answer.YES else -v.weight for v in votes)
        expected = rules.outcome(rules.Tally(yes=2, no=1, evidence=evidence, weighed=True))
        assert (pair.probability, pair.confidence, pair.status) == pytest.approx(
            (expected.probability, expected.confidence, expected.status)
        )


class TestRules:
    def test_nothing_settles_while_no_vote_weighs(self):
        assert rules.outcome(rules.Tally(5, 0, 0.0, False)).status == rules.OPEN

    def test_a_reopened_item_waits_for_its_extra_votes(self):
        tally = rules.Tally(4, 0, 20.0, True, voters=4, networks=4)
        assert rules.outcome(tally, settle_after=5).status == rules.OPEN
        assert rules.outcome(tally, settle_after=4).status == rules.VALIDATED

    def test_the_bar_is_symmetric(self):
        bar = rules.settle_bar()
        many = {"voters": 3, "networks": 3}
        assert rules.outcome(rules.Tally(0, 3, -bar, True, **many)).status == rules.REJECTED
        assert rules.outcome(rules.Tally(3, 0, bar, True, **many)).status == rules.VALIDATED
        assert rules.outcome(rules.Tally(3, 0, bar * 0.99, True, **many)).status == rules.OPEN

    def test_evidence_from_too_few_voters_or_networks_settles_nothing(self, settings):
        settings.SETTLE_MIN_VOTERS, settings.SETTLE_MIN_NETWORKS = 3, 2
        strong = 100.0
        one_network = rules.Tally(50, 0, strong, True, voters=50, networks=1)
        two_voters = rules.Tally(2, 0, strong, True, voters=2, networks=2)
        enough = rules.Tally(3, 0, strong, True, voters=3, networks=2)
        assert rules.outcome(one_network).status == rules.OPEN
        assert rules.outcome(two_voters).status == rules.OPEN
        assert rules.outcome(enough).status == rules.VALIDATED

    def test_a_swing_needs_enough_votes_before_and_after(self):
        assert rules.swung(1.0, 3, 3, rules.Tally(3, 0, 6.0, True)) is None
        assert rules.swung(0.2, 0, 4, rules.Tally(1, 4, -5.0, True)) == 1.0

    def test_unanimous_many_votes_promote_and_one_dissent_does_not(self, settings):
        settings.GOLD_PROMOTE_MIN_VOTES, settings.GOLD_PROMOTE_MIN_NETWORKS = 8, 4
        settings.GOLD_MIN_POOL = 20
        spread = {"voters": 8, "networks": 4}
        unanimous = rules.Tally(8, 0, 20.0, True, **spread)
        assert rules.promotes_to_gold(unanimous, rules.VALIDATED, pool=20)
        assert not rules.promotes_to_gold(unanimous, rules.VALIDATED, pool=19)
        assert not rules.promotes_to_gold(
            rules.Tally(8, 1, 20.0, True, **spread), rules.VALIDATED, pool=20
        )
        assert not rules.promotes_to_gold(unanimous, rules.OPEN, pool=20)
        assert not rules.promotes_to_gold(
            rules.Tally(8, 0, 20.0, True, voters=8, networks=3), rules.VALIDATED, pool=20
        )


class TestReviewFindings:
    def test_skipping_gold_first_and_answering_later_is_still_checked(self):
        from validation.voting import record_vote

        voter = trusted()
        pair = make_pair("dog", is_gold=True, gold_answer=True, status="validated")
        ticket = tickets.issue(voter, pair)
        record_vote(pair, voter, Vote.Answer.SKIP, "10.9.9.0/24", ticket=ticket)
        record_vote(pair, voter, Vote.Answer.NO, "10.9.9.0/24", ticket=ticket)
        voter.refresh_from_db()
        assert (voter.gold_correct, voter.gold_wrong) == (3, 1)

    def test_answering_again_from_another_network_does_not_release_a_held_vote(self, settings):
        settings.ALERT_BURST_VOTES = 3
        dog = make_label("dog")
        farm = [(serve(make_pair(dog)), trusted()) for _ in range(3)]
        for pair, voter in farm:
            vote(pair, voter, Vote.Answer.NO, ip_prefix="203.0.113.0/24")
        assert Vote.objects.filter(quarantined=True).count() == 3
        pair, voter = farm[0]
        vote(pair, voter, Vote.Answer.NO, ip_prefix="198.51.100.0/24")
        held = Vote.objects.get(pair=pair, voter=voter)
        assert held.quarantined and not held.counted

    def test_a_visitors_ticket_is_good_only_from_the_network_it_was_served_to(self):
        from validation.voting import VoteRefused, record_vote

        pair = serve(make_pair("dog"))
        ticket = tickets.issue(Voter(), pair, "10.1.1.0/24")
        with pytest.raises(VoteRefused) as refused:
            record_vote(pair, Voter(), Vote.Answer.YES, "10.2.2.0/24", ticket=ticket)
        assert refused.value.status == 403
        record_vote(pair, Voter(), Vote.Answer.YES, "10.1.1.0/24", ticket=ticket)
        assert Vote.objects.count() == 1

    def test_my_donations_for_a_signed_in_person_without_a_voter_is_a_page(self, client):
        from django.contrib.auth.models import User

        client.force_login(User.objects.create_user("ann", password="x"))
        assert client.get("/donate/mine").status_code == 200
        assert not Voter.objects.exists()

    def test_frozen_gold_is_never_served(self):
        make_pair("dog", is_gold=True, gold_answer=True, status="validated", frozen=True)
        assert selection.gold_task(make_voter()) is None
