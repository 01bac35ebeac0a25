"""Recording votes, the training phase and trust, settling pairs, and alerts.

The rules, in one place (the README's "Votes, trust and settling" explains them):

- One vote per voter per pair, kept by a unique constraint. Answering again
  replaces the answer; the pair's counts are always derived from its votes
  while the pair row is locked, so concurrent votes never count twice.
- A vote *counts* when its voter is trusted (or a moderator) and not banned.
  New voters are in training: their votes are stored but carry no weight
  until they answer TRAINING_GOLD_REQUIRED gold pairs right with an accuracy
  of at least TRAINING_MIN_ACCURACY, among them a gold "yes" and a gold "no".
  A trusted voter whose gold accuracy falls below it loses trust; the counts
  of every pair they voted on are recomputed.
- A counted vote weighs what its voter's gold record says it is worth
  (one-coin Dawid–Skene, see models.vote_weight_for): log(a / (1 − a)) with a
  the smoothed, capped gold accuracy, overall and on the pair's label. A pair
  is validated when the probability that its label is present reaches
  VALIDATION_POSTERIOR and rejected when it falls to 1 − VALIDATION_POSTERIOR
  (see ImageLabel.set_counts). Weights are read when a pair is recounted; a
  voter whose trust changes has every pair they voted on recounted, and one
  who misses a gold pair has the pairs of that label they voted on recounted.
- Cold start: while fewer than GOLD_MIN_POOL gold pairs exist, a moderator's
  answer on a pair makes it gold. Later, a pair settled by at least
  GOLD_PROMOTE_MIN_VOTES unanimous counted votes is promoted to gold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from .models import Alert, ImageLabel, Vote, Voter, vote_rules

log = logging.getLogger("imagemonkey.votes")


class VoteRefused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def counts_for(voter: Voter) -> bool:
    """Whether this voter's votes carry weight."""
    return not voter.banned and (voter.trusted or voter.is_moderator)


def gold_pool_size() -> int:
    return ImageLabel.objects.filter(is_gold=True, image__status="public").count()


def evaluate_trust(voter: Voter) -> bool:
    answered = voter.gold_correct + voter.gold_wrong
    if voter.gold_correct < settings.TRAINING_GOLD_REQUIRED:
        return False
    if voter.gold_correct / answered < settings.TRAINING_MIN_ACCURACY:
        return False
    return voter.trusted or right_both_ways(voter)


def right_both_ways(voter: Voter) -> bool:
    """Whether the voter answered a gold "yes" with yes and a gold "no" with no.

    Someone who answers everything alike can be right on three gold pairs in a
    row by luck of the draw; they cannot pass both kinds.
    """
    on_gold = Vote.objects.filter(voter=voter, pair__is_gold=True)
    return (
        on_gold.filter(pair__gold_answer=True, answer=Vote.Answer.YES).exists()
        and on_gold.filter(pair__gold_answer=False, answer=Vote.Answer.NO).exists()
    )


# Why a vote was refused, with its HTTP status, by the names imagemonkey_cast_vote uses.
REFUSALS = {
    "not_found": ("no such public picture with that label", 404),
    "closed": ("This picture or label is not open for votes.", 404),
    "own": ("You cannot vote on a picture you donated.", 403),
    "frozen": ("A moderator has closed this picture for votes.", 409),
}


@dataclass
class CastVote:
    outcome: str  # "recorded", "unknown_token", or "python" (use record_vote)
    replaced: bool = False
    counted: bool = False


def cast_vote(token: str, image_uuid, label_id: int, answer: int, ip_prefix: str) -> CastVote:
    """An API token holder's vote on (picture, label) in one round trip to the database.

    imagemonkey_cast_vote (migration 0006) does what record_vote does for the
    common vote: it finds the voter by the token's hash and the pair, locks
    the pair, stores (or replaces) the vote and settles the pair, alerts
    included, in one statement and one commit. A vote on a gold pair or by a
    moderator comes back as outcome "python", with nothing written: those
    go through record_vote. Raises VoteRefused for a vote that cannot be taken.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT outcome, voted_pair, replaced, counted, alerts "
            "FROM imagemonkey_cast_vote(%s, %s, %s, %s::smallint, %s, %s)",
            [Voter.hash_token(token), image_uuid, label_id, answer, ip_prefix, vote_rules()],
        )
        outcome, pair_id, replaced, counted, alerts = cursor.fetchone()
    if outcome in REFUSALS:
        raise VoteRefused(*REFUSALS[outcome])
    if alerts:
        log_alerts(alerts, label_id, pair_id, ip_prefix)
    return CastVote(outcome, bool(replaced), bool(counted))


@dataclass
class VoteResult:
    vote: Vote
    pair: ImageLabel
    replaced: bool
    trust_changed: bool
    gold_missed: bool = False  # a first answer on a gold pair, and a wrong one


def record_vote(pair: ImageLabel, voter: Voter, answer: int, ip_prefix: str = "") -> VoteResult:
    """Record (or replace) `voter`'s answer on `pair`, then settle the pair.

    Raises VoteRefused for a pair that cannot take this vote.
    """
    with transaction.atomic():
        result = _record(pair.pk, voter, answer, ip_prefix)
    if result.trust_changed:
        recount_voter(result.vote.voter)
        result.pair.refresh_from_db()
    elif result.gold_missed and counts_for(voter):
        # Their weight on this label just fell: the pairs it helped settle are redone.
        pairs = Vote.objects.filter(voter=voter, counted=True, pair__label_id=result.pair.label_id)
        _resettle(pairs.exclude(pair=result.pair).values_list("pair_id", flat=True))
    return result


def _record(pair_id: int, voter: Voter, answer: int, ip_prefix: str) -> VoteResult:
    pair = (
        ImageLabel.objects.select_for_update(of=("self",))
        .select_related("image", "label__parent")
        .filter(pk=pair_id)
        .first()
    )
    if pair is None or pair.image.status != "public" or not pair.label.is_taggable:
        raise VoteRefused(*REFUSALS["closed"])
    if pair.image.donor_id is not None and pair.image.donor_id == voter.pk:
        raise VoteRefused(*REFUSALS["own"])
    if pair.frozen:
        raise VoteRefused(*REFUSALS["frozen"])
    if answer not in Vote.Answer.values:
        raise VoteRefused("An answer is yes, no or skip.", 400)

    now = timezone.now()
    previous = Vote.objects.filter(pair=pair, voter=voter).first()
    counted = counts_for(voter) and answer != Vote.Answer.SKIP
    if previous is None:
        vote = Vote.objects.create(
            pair=pair,
            voter=voter,
            answer=answer,
            counted=counted,
            ip_prefix=ip_prefix,
            created=now,
            updated=now,
        )
    else:
        vote = previous
        vote.answer, vote.counted, vote.updated = answer, counted, now
        vote.ip_prefix = ip_prefix or vote.ip_prefix
        vote.save(update_fields=["answer", "counted", "updated", "ip_prefix"])

    trust_changed = gold_missed = False
    if pair.is_gold and previous is None and answer != Vote.Answer.SKIP and not voter.is_moderator:
        said_yes = answer == Vote.Answer.YES
        gold_missed = said_yes != pair.gold_answer
        trust_changed = score_gold(voter, said_yes, pair.gold_answer, pair.label_id)
    elif (
        voter.is_moderator
        and answer != Vote.Answer.SKIP
        and not pair.is_gold
        and gold_pool_size() < settings.GOLD_MIN_POOL
    ):
        pair.is_gold, pair.gold_answer = True, answer == Vote.Answer.YES
        pair.save(update_fields=["is_gold", "gold_answer"])

    settle(pair, vote.ip_prefix)
    return VoteResult(
        vote=vote,
        pair=pair,
        replaced=previous is not None,
        trust_changed=trust_changed,
        gold_missed=gold_missed,
    )


def score_gold(voter: Voter, said_yes: bool, truth: bool, label_id: int) -> bool:
    """Count a first answer on a gold pair; True when the voter's trust changed."""
    locked = Voter.objects.select_for_update().get(pk=voter.pk)
    right = said_yes == truth
    if right:
        locked.gold_correct += 1
    else:
        locked.gold_wrong += 1
    key = Voter.label_key(label_id)
    on_label = locked.gold_by_label.get(key, [0, 0])
    locked.gold_by_label[key] = [on_label[0] + right, on_label[1] + (not right)]
    was_trusted = locked.trusted
    locked.trusted = evaluate_trust(locked)
    locked.save(update_fields=["gold_correct", "gold_wrong", "gold_by_label", "trusted"])
    voter.gold_correct, voter.gold_wrong, voter.gold_by_label, voter.trusted = (
        locked.gold_correct,
        locked.gold_wrong,
        locked.gold_by_label,
        locked.trusted,
    )
    if was_trusted != locked.trusted:
        log.info("voter %s %s", voter.pk, "is now trusted" if locked.trusted else "lost trust")
    return was_trusted != locked.trusted


def settle(pair: ImageLabel, ip_prefix: str = "") -> None:
    """Recount the pair from its votes and act on the outcome, in the database.

    imagemonkey_settle (migration 0006) recounts, remembers the outcome (a flip
    alert when a settled pair changes sides), raises a swing alert when the
    yes share moved by more than ALERT_SWING within ALERT_WINDOW_MINUTES,
    promotes a pair settled by GOLD_PROMOTE_MIN_VOTES unanimous counted votes
    to gold, and, given the network of the vote that caused it, raises a burst
    alert when ALERT_BURST_VOTES votes on the label came from that /24 (or /64)
    within the window.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT imagemonkey_settle(%s, %s, %s, %s)",
            [pair.pk, ip_prefix, timezone.now(), vote_rules()],
        )
        alerts = cursor.fetchone()[0]
    try:
        pair.refresh_from_db()
    except ImageLabel.DoesNotExist:
        return  # deleted meanwhile (its picture was): nothing left to settle
    log_alerts(alerts, pair.label_id, pair.pk, ip_prefix)


def log_alerts(kinds: list[str], label_id: int, pair_id: int, ip_prefix: str) -> None:
    for kind in kinds:
        if kind == Alert.Kind.BURST:
            log.warning("alert: burst of votes on label %s from %s", label_id, ip_prefix)
        else:
            log.warning("alert: pair %s %s", pair_id, "flipped" if kind == "flip" else "swung")


def recount_voter(voter: Voter) -> int:
    """Give or take weight from all of a voter's votes, then recount each pair they touched.

    Each pair is recounted in its own short transaction, so this never holds
    many locks at once. Returns how many pairs were recounted.
    """
    voter.refresh_from_db()
    weight = counts_for(voter)
    changed = list(
        Vote.objects.filter(voter=voter)
        .exclude(answer=Vote.Answer.SKIP)
        .exclude(counted=weight)
        .values_list("pair_id", flat=True)
    )
    Vote.objects.filter(voter=voter, pair_id__in=changed).update(counted=weight)
    return _resettle(changed)


def _resettle(pair_ids) -> int:
    """Recount and settle these pairs, each in its own short transaction."""
    pair_ids = list(pair_ids)
    for pair_id in pair_ids:
        with transaction.atomic():
            settle(ImageLabel(pk=pair_id))
    return len(pair_ids)


def discard_votes(voter: Voter) -> int:
    """A moderator's verdict: none of this voter's votes count, now or later."""
    Voter.objects.filter(pk=voter.pk).update(banned=True, trusted=False)
    return recount_voter(voter)


@transaction.atomic
def freeze(pair: ImageLabel, frozen: bool = True) -> None:
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=frozen)
    pair.refresh_from_db()
    pair.refresh_servable()
    pair.save(update_fields=["servable"])


@transaction.atomic
def reopen(pair: ImageLabel) -> None:
    """Send a settled pair back to the crowd; it needs REOPEN_EXTRA_VOTES more counted votes."""
    pair = (
        ImageLabel.objects.select_for_update(of=("self",)).select_related("image").get(pk=pair.pk)
    )
    pair.frozen = False
    pair.settle_after = pair.num_yes + pair.num_no + settings.REOPEN_EXTRA_VOTES
    pair.save(update_fields=["frozen", "settle_after"])
    pair.recount()


def sync_servable_for_image(image) -> None:
    """After an image's status changed: its pairs may (not) be served as tasks."""
    public = image.status == "public"
    ImageLabel.objects.filter(image=image).update(
        servable=Case(
            When(Q(status=ImageLabel.Status.OPEN) & Q(frozen=False), then=Value(public)),
            default=Value(False),
        )
    )
