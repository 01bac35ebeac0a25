"""Recording votes, the training phase and trust, settling pairs, and alerts.

Every vote — from the page, the grid, the API with or without a token, on gold
pairs and by moderators — goes through `record_vote`, and every recount through
`settle` or `recount`. The numbers come from validation.rules; this module reads
the votes, applies the rules and writes the outcome (the README's "Votes, trust
and settling" explains them):

- One vote per voter per pair, kept by a unique constraint. Answering again
  replaces the answer; the pair is locked while its counts are derived from its
  votes, so concurrent votes never count twice.
- A vote *counts* when its voter is trusted (or a moderator) and not banned.
  New voters are in training: their votes are stored but carry no weight until
  they answer TRAINING_GOLD_REQUIRED gold pairs right with an accuracy of at
  least TRAINING_MIN_ACCURACY, among them a gold "yes" and a gold "no". A
  trusted voter whose gold accuracy falls below it loses trust.
- A counted vote carries the weight its voter's gold record gives it
  (rules.vote_weight_for), stored on the vote when it is cast. When the
  voter's record on a label changes (a gold answer), the weights of their votes
  on that label are rewritten; when they miss, the pairs of that label they
  voted on are recounted; when their trust changes, every vote of theirs is
  rewritten and every pair they voted on recounted. A recount is then one
  aggregate over the pair's votes, and rules.outcome decides the status.
- Cold start: while fewer than GOLD_MIN_POOL gold pairs exist, a moderator's
  answer on a pair makes it gold. Later, a pair settled by at least
  GOLD_PROMOTE_MIN_VOTES unanimous counted votes is promoted to gold.
- Alerts: a flip when a settled pair changes sides, a swing when the yes share
  moved by more than ALERT_SWING within ALERT_WINDOW_MINUTES, a burst when
  ALERT_BURST_VOTES votes on one label came from one /24 (or /64) in the window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from donations import pairs as pair_rules
from donations.models import Image, ImageLabel
from people.models import Voter

from . import rules
from .models import Alert, Vote

log = logging.getLogger("imagemonkey.votes")


class VoteRefused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def counts_for(voter: Voter) -> bool:
    """Whether this voter's votes carry weight."""
    return not voter.banned and (voter.trusted or voter.is_moderator)


def weight_of(voter: Voter, label_id: int | None = None) -> float:
    """The weight a counted vote of this voter's (on this label) carries now."""
    record = voter.record_on(label_id) if label_id is not None else None
    return rules.vote_weight_for(voter.gold_correct, voter.gold_wrong, record, voter.is_moderator)


def gold_pool_size() -> int:
    return ImageLabel.objects.filter(is_gold=True, image__status=Image.Status.PUBLIC).count()


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


# Why a vote was refused, with its HTTP status.
REFUSALS = {
    "not_found": ("no such public picture with that label", 404),
    "closed": ("This picture or label is not open for votes.", 404),
    "own": ("You cannot vote on a picture you donated.", 403),
    "frozen": ("A moderator has closed this picture for votes.", 409),
    "answer": ("An answer is yes, no or skip.", 400),
}


def refuse(reason: str) -> VoteRefused:
    return VoteRefused(*REFUSALS[reason])


@dataclass
class VoteResult:
    vote: Vote
    pair: ImageLabel
    replaced: bool
    trust_changed: bool
    gold_missed: bool = False  # a first answer on a gold pair, and a wrong one
    label_record_changed: bool = False


def record_vote(
    pair: ImageLabel | None,
    voter: Voter,
    answer: int,
    ip_prefix: str = "",
    *,
    image_uuid=None,
    label_id: int | None = None,
) -> VoteResult:
    """Record (or replace) `voter`'s answer on a pair, then settle the pair.

    The pair is `pair`, or the one of the public picture `image_uuid` with
    `label_id` (the API names pairs so). An unsaved voter (a visitor's first
    write) is saved first. Raises VoteRefused for a pair that cannot take this
    vote, with nothing written.
    """
    if answer not in Vote.Answer.values:
        raise refuse("answer")
    lookup = (
        {"pk": pair.pk}
        if pair is not None
        else {"image__uuid": image_uuid, "label_id": label_id, "image__status": Image.Status.PUBLIC}
    )
    with transaction.atomic():
        result = _record(lookup, voter, answer, ip_prefix, by_uuid=pair is None)
    if result.trust_changed:
        recount_voter(voter)
        result.pair.refresh_from_db()
    elif result.label_record_changed and counts_for(voter):
        # Their weight on this label moved: rewrite it, and when they missed,
        # redo the pairs it helped settle.
        changed = _rewrite_weights(voter, result.pair.label_id)
        if result.gold_missed:
            _resettle(pk for pk in changed if pk != result.pair.pk)
    return result


def _lock_pair(lookup: dict) -> ImageLabel | None:
    return (
        ImageLabel.objects.select_for_update(of=("self",))
        .select_related("image", "label__parent")
        .filter(**lookup)
        .first()
    )


def _record(lookup: dict, voter: Voter, answer: int, ip_prefix: str, by_uuid: bool) -> VoteResult:
    pair = _lock_pair(lookup)
    if pair is None:
        raise refuse("not_found" if by_uuid else "closed")
    if pair.image.status != Image.Status.PUBLIC or not pair.label.is_taggable:
        raise refuse("closed")
    if pair.image.donor_id is not None and pair.image.donor_id == voter.pk:
        raise refuse("own")
    if pair.frozen:
        raise refuse("frozen")
    if not voter.exists:
        voter.save()

    counted = counts_for(voter) and answer != Vote.Answer.SKIP
    weight = weight_of(voter, pair.label_id) if counted else 0.0
    vote = _store(pair, voter, answer, counted, weight, ip_prefix)
    replaced = vote.created != vote.updated

    trust_changed = gold_missed = label_record_changed = False
    if pair.is_gold and not replaced and answer != Vote.Answer.SKIP and not voter.is_moderator:
        said_yes = answer == Vote.Answer.YES
        gold_missed = said_yes != pair.gold_answer
        trust_changed = score_gold(voter, said_yes, pair.gold_answer, pair.label_id)
        label_record_changed = True
    elif (
        voter.is_moderator
        and answer != Vote.Answer.SKIP
        and not pair.is_gold
        and gold_pool_size() < settings.GOLD_MIN_POOL
    ):
        pair.is_gold, pair.gold_answer = True, answer == Vote.Answer.YES
        ImageLabel.objects.filter(pk=pair.pk).update(is_gold=True, gold_answer=pair.gold_answer)

    _settle_locked(pair, vote.ip_prefix, vote.updated)
    return VoteResult(
        vote=vote,
        pair=pair,
        replaced=replaced,
        trust_changed=trust_changed,
        gold_missed=gold_missed,
        label_record_changed=label_record_changed,
    )


# An upsert: one statement whether the voter answers for the first time or again.
# A replaced vote keeps its `created`, so created != updated tells the two apart.
_UPSERT = """
INSERT INTO validation_vote AS v
    (pair_id, voter_id, answer, counted, weight, ip_prefix, created, updated)
VALUES (%(pair)s, %(voter)s, %(answer)s, %(counted)s, %(weight)s, %(prefix)s, %(now)s, %(now)s)
ON CONFLICT (pair_id, voter_id) DO UPDATE
SET answer = excluded.answer, counted = excluded.counted, weight = excluded.weight,
    updated = excluded.updated,
    ip_prefix = CASE WHEN excluded.ip_prefix <> '' THEN excluded.ip_prefix ELSE v.ip_prefix END
RETURNING v.id, v.ip_prefix, v.created
"""


def _store(
    pair: ImageLabel, voter: Voter, answer: int, counted: bool, weight: float, ip_prefix: str
) -> Vote:
    # The time is read once the pair is locked: votes on a pair are stamped in
    # the order they are counted.
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            {
                "pair": pair.pk,
                "voter": voter.pk,
                "answer": answer,
                "counted": counted,
                "weight": weight,
                "prefix": ip_prefix,
                "now": now,
            },
        )
        pk, used_prefix, created = cursor.fetchone()
    return Vote(
        pk=pk,
        pair=pair,
        voter=voter,
        answer=answer,
        counted=counted,
        weight=weight,
        ip_prefix=used_prefix,
        created=created,
        updated=now,
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


# --- settling ------------------------------------------------------------------


def _tally(pair_id: int, since) -> tuple[rules.Tally, int, int]:
    """The pair's counted votes in one aggregate: the tally, and how many (and how many
    yes) were cast since `since`."""
    yes = Q(answer=Vote.Answer.YES)
    recent = Q(updated__gte=since)
    numbers = Vote.objects.filter(pair_id=pair_id, counted=True).aggregate(
        yes=Count("pk", filter=yes),
        no=Count("pk", filter=Q(answer=Vote.Answer.NO)),
        yes_weight=Coalesce(Sum("weight", filter=yes), 0.0),
        no_weight=Coalesce(Sum("weight", filter=Q(answer=Vote.Answer.NO)), 0.0),
        weighed=Count("pk", filter=Q(weight__gt=0)),
        recent=Count("pk", filter=recent),
        recent_yes=Count("pk", filter=recent & yes),
    )
    tally = rules.Tally(
        yes=numbers["yes"],
        no=numbers["no"],
        evidence=numbers["yes_weight"] - numbers["no_weight"],
        weighed=numbers["weighed"] > 0,
    )
    return tally, numbers["recent"], numbers["recent_yes"]


def recount(pair: ImageLabel) -> None:
    """Derive counts, probability, confidence, status and servable from the counted votes.

    Locks the pair until the end of the transaction; raises ImageLabel.DoesNotExist
    when it is gone. No alerts, no promotion: for merges and reopened pairs.
    """
    with transaction.atomic():
        locked = _lock_pair({"pk": pair.pk})
        if locked is None:
            raise ImageLabel.DoesNotExist(f"no pair {pair.pk} to recount")
        _apply(locked, _tally(locked.pk, timezone.now())[0], timezone.now())
    _copy_counts(locked, pair)


_DERIVED = ("num_yes", "num_no", "probability", "confidence", "status", "servable", "updated")


def _copy_counts(source: ImageLabel, target: ImageLabel) -> None:
    for name in (*_DERIVED, "settled_as", "is_gold", "gold_answer"):
        setattr(target, name, getattr(source, name))


def settle(pair: ImageLabel, ip_prefix: str = "") -> None:
    """Recount the pair from its votes and act on the outcome (alerts, promotion to gold).

    `ip_prefix` is the network of the vote that caused it, for the burst check.
    A pair deleted meanwhile is left alone.
    """
    with transaction.atomic():
        locked = _lock_pair({"pk": pair.pk})
        if locked is None:
            return  # deleted meanwhile (its picture was): nothing left to settle
        _settle_locked(locked, ip_prefix, timezone.now())
    _copy_counts(locked, pair)


def _apply(pair: ImageLabel, tally: rules.Tally, now, **more) -> rules.Outcome:
    """Write what the tally says (and `more` fields) onto the locked pair, in one update."""
    result = rules.outcome(tally, pair.settle_after)
    pair.num_yes, pair.num_no = tally.yes, tally.no
    pair.probability, pair.confidence, pair.status = (
        result.probability,
        result.confidence,
        result.status,
    )
    pair.updated = now
    for name, value in more.items():
        setattr(pair, name, value)
    pair.servable = pair_rules.is_servable(pair)
    ImageLabel.objects.filter(pk=pair.pk).update(
        num_yes=pair.num_yes,
        num_no=pair.num_no,
        probability=pair.probability,
        confidence=pair.confidence,
        status=pair.status,
        servable=pair.servable,
        updated=now,
        **more,
    )
    return result


def _settle_locked(pair: ImageLabel, ip_prefix: str, now) -> list[str]:
    """settle() for a pair this transaction has locked (image and label loaded)."""
    window_start = now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
    tally, recent, recent_yes = _tally(pair.pk, window_start)
    status = rules.outcome(tally, pair.settle_after).status
    more = {}
    flipped_from = None
    if status != rules.OPEN and status != pair.settled_as:
        flipped_from, more["settled_as"] = pair.settled_as, status
    if not pair.is_gold and rules.promotes_to_gold(tally, status):
        more["is_gold"], more["gold_answer"] = True, status == rules.VALIDATED
    result = _apply(pair, tally, now, **more)

    raised = []
    label_name, image_uuid = pair.label.full_name, pair.image.uuid
    if flipped_from:
        Alert.objects.create(
            kind=Alert.Kind.FLIP,
            pair=pair,
            label_id=pair.label_id,
            message=f"“{label_name}” on {image_uuid} flipped from {flipped_from} to {status}.",
            details={"from": flipped_from, "to": status, "yes": tally.yes, "no": tally.no},
            created=now,
        )
        raised.append(Alert.Kind.FLIP)
    base = rules.swung(result.probability, recent_yes, recent, tally)
    if base is not None and not _alerted(Alert.Kind.SWING, window_start, pair_id=pair.pk):
        Alert.objects.create(
            kind=Alert.Kind.SWING,
            pair=pair,
            label_id=pair.label_id,
            message=(
                f"“{label_name}” on {image_uuid} swung from {base:.2f} to "
                f"{result.probability:.2f} within {settings.ALERT_WINDOW_MINUTES} minutes."
            ),
            details={
                "from": round(base, 4),
                "to": round(result.probability, 4),
                "votes": recent,
            },
            created=now,
        )
        raised.append(Alert.Kind.SWING)
    if ip_prefix not in ("", "unknown") and _burst(pair.label_id, ip_prefix, window_start):
        Alert.objects.create(
            kind=Alert.Kind.BURST,
            label_id=pair.label_id,
            ip_prefix=ip_prefix,
            message=(
                f"{settings.ALERT_BURST_VOTES}+ votes on “{label_name}” from {ip_prefix} "
                f"within {settings.ALERT_WINDOW_MINUTES} minutes."
            ),
            details={"votes": settings.ALERT_BURST_VOTES, "prefix": ip_prefix},
            created=now,
        )
        raised.append(Alert.Kind.BURST)
    log_alerts(raised, pair.label_id, pair.pk, ip_prefix)
    return raised


def _alerted(kind: str, since, **about) -> bool:
    return Alert.objects.filter(kind=kind, created__gte=since, **about).exists()


def _burst(label_id: int, ip_prefix: str, since) -> bool:
    """ALERT_BURST_VOTES votes on the label from this network since `since`, not yet alerted."""
    threshold = settings.ALERT_BURST_VOTES
    votes = Vote.objects.filter(ip_prefix=ip_prefix, updated__gte=since, pair__label_id=label_id)
    if votes.values("pk")[:threshold].count() < threshold:
        return False
    return not _alerted(Alert.Kind.BURST, since, ip_prefix=ip_prefix, label_id=label_id)


def log_alerts(kinds: list[str], label_id: int, pair_id: int, ip_prefix: str) -> None:
    for kind in kinds:
        if kind == Alert.Kind.BURST:
            log.warning("alert: burst of votes on label %s from %s", label_id, ip_prefix)
        else:
            log.warning("alert: pair %s %s", pair_id, "flipped" if kind == "flip" else "swung")


# --- a voter's weight changes ----------------------------------------------------


def _rewrite_weights(voter: Voter, label_id: int | None = None) -> list[int]:
    """Set counted and weight on the voter's votes (on one label) to what they are worth now.

    Writes one statement per distinct weight; returns the pairs whose votes changed.
    """
    counted = counts_for(voter)
    votes = Vote.objects.filter(voter=voter).exclude(answer=Vote.Answer.SKIP)
    if label_id is not None:
        votes = votes.filter(pair__label_id=label_id)
    wanted: dict[tuple[bool, float], list[int]] = defaultdict(list)
    changed_pairs = []
    for pk, pair_id, on_label, was_counted, was_weight in votes.values_list(
        "pk", "pair_id", "pair__label_id", "counted", "weight"
    ):
        weight = weight_of(voter, on_label) if counted else 0.0
        if (was_counted, was_weight) != (counted, weight):
            wanted[(counted, weight)].append(pk)
            changed_pairs.append(pair_id)
    for (now_counted, weight), ids in wanted.items():
        Vote.objects.filter(pk__in=ids).update(counted=now_counted, weight=weight)
    return changed_pairs


def recount_voter(voter: Voter) -> int:
    """Give or take weight from all of a voter's votes, then recount each pair they touched.

    Each pair is recounted in its own short transaction, so this never holds
    many locks at once. Returns how many pairs were recounted.
    """
    voter.refresh_from_db()
    return _resettle(_rewrite_weights(voter))


def _resettle(pair_ids) -> int:
    """Recount and settle these pairs, each in its own short transaction."""
    pair_ids = list(dict.fromkeys(pair_ids))
    for pair_id in pair_ids:
        settle(ImageLabel(pk=pair_id))
    return len(pair_ids)


def discard_votes(voter: Voter) -> int:
    """A moderator's verdict: none of this voter's votes count, now or later."""
    Voter.objects.filter(pk=voter.pk).update(banned=True, trusted=False)
    return recount_voter(voter)


@transaction.atomic
def freeze(pair: ImageLabel, frozen: bool = True) -> None:
    locked = _lock_pair({"pk": pair.pk})
    locked.frozen = frozen
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=frozen)
    pair_rules.refresh_servable(locked)
    pair.frozen, pair.servable = locked.frozen, locked.servable


@transaction.atomic
def reopen(pair: ImageLabel) -> None:
    """Send a settled pair back to the crowd; it needs REOPEN_EXTRA_VOTES more counted votes."""
    locked = _lock_pair({"pk": pair.pk})
    settle_after = locked.num_yes + locked.num_no + settings.REOPEN_EXTRA_VOTES
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=False, settle_after=settle_after)
    pair.frozen, pair.settle_after = False, settle_after
    recount(pair)
