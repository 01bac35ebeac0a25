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
  ALERT_BURST_VOTES votes on one label came from one /24 (or /48) in the window.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from donations import pairs as pair_rules
from donations.models import Image, ImageLabel
from labels.models import Label
from people.models import Voter

from . import rules, tickets
from .models import Alert, RevoteSample, Vote

log = logging.getLogger("imagemonkey.votes")

# Sent when a recount changes a pair's status, with `pair` and its new `status`; the
# apps above validation (annotations) listen instead of being called.
pair_status_changed = Signal()
# Sent with `voter` after their trust or gold record changed (and their votes on pairs
# were reweighed): the apps above reweigh their own votes of theirs.
voter_record_changed = Signal()


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
    if label_id is None:
        return rules.vote_weight_for(voter.gold_correct, voter.gold_wrong, None, voter.is_moderator)
    return rules.vote_weight_for(
        voter.gold_correct,
        voter.gold_wrong,
        voter.record_on(label_id),
        voter.is_moderator,
        voter.consensus_on(label_id),
    )


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
    "undo": ("There is no answer to undo: only your last answer can be, within a minute.", 409),
}
UNSERVED = 403  # the status of a vote without a valid ticket


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
    quarantined_pairs: list[int] = field(default_factory=list)  # to recount after commit


def record_vote(
    pair: ImageLabel | None,
    voter: Voter,
    answer: int,
    ip_prefix: str = "",
    *,
    ticket: str | None = None,
    image_uuid=None,
    label_id: int | None = None,
) -> VoteResult:
    """Record (or replace) `voter`'s answer on a pair, then settle the pair.

    The pair is `pair`, or the one of the public picture `image_uuid` with
    `label_id` (the API names pairs so). Only a pair served to this voter can
    be answered: `ticket` is the one its task carried (validation.tickets);
    moderators need none. An unsaved voter (a visitor's first write) is saved
    first. Raises VoteRefused for a vote that cannot be taken, with nothing
    written.
    """
    if answer not in Vote.Answer.values:
        raise refuse("answer")
    lookup = (
        {"pk": pair.pk} if pair is not None else {"image_uuid": image_uuid, "label_id": label_id}
    )
    with transaction.atomic():
        result = _record(lookup, voter, answer, ip_prefix, pair is None, ticket)
    if result.quarantined_pairs:
        _resettle(result.quarantined_pairs)
    if result.trust_changed:
        recount_voter(voter)
        result.pair.refresh_from_db()
    elif result.label_record_changed and counts_for(voter):
        # Their weight on this label moved: rewrite it, and when they missed,
        # redo the pairs it helped settle.
        changed = _rewrite_weights(voter, result.pair.label_id)
        if result.gold_missed:
            _resettle(pk for pk in changed if pk != result.pair.pk)
    if result.trust_changed or result.label_record_changed:
        voter_record_changed.send(sender=Voter, voter=voter)
    return result


# The vote path's statements are written as SQL: they run on every vote, and building
# them with the ORM cost more Python than PostgreSQL takes to run them.
_LOCK = """
SELECT p.id, p.status, p.frozen, p.is_gold, p.gold_answer, p.settled_as, p.settle_after,
       p.servable, p.num_yes, p.num_no, p.label_id, p.image_id, p.ask_parts, p.added_by_id,
       i.uuid, i.status, i.donor_id,
       l.name, l.active, l.is_meta, l.parent_id, parent.name, parent.active
FROM validation_imagelabel p
JOIN donations_image i ON i.id = p.image_id
JOIN labels_label l ON l.id = p.label_id
LEFT JOIN labels_label parent ON parent.id = l.parent_id
WHERE {where}
FOR UPDATE OF p
"""
_LOCK_BY_ID = _LOCK.format(where="p.id = %s")
_LOCK_BY_UUID = _LOCK.format(where="i.uuid = %s AND p.label_id = %s AND i.status = %s")


def _lock_pair(pk: int | None = None, *, image_uuid=None, label_id=None) -> ImageLabel | None:
    """The pair (by id, or by public picture and label), locked until the transaction ends,
    with its image and label (and parent)."""
    if pk is not None:
        sql, params = _LOCK_BY_ID, [pk]
    else:
        sql, params = _LOCK_BY_UUID, [image_uuid, label_id, Image.Status.PUBLIC]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    (pk, status, frozen, is_gold, gold_answer, settled_as, settle_after, servable, num_yes,
     num_no, label_id, image_id, ask_parts, added_by_id, uuid, image_status, donor_id, name,
     active, is_meta, parent_id, parent_name, parent_active) = row  # fmt: skip
    label = Label(id=label_id, name=name, active=active, is_meta=is_meta, parent_id=parent_id)
    if parent_id is not None:
        label.parent = Label(id=parent_id, name=parent_name, active=parent_active)
    pair = ImageLabel(
        id=pk,
        status=status,
        frozen=frozen,
        is_gold=is_gold,
        gold_answer=gold_answer,
        settled_as=settled_as,
        settle_after=settle_after,
        servable=servable,
        num_yes=num_yes,
        num_no=num_no,
        ask_parts=ask_parts,
        added_by_id=added_by_id,
    )
    pair.image = Image(id=image_id, uuid=uuid, status=image_status, donor_id=donor_id)
    pair.label = label
    return pair


def _record(
    lookup: dict, voter: Voter, answer: int, ip_prefix: str, by_uuid: bool, ticket: str | None
) -> VoteResult:
    pair = _lock_pair(**lookup)
    if pair is None:
        raise refuse("not_found" if by_uuid else "closed")
    if not voter.is_moderator:
        try:
            tickets.verify(ticket, voter, pair.pk, ip_prefix)
        except tickets.TicketRefused as refused:
            raise VoteRefused(str(refused), UNSERVED) from None
    if pair.image.status != Image.Status.PUBLIC or not pair.label.is_taggable:
        raise refuse("closed")
    if pair.image.donor_id is not None and pair.image.donor_id == voter.pk:
        raise refuse("own")
    if pair.frozen:
        raise refuse("frozen")
    if not voter.exists:
        voter.save()

    network = _network_on_label(ip_prefix, pair.label_id)
    # A vote counts only on an open pair (one that settled since it was served, or a
    # gold pair, settled by definition, keeps the counts it settled with), and not
    # while its network is in quarantine on this label after a burst.
    counted = (
        counts_for(voter)
        and answer != Vote.Answer.SKIP
        and pair.status == ImageLabel.Status.OPEN
        and not network.quarantined
    )
    weight = weight_of(voter, pair.label_id) if counted else 0.0
    vote = _store(pair, voter, answer, counted, weight, ip_prefix, network.quarantined)
    replaced = vote.earlier_answer is not None

    trust_changed = gold_missed = label_record_changed = False
    # Gold scores the first answer that is not a skip: skipping first and answering
    # later is still checked.
    first_answer = vote.earlier_answer in (None, Vote.Answer.SKIP)
    if pair.is_gold and first_answer and answer != Vote.Answer.SKIP and not voter.is_moderator:
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

    quarantined = []
    if not network.quarantined and network.recent is not None:
        quarantined = _maybe_quarantine(pair, vote.ip_prefix, network.recent + 1, vote.updated)
    _settle_locked(pair, vote.updated)
    return VoteResult(
        quarantined_pairs=quarantined,
        vote=vote,
        pair=pair,
        replaced=replaced,
        trust_changed=trust_changed,
        gold_missed=gold_missed,
        label_record_changed=label_record_changed,
    )


# An upsert: one statement whether the voter answers for the first time or again. It
# returns the answer it replaced, if any (the pair is locked, so `earlier` cannot move),
# and a vote held in quarantine stays held, whatever network answers again.
_UPSERT = """
WITH earlier AS (
    SELECT answer FROM validation_vote
    WHERE pair_id = %(pair)s AND voter_id = %(voter)s
)
INSERT INTO validation_vote AS v
    (pair_id, voter_id, answer, counted, weight, quarantined, undone, ip_prefix, created, updated)
VALUES (%(pair)s, %(voter)s, %(answer)s, %(counted)s, %(weight)s, %(quarantined)s, false,
        %(prefix)s, %(now)s, %(now)s)
ON CONFLICT (pair_id, voter_id) DO UPDATE
SET answer = excluded.answer,
    undone = false,
    counted = excluded.counted AND NOT v.quarantined,
    weight = CASE WHEN v.quarantined THEN 0 ELSE excluded.weight END,
    quarantined = v.quarantined OR excluded.quarantined,
    updated = excluded.updated,
    ip_prefix = CASE WHEN excluded.ip_prefix <> '' THEN excluded.ip_prefix ELSE v.ip_prefix END
RETURNING v.id, v.ip_prefix, v.created, v.counted, v.weight, v.quarantined,
          (SELECT answer FROM earlier)
"""


def _store(
    pair: ImageLabel,
    voter: Voter,
    answer: int,
    counted: bool,
    weight: float,
    ip_prefix: str,
    quarantined: bool = False,
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
                "quarantined": quarantined,
                "prefix": ip_prefix,
                "now": now,
            },
        )
        pk, used_prefix, created, counted, weight, quarantined, earlier = cursor.fetchone()
    vote = Vote(
        pk=pk,
        pair=pair,
        voter=voter,
        answer=answer,
        counted=counted,
        weight=weight,
        quarantined=quarantined,
        ip_prefix=used_prefix,
        created=created,
        updated=now,
    )
    vote.earlier_answer = earlier  # None for a first answer
    return vote


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


_TALLY = """
SELECT count(*) FILTER (WHERE answer = 1),
       count(*) FILTER (WHERE answer = 0),
       coalesce(sum(CASE WHEN answer = 1 THEN weight ELSE -weight END), 0),
       count(*) FILTER (WHERE weight > 0),
       count(*) FILTER (WHERE updated >= %(since)s),
       count(*) FILTER (WHERE updated >= %(since)s AND answer = 1),
       count(DISTINCT ip_prefix) FILTER (WHERE weight > 0 AND ip_prefix NOT IN ('', 'unknown'))
FROM validation_vote
WHERE pair_id = %(pair)s AND counted
"""


def _tally(pair_id: int, since) -> tuple[rules.Tally, int, int]:
    """The pair's counted votes in one aggregate: the tally, and how many (and how many
    yes) were cast since `since`."""
    with connection.cursor() as cursor:
        cursor.execute(_TALLY, {"pair": pair_id, "since": since})
        yes, no, evidence, weighing, recent, recent_yes, networks = cursor.fetchone()
    tally = rules.Tally(yes, no, evidence, weighing > 0, voters=weighing, networks=networks)
    return tally, recent, recent_yes


def recount(pair: ImageLabel) -> None:
    """Derive counts, probability, confidence, status and servable from the counted votes.

    Locks the pair until the end of the transaction; raises ImageLabel.DoesNotExist
    when it is gone. No alerts, no promotion: for merges and reopened pairs.
    """
    with transaction.atomic():
        locked = _lock_pair(pair.pk)
        if locked is None:
            raise ImageLabel.DoesNotExist(f"no pair {pair.pk} to recount")
        now = timezone.now()
        tally = _tally(locked.pk, now)[0]
        _apply(locked, tally, rules.outcome(tally, locked.settle_after), now)
    _copy_counts(locked, pair)


def _copy_counts(source: ImageLabel, target: ImageLabel) -> None:
    for name in (
        *("num_yes", "num_no", "probability", "confidence", "status", "servable", "updated"),
        *("settled_as", "is_gold", "gold_answer"),
    ):
        setattr(target, name, getattr(source, name))


def settle(pair: ImageLabel) -> None:
    """Recount the pair from its votes and act on the outcome (alerts, promotion to gold).

    A pair deleted meanwhile is left alone.
    """
    with transaction.atomic():
        locked = _lock_pair(pair.pk)
        if locked is None:
            return  # deleted meanwhile (its picture was): nothing left to settle
        _settle_locked(locked, timezone.now())
    _copy_counts(locked, pair)


def _apply(pair: ImageLabel, tally: rules.Tally, result: rules.Outcome, now, **more) -> None:
    """Write the tally and its outcome (and `more` fields) onto the locked pair, in one update.

    When the status changes, pair_status_changed tells whoever listens (annotations: a
    validated pair is something to outline), inside the same transaction.
    """
    was = pair.status
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
    fields = {
        "num_yes": pair.num_yes,
        "num_no": pair.num_no,
        "probability": pair.probability,
        "confidence": pair.confidence,
        "status": pair.status,
        "servable": pair.servable,
        "updated": now,
        **more,
    }
    assignments = ", ".join(f"{name} = %({name})s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE validation_imagelabel SET {assignments} WHERE id = %(id)s",  # noqa: S608 - field names are ours
            {**fields, "id": pair.pk},
        )
    if pair.status != was:
        pair_status_changed.send(sender=ImageLabel, pair=pair, status=pair.status)


def _settle_locked(pair: ImageLabel, now) -> None:
    """settle() for a pair this transaction has locked (image and label loaded)."""
    window_start = now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
    tally, recent, recent_yes = _tally(pair.pk, window_start)
    result = rules.outcome(tally, pair.settle_after)
    status = result.status
    more = {}
    flipped_from = None
    if status != rules.OPEN and status != pair.settled_as:
        flipped_from, more["settled_as"] = pair.settled_as, status
    if (
        not pair.is_gold
        and status != rules.OPEN
        and rules.promotes_to_gold(tally, status, gold_pool_size)
    ):
        more["is_gold"], more["gold_answer"] = True, status == rules.VALIDATED
    _apply(pair, tally, result, now, **more)
    if flipped_from == "":
        # Settled for the first time: who agreed with the outcome. (A flip is an alert
        # for a moderator, not a second verdict on the same answers.)
        _record_consensus(pair, status)
        if rules.draws_revote(random.random(), pair.is_gold):
            RevoteSample.objects.get_or_create(pair_id=pair.pk, defaults={"settled_as": status})
    if status == rules.VALIDATED and pair.ask_parts:
        pair_rules.attach_parts(pair)  # the label is there: now ask about its parts

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
    for kind in raised:
        log.warning("alert: pair %s %s", pair.pk, "flipped" if kind == Alert.Kind.FLIP else "swung")


@dataclass(frozen=True)
class _Network:
    recent: int | None  # its votes on the label within the alert window (None: no network)
    quarantined: bool  # an unresolved burst alert on the label holds its votes


# One network's votes on one label since a moment, counted as far as `enough`.
_NETWORK_VOTES = """
SELECT count(*) FROM (
    SELECT 1 FROM validation_vote v JOIN validation_imagelabel p ON p.id = v.pair_id
    WHERE v.ip_prefix = %(prefix)s AND v.updated >= %(since)s AND p.label_id = %(label)s
    LIMIT %(enough)s
) recent
"""
_NETWORK = f"""
SELECT ({_NETWORK_VOTES}),
       EXISTS (SELECT 1 FROM validation_alert
               WHERE kind = 'burst' AND ip_prefix = %(prefix)s AND label_id = %(label)s
                 AND NOT resolved AND created >= %(held_since)s)
"""  # noqa: S608 - built from a constant of this module

_LABEL_TRAFFIC = """
SELECT count(*) FROM (
    SELECT 1 FROM validation_vote v JOIN validation_imagelabel p ON p.id = v.pair_id
    WHERE v.updated >= %s AND p.label_id = %s
    LIMIT %s
) recent
"""
BURST_COUNT_LIMIT = 10_000


def _network_on_label(ip_prefix: str, label_id: int) -> _Network:
    """What the vote's network has done on this label lately, in one statement."""
    if ip_prefix in ("", "unknown"):
        return _Network(None, False)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _NETWORK,
            {
                "prefix": ip_prefix,
                "label": label_id,
                "since": now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES),
                "enough": settings.ALERT_BURST_VOTES,
                "held_since": now - timedelta(hours=settings.ALERT_QUARANTINE_HOURS),
            },
        )
        recent, quarantined = cursor.fetchone()
    return _Network(recent, quarantined)


def _maybe_quarantine(pair: ImageLabel, ip_prefix: str, recent: int, now) -> list[int]:
    """A burst from one network on one label: alert, and take that network's recent votes on
    the label out of the counts until a moderator clears them (release_quarantine); its new
    votes there are held too while the alert is open and younger than
    ALERT_QUARANTINE_HOURS. Returns the other pairs to recount."""
    if recent < settings.ALERT_BURST_VOTES:
        return []
    since = now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
    with connection.cursor() as cursor:
        # The per-vote count stopped at the threshold; now count the network's votes on
        # the label (within reason), and the label's, as far as the share needs.
        cursor.execute(
            _NETWORK_VOTES,
            {
                "prefix": ip_prefix,
                "since": since,
                "label": pair.label_id,
                "enough": BURST_COUNT_LIMIT,
            },
        )
        recent = cursor.fetchone()[0]
        enough = int(recent / settings.ALERT_BURST_SHARE) + 1
        cursor.execute(_LABEL_TRAFFIC, [since, pair.label_id, enough])
        label_votes = cursor.fetchone()[0]
    if not rules.bursts(recent, label_votes):
        return []
    Alert.objects.create(
        kind=Alert.Kind.BURST,
        label_id=pair.label_id,
        ip_prefix=ip_prefix,
        message=(
            f"{settings.ALERT_BURST_VOTES}+ votes on “{pair.label.full_name}” from {ip_prefix} "
            f"within {settings.ALERT_WINDOW_MINUTES} minutes; held out of the counts."
        ),
        details={"votes": recent, "label_votes": label_votes, "prefix": ip_prefix},
        created=now,
    )
    log.warning("alert: burst of votes on label %s from %s", pair.label_id, ip_prefix)
    held = Vote.objects.filter(
        ip_prefix=ip_prefix, updated__gte=since, pair__label_id=pair.label_id
    )
    pair_ids = list(held.filter(counted=True).values_list("pair_id", flat=True).distinct())
    held.update(counted=False, weight=0.0, quarantined=True)
    return [pk for pk in pair_ids if pk != pair.pk]


def release_quarantine(alert: Alert) -> int:
    """A moderator clears a burst: its votes count again as their voters' records say."""
    votes = Vote.objects.filter(
        quarantined=True, ip_prefix=alert.ip_prefix, pair__label_id=alert.label_id
    )
    with transaction.atomic():
        voters = set(votes.values_list("voter_id", flat=True))
        pair_ids = set(votes.values_list("pair_id", flat=True))
        votes.update(quarantined=False)
        Alert.objects.filter(pk=alert.pk).update(resolved=True)
        for voter in Voter.objects.filter(pk__in=voters):
            pair_ids.update(_rewrite_weights(voter, alert.label_id))
    return _resettle(pair_ids)


# When a pair settles, every counted voter's agreement with the outcome on its label is
# remembered (rules.vote_weight_for weighs it): one statement for all of them.
_CONSENSUS = """
UPDATE validation_voter r
SET consensus_by_label = jsonb_set(
    r.consensus_by_label, ARRAY[%(key)s],
    jsonb_build_array(
        coalesce((r.consensus_by_label -> %(key)s ->> 0)::int, 0) + v.agreed::int,
        coalesce((r.consensus_by_label -> %(key)s ->> 1)::int, 0) + (NOT v.agreed)::int
    )
)
FROM (
    SELECT voter_id, (answer = 1) = %(validated)s AS agreed
    FROM validation_vote WHERE pair_id = %(pair)s AND counted
) v
WHERE r.id = v.voter_id
"""


def _record_consensus(pair: ImageLabel, status: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _CONSENSUS,
            {
                "key": Voter.label_key(pair.label_id),
                "validated": status == rules.VALIDATED,
                "pair": pair.pk,
            },
        )


def _alerted(kind: str, since, **about) -> bool:
    return Alert.objects.filter(kind=kind, created__gte=since, **about).exists()


# --- taking an answer back --------------------------------------------------------


def last_undoable(voter: Voter) -> Vote | None:
    """The voter's last answer, when it is younger than UNDO_SECONDS and not undone yet."""
    if not voter.exists:
        return None
    last = Vote.objects.filter(voter=voter).order_by("-updated", "-pk").first()
    if last is None or last.undone:
        return None
    if last.updated < timezone.now() - timedelta(seconds=settings.UNDO_SECONDS):
        return None
    return last


def undo_last_vote(voter: Voter, pair_id: int) -> ImageLabel:
    """Take back the voter's last answer (on `pair_id`) within UNDO_SECONDS, and recount.

    The vote stays, marked undone, counting for nothing, so the pair is not served to
    the voter again by selection (the page shows it once more, to answer anew); an
    answer given afterwards replaces it as any second answer does. So a gold pair is
    scored on the first answer only: undoing cannot buy a second try, and it takes the
    same path, with the same result, on gold and ordinary pairs. The pair is recounted
    by the same settling as a vote: it reopens only when its remaining votes no longer
    settle it. Raises VoteRefused when there is nothing to undo.
    """
    last = last_undoable(voter)
    if last is None or last.pair_id != pair_id:
        raise refuse("undo")
    pair = _undo(last)
    if pair is None:
        raise refuse("undo")
    return pair


def undo_votes(voter: Voter, pair_ids) -> list[ImageLabel]:
    """Take back the voter's answers on these pairs (a grid's batch) that are younger than
    UNDO_SECONDS, each as undo_last_vote does; raises VoteRefused when none can be."""
    if not voter.exists:
        raise refuse("undo")
    since = timezone.now() - timedelta(seconds=settings.UNDO_SECONDS)
    votes = Vote.objects.filter(
        voter=voter, pair_id__in=list(pair_ids), undone=False, updated__gte=since
    ).order_by("pair_id")  # one lock order for every batch
    undone = [pair for vote in votes if (pair := _undo(vote)) is not None]
    if not undone:
        raise refuse("undo")
    return undone


def _undo(vote: Vote) -> ImageLabel | None:
    """Mark one vote undone and recount its pair; None when it moved on meanwhile."""
    with transaction.atomic():
        pair = _lock_pair(vote.pair_id)  # the vote path's lock order: the pair, then its votes
        if pair is None:
            return None
        # Unchanged since it was read: a second answer meanwhile is not undone.
        taken = Vote.objects.filter(pk=vote.pk, updated=vote.updated, undone=False).update(
            undone=True, counted=False, weight=0.0
        )
        if not taken:
            return None
        if _made_gold_by(vote, pair):
            # A moderator's slip made this pair gold (cold start): take that back too, or
            # every new voter would be trained against it. Their next answer makes it again.
            pair.is_gold, pair.gold_answer = False, None
            ImageLabel.objects.filter(pk=pair.pk).update(is_gold=False, gold_answer=None)
        _settle_locked(pair, timezone.now())
    return pair


def _made_gold_by(vote: Vote, pair: ImageLabel) -> bool:
    """Whether this moderator's answer is what made the pair gold: while the pool is small,
    a moderator's answer does (record_vote), and the known answer is theirs."""
    return (
        vote.voter.is_moderator
        and pair.is_gold
        and vote.answer != Vote.Answer.SKIP
        and pair.gold_answer == (vote.answer == Vote.Answer.YES)
        and gold_pool_size() <= settings.GOLD_MIN_POOL
    )


# --- a voter's weight changes ----------------------------------------------------


def _rewrite_weights(voter: Voter, label_id: int | None = None) -> list[int]:
    """Set counted and weight on the voter's votes (on one label) to what they are worth now.

    Writes one statement per distinct weight; returns the pairs whose votes changed.
    """
    counts_for_now = counts_for(voter)
    votes = Vote.objects.filter(voter=voter, quarantined=False, undone=False).exclude(
        answer=Vote.Answer.SKIP
    )
    if label_id is not None:
        votes = votes.filter(pair__label_id=label_id)
    wanted: dict[tuple[bool, float], list[int]] = defaultdict(list)
    changed_pairs = []
    for pk, pair_id, on_label, pair_status, was_counted, was_weight in votes.values_list(
        "pk", "pair_id", "pair__label_id", "pair__status", "counted", "weight"
    ):
        # A vote starts to count only on a pair still open: trust earned later never
        # reaches back into pairs that settled meanwhile.
        now_counted = counts_for_now and (was_counted or pair_status == ImageLabel.Status.OPEN)
        weight = weight_of(voter, on_label) if now_counted else 0.0
        if (was_counted, was_weight) != (now_counted, weight):
            wanted[(now_counted, weight)].append(pk)
            changed_pairs.append(pair_id)
    for (now_counted, weight), ids in wanted.items():
        # quarantined=False again: a burst may have held one of them meanwhile.
        Vote.objects.filter(pk__in=ids, quarantined=False, undone=False).update(
            counted=now_counted, weight=weight
        )
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
    recounted = recount_voter(voter)
    voter_record_changed.send(sender=Voter, voter=voter)
    return recounted


@transaction.atomic
def freeze(pair: ImageLabel, frozen: bool = True) -> None:
    locked = _lock_pair(pair.pk)
    locked.frozen = frozen
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=frozen)
    pair_rules.refresh_servable(locked)
    pair.frozen, pair.servable = locked.frozen, locked.servable


@transaction.atomic
def reopen(pair: ImageLabel) -> None:
    """Send a settled pair back to the crowd; it needs REOPEN_EXTRA_VOTES more counted votes."""
    locked = _lock_pair(pair.pk)
    settle_after = locked.num_yes + locked.num_no + settings.REOPEN_EXTRA_VOTES
    ImageLabel.objects.filter(pk=pair.pk).update(frozen=False, settle_after=settle_after)
    pair.frozen, pair.settle_after = False, settle_after
    recount(pair)
