"""Taking the last answer back within a minute, feedback after an answer, the first-visit
explanation and /me's account of training."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations.models import ImageLabel
from people.identity import ip_prefix
from people.models import Voter
from tests.helpers import make_label, make_pair, make_voter, serve, vote
from validation import tickets, voting
from validation.models import Vote
from validation.voting import VoteRefused, undo_last_vote

pytestmark = pytest.mark.django_db

YES, NO = Vote.Answer.YES, Vote.Answer.NO
NETWORK = ip_prefix("127.0.0.1")


def open_pair(label="dog", **fields) -> ImageLabel:
    return serve(make_pair(label, **fields))


def trusted() -> Voter:
    return make_voter(trusted=True, gold_correct=3)


def page_voter(client, pair: ImageLabel, answer: str = "yes"):
    """A visitor's first answer through the page, as its JavaScript sends it."""
    response = client.post(
        f"/validate/{pair.pk}/vote",
        {"answer": answer, "ticket": tickets.issue(Voter(), pair, NETWORK)},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    return Voter.objects.order_by("-pk").first(), response.json()


class TestUndo:
    def test_the_last_answer_is_taken_back_and_the_pair_recounted(self):
        pair, voter = open_pair(), trusted()
        vote(pair, voter, YES)
        pair.refresh_from_db()
        assert pair.num_yes == 1
        undo_last_vote(voter, pair.pk)
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (0, 0)
        undone = Vote.objects.get()
        assert undone.undone and not undone.counted and undone.weight == 0

    def test_an_answer_older_than_a_minute_cannot_be_undone(self):
        pair, voter = open_pair(), trusted()
        vote(pair, voter, YES)
        Vote.objects.update(updated=Vote.objects.get().updated - timedelta(seconds=61))
        with pytest.raises(VoteRefused, match="within a minute"):
            undo_last_vote(voter, pair.pk)
        assert Vote.objects.get().counted

    def test_only_the_last_answer_and_only_once(self):
        first, second, voter = open_pair(), open_pair(), trusted()
        vote(first, voter, YES)
        vote(second, voter, NO)
        with pytest.raises(VoteRefused):
            undo_last_vote(voter, first.pk)
        undo_last_vote(voter, second.pk)
        with pytest.raises(VoteRefused):
            undo_last_vote(voter, second.pk)
        with pytest.raises(VoteRefused):
            undo_last_vote(voter, first.pk)  # the one before stays
        assert Vote.objects.get(pair=first).counted

    def test_another_voters_answer_cannot_be_undone(self):
        pair, voter, other = open_pair(), trusted(), trusted()
        vote(pair, voter, YES)
        with pytest.raises(VoteRefused):
            undo_last_vote(other, pair.pk)

    def test_an_undone_pair_is_not_served_again_by_selection(self):
        from validation import selection

        pair, voter = open_pair(), trusted()
        vote(pair, voter, YES)
        undo_last_vote(voter, pair.pk)
        assert selection.next_task(voter) is None
        assert selection.undone_for(voter, pair.pk) == pair

    def test_answering_again_after_an_undo_counts_the_new_answer(self):
        pair, voter = open_pair(), trusted()
        vote(pair, voter, YES)
        undo_last_vote(voter, pair.pk)
        vote(pair, voter, NO)
        pair.refresh_from_db()
        assert (pair.num_yes, pair.num_no) == (0, 1)
        again = Vote.objects.get()
        assert not again.undone and again.counted

    def test_a_trust_change_does_not_bring_an_undone_vote_back(self):
        pair, voter = open_pair(), make_voter()
        vote(pair, voter, YES)
        undo_last_vote(voter, pair.pk)
        Voter.objects.filter(pk=voter.pk).update(trusted=True, gold_correct=3)
        voting.recount_voter(voter)
        assert not Vote.objects.get().counted

    def test_a_pair_settled_by_the_undone_vote_reopens_because_the_rules_say_so(self):
        pair = open_pair()
        while pair.status == ImageLabel.Status.OPEN:  # until this voter's answer settles it
            last = trusted()
            vote(pair, last, YES)
            pair.refresh_from_db()
        assert pair.status == ImageLabel.Status.VALIDATED
        undo_last_vote(last, pair.pk)
        pair.refresh_from_db()
        assert pair.status == ImageLabel.Status.OPEN, "the votes left no longer settle it"
        assert pair.servable

    def test_a_pair_still_settled_without_the_undone_vote_stays_settled(self):
        pair = open_pair()
        while pair.status == ImageLabel.Status.OPEN:
            vote(pair, trusted(), YES)
            pair.refresh_from_db()
        settled_with = pair.num_yes
        last = trusted()
        vote(pair, last, YES)  # stored, but the pair had settled: it changes nothing
        undo_last_vote(last, pair.pk)
        pair.refresh_from_db()
        assert pair.status == ImageLabel.Status.VALIDATED and pair.num_yes == settled_with


class TestUndoOnGold:
    def test_undoing_a_gold_answer_does_not_buy_a_second_score(self):
        pair = open_pair(is_gold=True, gold_answer=True, status=ImageLabel.Status.VALIDATED)
        voter = make_voter()
        vote(pair, voter, NO)
        voter.refresh_from_db()
        assert (voter.gold_correct, voter.gold_wrong) == (0, 1)
        undo_last_vote(voter, pair.pk)
        vote(pair, voter, YES)  # the right answer, second time round
        voter.refresh_from_db()
        assert (voter.gold_correct, voter.gold_wrong) == (0, 1), "scored on the first answer"

    def test_undo_answers_alike_for_gold_and_ordinary_pairs(self, client):
        label = make_label("dog")
        ordinary = open_pair(label)
        gold = open_pair(label, is_gold=True, gold_answer=True, status="validated")
        voter, _ = page_voter(client, make_pair(label))  # the visitor's voter row
        answers = []
        for pair in (ordinary, gold):
            client.post(
                f"/validate/{pair.pk}/vote",
                {"answer": "yes", "ticket": tickets.issue(voter, pair)},
                HTTP_ACCEPT="application/json",
            )
            response = client.post(
                "/validate/undo", {"pair": pair.pk}, HTTP_ACCEPT="application/json"
            )
            assert response.status_code == 200
            body = response.json()
            assert body["next"]["pair"] == pair.pk, "the same question is asked again"
            answers.append(body)
        shape = [
            (sorted(body), sorted(body["next"]), len(body["next"]["ticket"])) for body in answers
        ]
        assert shape[0] == shape[1]


class TestUndoPages:
    def test_after_an_answer_the_page_says_what_the_crowd_said_and_offers_undo(self, client):
        pair = open_pair()
        for _ in range(3):
            vote(pair, trusted(), NO)
        voter, body = page_voter(client, pair, "no")
        assert body["answered"]["feedback"] == "Most people said No (3 of 3)."
        assert body["answered"]["undo_url"] == "/validate/undo"
        open_pair()
        page = client.get(f"/validate?answered={pair.pk}").content.decode()
        assert "Most people said No (3 of 3)." in page and 'action="/validate/undo"' in page

    def test_without_javascript_an_answer_redirects_to_a_page_with_undo(self, client):
        pair = open_pair()
        response = client.post(
            f"/validate/{pair.pk}/vote",
            {"answer": "yes", "ticket": tickets.issue(Voter(), pair, NETWORK)},
        )
        assert response["Location"] == f"/validate?answered={pair.pk}"
        page = client.get(response["Location"]).content.decode()
        assert "Undo that answer" in page
        undo = client.post("/validate/undo", {"pair": pair.pk})
        assert undo["Location"] == f"/validate?again={pair.pk}"
        again = client.get(undo["Location"]).content.decode()
        assert f"/validate/{pair.pk}/vote" in again, "the same picture, to answer again"
        assert "taken back" in again
        ticket = re.search(r'name="ticket" value="([^"]+)"', again)[1]
        client.post(f"/validate/{pair.pk}/vote", {"answer": "no", "ticket": ticket})
        assert Vote.objects.get().answer == NO and not Vote.objects.get().undone

    def test_a_minute_later_the_page_offers_no_undo(self, client):
        pair = open_pair()
        page_voter(client, pair)
        Vote.objects.update(updated=Vote.objects.get().updated - timedelta(seconds=61))
        page = client.get(f"/validate?answered={pair.pk}").content.decode()
        assert "Answer saved." in page
        assert not re.search(r'<form[^>]*id="undo-form"(?![^>]*hidden)[^>]*>', page)
        response = client.post("/validate/undo", {"pair": pair.pk}, HTTP_ACCEPT="application/json")
        assert response.status_code == 409 and "within a minute" in response.json()["error"]

    @pytest.mark.parametrize("value", ["x", "1e3", "²", "9" * 30])
    def test_a_malformed_pair_number_is_a_400_with_a_reason(self, client, value):
        open_pair()
        assert client.get(f"/validate?answered={value}").status_code == 400
        assert client.get(f"/validate?again={value}").status_code == 400
        response = client.post("/validate/undo", {"pair": value}, HTTP_ACCEPT="application/json")
        assert response.status_code == 400 and response.json()["error"]

    def test_again_shows_only_a_pair_this_voter_undid(self, client):
        answered = open_pair()
        page_voter(client, answered)
        open_pair()  # something else to serve
        page = client.get(f"/validate?again={answered.pk}").content.decode()
        assert f"/validate/{answered.pk}/vote" not in page, "an answer not undone is not asked"


class TestTutorial:
    def test_a_first_visit_explains_with_examples_and_never_shows_gold(self, client):
        label = make_label("dog")
        open_pair(label)
        shown = serve(make_pair(label, status="validated"))
        rejected = serve(make_pair(label, status="rejected"))
        hidden_gold = serve(make_pair(label, status="validated", is_gold=True, gold_answer=True))
        with CaptureQueriesContext(connection) as queries:
            page = client.get("/validate").content.decode()
        assert not [q for q in queries if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]
        tutorial = re.search(r'<section class="tutorial".*?</section>', page, re.S)[0]
        assert "How this works" in tutorial
        assert str(shown.image.uuid) in tutorial and str(rejected.image.uuid) in page
        assert str(hidden_gold.image.uuid) not in tutorial

    def test_got_it_hides_the_explanation_for_this_browser(self, client):
        open_pair()
        response = client.post("/validate/tutorial")
        assert response.status_code == 302
        assert response.cookies["im_tutorial"].value == "done"
        assert "How this works" not in client.get("/validate").content.decode()
        assert not Voter.objects.exists(), "putting it away stores nothing"


class TestMe:
    def test_me_explains_what_training_asks_of_a_new_voter(self, client):
        pair = open_pair()
        page_voter(client, pair)
        page = client.get("/me").content.decode()
        assert "You are in training, after 1 answer" in page
        assert "answered 3 pictures whose answer we already know correctly" in page
        assert "one whose answer is Yes and one whose answer is No" in page
        assert "no checks yet" in page

    def test_me_tells_a_trusted_voter_how_to_stay_trusted(self, client, settings):
        pair = open_pair()
        voter, _ = page_voter(client, pair)
        Voter.objects.filter(pk=voter.pk).update(trusted=True, gold_correct=3)
        page = client.get("/me").content.decode()
        assert "at least 75 % of those are right" in page


class TestGridUndo:
    def grid_answers(self, client, count=3):
        label = make_label("dog")
        pairs = [open_pair(label) for _ in range(count)]
        voter, _ = page_voter(client, open_pair(label))
        Voter.objects.filter(pk=voter.pk).update(trusted=True, gold_correct=3)
        data = {"unmarked": "no", "label": "dog", "shown": [p.pk for p in pairs]}
        data.update({f"ticket-{p.pk}": tickets.issue(voter, p) for p in pairs})
        data["yes"] = [pairs[0].pk]
        response = client.post("/validate/grid?label=dog", data)
        assert response.status_code == 302
        return voter, pairs, response["Location"]

    def test_a_grids_answers_are_taken_back_together_and_its_pictures_asked_again(self, client):
        voter, pairs, location = self.grid_answers(client)
        page = client.get(location).content.decode()
        assert "Undo those 3 answers" in page
        assert ImageLabel.objects.get(pk=pairs[0].pk).num_yes == 1
        response = client.post(
            "/validate/grid/undo", {"label": "dog", "pair": [p.pk for p in pairs]}
        )
        assert Vote.objects.filter(voter=voter, pair__in=pairs, undone=True).count() == 3
        again = client.get(response["Location"]).content.decode()
        assert all(f'name="shown" value="{p.pk}"' in again for p in pairs)
        for pair in pairs:
            pair.refresh_from_db()
            assert (pair.num_yes, pair.num_no) == (0, 0), "recounted without the undone votes"

    def test_a_grid_undo_a_minute_later_takes_nothing_back(self, client):
        voter, pairs, location = self.grid_answers(client)
        Vote.objects.filter(voter=voter).update(
            updated=Vote.objects.get(pair=pairs[0]).updated - timedelta(seconds=61)
        )
        assert "Undo those" not in client.get(location).content.decode()
        client.post("/validate/grid/undo", {"label": "dog", "pair": [p.pk for p in pairs]})
        assert not Vote.objects.filter(undone=True).exists()

    def test_a_damaged_grid_list_is_a_400(self, client):
        make_label("dog")
        assert client.get("/validate/grid?label=dog&answered=1,x").status_code == 400
        assert client.get("/validate/grid?label=dog&again=%C2%B2").status_code == 400


class TestModeratorUndo:
    def test_a_moderators_undone_answer_does_not_leave_a_wrong_gold_pair(self, settings):
        from django.contrib.auth.models import User

        settings.GOLD_MIN_POOL = 5
        user = User.objects.create_user("mod", password="a long enough password", is_staff=True)
        moderator = Voter.objects.create(user=user)
        pair = open_pair()
        voting.record_vote(pair, moderator, YES)  # a slip: a fresh site's gold
        pair.refresh_from_db()
        assert pair.is_gold and pair.gold_answer is True
        undo_last_vote(moderator, pair.pk)
        pair.refresh_from_db()
        assert not pair.is_gold and pair.gold_answer is None
        voting.record_vote(pair, moderator, NO)
        pair.refresh_from_db()
        assert pair.is_gold and pair.gold_answer is False

    def test_an_ordinary_voters_undo_leaves_gold_alone(self):
        pair = open_pair(is_gold=True, gold_answer=True, status=ImageLabel.Status.VALIDATED)
        voter = make_voter()
        vote(pair, voter, YES)
        undo_last_vote(voter, pair.pk)
        pair.refresh_from_db()
        assert pair.is_gold and pair.gold_answer is True
