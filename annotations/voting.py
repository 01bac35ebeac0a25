"""Checking outlines: votes on an outline's latest revision, weighed and settled by
validation's rules, with validation's voters, training, gold and alerts.

Every vote on an outline goes through `record_vote`, every recount through `settle`:

- Only the latest revision is voted on; a new revision starts with no votes. One vote
  per voter per revision (a constraint); answering again replaces the answer.
- A vote counts, and weighs, exactly as a vote on a pair does (validation.voting's
  counts_for and weight_of: trust from gold, the voter's record on the label); only an
  outline that was served to its voter can be answered (a ticket of kind CHECK_TICKET).
  Nobody checks their own outline, nor an outline on a picture they donated.
- The votes of an outline's latest revision are tallied by rules.tally and settled by
  rules.outcome: accepted when the posterior reaches VALIDATION_POSTERIOR (the pairs'
  "validated"), rejected at the other end, open while the evidence is thin or not
  diverse — the same bar as pairs.
- Gold outlines are made by moderators (the admin) and promoted by the rule pairs use
  (rules.promotes_to_gold, against the pool of gold outlines). A first answer on a gold
  outline is scored into the voter's gold record (validation.voting.score_gold), the
  one record that trains voters and weighs their votes on pairs and outlines alike.
- Alerts are validation's: a flip or a swing of an outline is raised on its pair; a
  burst of outline votes from one network on a label holds that network's outline votes
  on the label, as a burst of pair votes does, and an open burst alert on the label
  (from either kind of vote) holds its new outline votes there too.
- Agreeing outlines (annotations.agreement) add evidence as votes of their authors.

Consensus records (Voter.consensus_by_label) are kept for pairs only: agreeing with the
crowd on whether a thing is in a picture is not the skill of judging an outline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from donations.models import Image
from people.models import Voter
from validation import rules, tickets
from validation import voting as pair_voting
from validation.models import Alert

from . import tasks
from .models import Annotation, AnnotationVote

log = logging.getLogger("imagemonkey.votes")

CHECK_TICKET = "outline:check"
STATUS_OF = {
    rules.OPEN: Annotation.Status.OPEN,
    rules.VALIDATED: Annotation.Status.ACCEPTED,
    rules.REJECTED: Annotation.Status.REJECTED,
}
Answer = AnnotationVote.Answer


class VoteRefused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


REFUSALS = {
    "not_found": ("no such outline", 404),
    "closed": ("This outline is not open for checking.", 404),
    "own": ("You cannot check your own outline, nor one on a picture you donated.", 403),
    "frozen": ("A moderator has closed this picture for votes.", 409),
    "answer": ("An answer is yes, no or skip.", 400),
}


def refuse(reason: str) -> VoteRefused:
    return VoteRefused(*REFUSALS[reason])


def ticket_item(annotation: Annotation) -> str:
    """What a check ticket names: the outline and the revision that was served."""
    return f"{annotation.pk}:{annotation.revision}"


def check_ticket(voter: Voter, annotation: Annotation, network: str = "") -> str:
    return tickets.issue_for(voter, ticket_item(annotation), network, kind=CHECK_TICKET)


def gold_pool_size() -> int:
    return Annotation.objects.filter(is_gold=True, pair__image__status=Image.Status.PUBLIC).count()


@dataclass
class OutlineVote:
    vote: AnnotationVote
    annotation: Annotation
    replaced: bool
    trust_changed: bool = False
    label_record_changed: bool = False
    held: list[int] = field(default_factory=list)  # outlines to recount after a burst


def record_vote(
    annotation_uuid,
    voter: Voter,
    answer: int,
    ip_prefix: str = "",
    *,
    ticket: str | None = None,
    as_evidence: bool = False,
) -> OutlineVote:
    """Record (or replace) `voter`'s answer on the outline's latest revision, then settle it.

    `as_evidence` is annotations.agreement's: the author of an agreeing outline, whose
    outline was served to them, needs no check ticket. VoteRefused, with nothing
    written, for a vote that cannot be taken.
    """
    if answer not in Answer.values:
        raise refuse("answer")
    with transaction.atomic():
        result = _record(annotation_uuid, voter, answer, ip_prefix, ticket, as_evidence)
    for pk in result.held:
        settle(pk)
    if result.trust_changed or result.label_record_changed:
        # The voter's gold record moved: their votes on pairs and on outlines weigh anew.
        pair_voting.recount_voter(voter)
        recount_voter(voter)
        result.annotation.refresh_from_db()
    return result


def _lock(**lookup) -> Annotation | None:
    return (
        Annotation.objects.select_for_update(of=("self",))
        .select_related("pair__image", "pair__label__parent")
        .filter(**lookup)
        .first()
    )


def _record(annotation_uuid, voter, answer, ip_prefix, ticket, as_evidence) -> OutlineVote:
    annotation = _lock(uuid=annotation_uuid)
    if annotation is None or annotation.pair.image.status != Image.Status.PUBLIC:
        raise refuse("not_found")
    pair = annotation.pair
    if not voter.is_moderator and not as_evidence:
        try:
            tickets.verify(ticket, voter, ticket_item(annotation), ip_prefix, kind=CHECK_TICKET)
        except tickets.TicketRefused as refused:
            raise VoteRefused(str(refused), pair_voting.UNSERVED) from None
    if not pair.label.is_annotatable:
        raise refuse("closed")
    if voter.exists and voter.pk in (annotation.author_id, pair.image.donor_id):
        raise refuse("own")
    if pair.frozen:
        raise refuse("frozen")
    if not voter.exists:
        voter.save()

    now = timezone.now()
    held = network_held(ip_prefix, pair.label_id, now)
    counted = (
        pair_voting.counts_for(voter)
        and answer != Answer.SKIP
        and annotation.status == Annotation.Status.OPEN
        and not held
    )
    weight = pair_voting.weight_of(voter, pair.label_id) if counted else 0.0
    vote, earlier = _store(annotation, voter, answer, counted, weight, ip_prefix, held, now)
    result = OutlineVote(vote=vote, annotation=annotation, replaced=earlier is not None)

    first_answer = earlier in (None, Answer.SKIP)
    if (
        annotation.is_gold
        and first_answer
        and answer != Answer.SKIP
        and not voter.is_moderator
        and not as_evidence
    ):
        result.trust_changed = pair_voting.score_gold(
            voter, answer == Answer.YES, annotation.gold_answer, pair.label_id
        )
        result.label_record_changed = True
    if not held and ip_prefix not in ("", "unknown"):
        result.held = _maybe_hold(annotation, ip_prefix, now)
    _settle_locked(annotation, now)
    return result


def _store(annotation, voter, answer, counted, weight, ip_prefix, held, now):
    """Insert or replace the vote on the latest revision (the outline is locked, so the
    earlier answer cannot move). A vote held by a burst stays held."""
    existing = AnnotationVote.objects.filter(
        annotation=annotation, revision=annotation.revision, voter=voter
    ).first()
    if existing is None:
        vote = AnnotationVote.objects.create(
            annotation=annotation,
            revision=annotation.revision,
            voter=voter,
            answer=answer,
            counted=counted,
            weight=weight,
            quarantined=held,
            ip_prefix=ip_prefix,
            created=now,
            updated=now,
        )
        return vote, None
    earlier = existing.answer
    existing.answer = answer
    existing.quarantined = existing.quarantined or held
    existing.counted = counted and not existing.quarantined
    existing.weight = weight if existing.counted else 0.0
    existing.ip_prefix = ip_prefix or existing.ip_prefix
    existing.updated = now
    existing.save(
        update_fields=["answer", "counted", "weight", "quarantined", "ip_prefix", "updated"]
    )
    return existing, earlier


# --- settling ------------------------------------------------------------------


def tally_of(annotation: Annotation, since=None) -> tuple[rules.Tally, int, int]:
    """The latest revision's counted votes as a tally, and how many (and how many yes)
    were cast since `since`."""
    rows = list(
        AnnotationVote.objects.filter(
            annotation_id=annotation.pk, revision=annotation.revision, counted=True
        ).values_list("answer", "weight", "ip_prefix", "updated")
    )
    tally = rules.tally(
        (answer == Answer.YES, weight, prefix) for answer, weight, prefix, _ in rows
    )
    recent = [answer for answer, _, _, updated in rows if since is not None and updated >= since]
    return tally, len(recent), sum(1 for answer in recent if answer == Answer.YES)


def settle(annotation_id: int) -> None:
    """Recount an outline from its latest revision's votes and act on the outcome."""
    with transaction.atomic():
        locked = _lock(pk=annotation_id)
        if locked is not None:
            _settle_locked(locked, timezone.now())


def _settle_locked(annotation: Annotation, now) -> None:
    window_start = now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
    tally, recent, recent_yes = tally_of(annotation, window_start)
    outcome = rules.outcome(tally)
    status = STATUS_OF[outcome.status]
    was = annotation.status
    fields = {
        "num_yes": tally.yes,
        "num_no": tally.no,
        "probability": outcome.probability,
        "confidence": outcome.confidence,
        "status": status,
        "updated": now,
    }
    flipped_from = None
    if outcome.status != rules.OPEN and status != annotation.settled_as:
        flipped_from, fields["settled_as"] = annotation.settled_as, status
    if (
        not annotation.is_gold
        and outcome.status != rules.OPEN
        and rules.promotes_to_gold(tally, outcome.status, gold_pool_size)
    ):
        fields["is_gold"], fields["gold_answer"] = True, outcome.status == rules.VALIDATED
    Annotation.objects.filter(pk=annotation.pk).update(**fields)
    for name, value in fields.items():
        setattr(annotation, name, value)
    if Annotation.Status.ACCEPTED in (was, status) and was != status:
        tasks.outline_settled(annotation.pair_id)

    pair = annotation.pair
    about = f"the outline {annotation.uuid} of “{pair.label.full_name}” on {pair.image.uuid}"
    if flipped_from:
        Alert.objects.create(
            kind=Alert.Kind.FLIP,
            pair=pair,
            label_id=pair.label_id,
            message=f"{about[0].upper()}{about[1:]} flipped from {flipped_from} to {status}.",
            details={
                "annotation": str(annotation.uuid),
                "revision": annotation.revision,
                "from": flipped_from,
                "to": status,
                "yes": tally.yes,
                "no": tally.no,
            },
            created=now,
        )
        log.warning("alert: outline %s flipped", annotation.pk)
    base = rules.swung(outcome.probability, recent_yes, recent, tally)
    if (
        base is not None
        and not Alert.objects.filter(
            kind=Alert.Kind.SWING,
            pair=pair,
            created__gte=window_start,
            details__annotation=str(annotation.uuid),
        ).exists()
    ):
        Alert.objects.create(
            kind=Alert.Kind.SWING,
            pair=pair,
            label_id=pair.label_id,
            message=(
                f"{about[0].upper()}{about[1:]} swung from {base:.2f} to "
                f"{outcome.probability:.2f} within {settings.ALERT_WINDOW_MINUTES} minutes."
            ),
            details={
                "annotation": str(annotation.uuid),
                "from": round(base, 4),
                "to": round(outcome.probability, 4),
                "votes": recent,
            },
            created=now,
        )
        log.warning("alert: outline %s swung", annotation.pk)


# --- bursts --------------------------------------------------------------------


def network_held(ip_prefix: str, label_id: int, now) -> bool:
    """Whether an open burst alert on this label holds this network's votes."""
    if ip_prefix in ("", "unknown"):
        return False
    return Alert.objects.filter(
        kind=Alert.Kind.BURST,
        ip_prefix=ip_prefix,
        label_id=label_id,
        resolved=False,
        created__gte=now - timedelta(hours=settings.ALERT_QUARANTINE_HOURS),
    ).exists()


def _recent_on_label(label_id: int, since, enough: int, ip_prefix: str | None = None) -> int:
    votes = AnnotationVote.objects.filter(updated__gte=since, annotation__pair__label_id=label_id)
    if ip_prefix is not None:
        votes = votes.filter(ip_prefix=ip_prefix)
    return len(votes.values_list("pk", flat=True)[:enough])


def _maybe_hold(annotation: Annotation, ip_prefix: str, now) -> list[int]:
    """A burst of outline votes from one network on one label: alert, and hold that
    network's recent outline votes on the label. Returns the other outlines to recount."""
    label_id = annotation.pair.label_id
    since = now - timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
    recent = _recent_on_label(label_id, since, pair_voting.BURST_COUNT_LIMIT, ip_prefix)
    if recent < settings.ALERT_BURST_VOTES:
        return []
    label_votes = _recent_on_label(label_id, since, int(recent / settings.ALERT_BURST_SHARE) + 1)
    if not rules.bursts(recent, label_votes):
        return []
    Alert.objects.create(
        kind=Alert.Kind.BURST,
        label_id=label_id,
        ip_prefix=ip_prefix,
        message=(
            f"{settings.ALERT_BURST_VOTES}+ outline checks on “{annotation.pair.label.full_name}” "
            f"from {ip_prefix} within {settings.ALERT_WINDOW_MINUTES} minutes; held out of "
            "the counts."
        ),
        details={"votes": recent, "label_votes": label_votes, "prefix": ip_prefix, "outlines": 1},
        created=now,
    )
    log.warning("alert: burst of outline checks on label %s from %s", label_id, ip_prefix)
    votes = AnnotationVote.objects.filter(
        ip_prefix=ip_prefix, updated__gte=since, annotation__pair__label_id=label_id
    )
    ids = set(votes.filter(counted=True).values_list("annotation_id", flat=True))
    votes.update(counted=False, weight=0.0, quarantined=True)
    return sorted(ids - {annotation.pk})


def release_quarantine(alert: Alert) -> int:
    """A moderator cleared a burst: the outline votes it held count again as their voters'
    records say. Returns how many outlines were recounted."""
    votes = AnnotationVote.objects.filter(
        quarantined=True, ip_prefix=alert.ip_prefix, annotation__pair__label_id=alert.label_id
    )
    voters = set(votes.values_list("voter_id", flat=True))
    votes.update(quarantined=False)
    touched: set[int] = set()
    for voter in Voter.objects.filter(pk__in=voters):
        touched.update(_rewrite_weights(voter))
    for pk in touched:
        settle(pk)
    return len(touched)


# --- a voter's weight changes ------------------------------------------------------


def _rewrite_weights(voter: Voter) -> set[int]:
    """Set counted and weight on the voter's outline votes to what they are worth now;
    returns the outlines whose votes changed. A vote starts to count only on an outline
    still open (and on its latest revision): trust earned later never reaches back."""
    counts_now = pair_voting.counts_for(voter)
    changed: set[int] = set()
    votes = (
        AnnotationVote.objects.filter(voter=voter, quarantined=False)
        .exclude(answer=Answer.SKIP)
        .values_list(
            "pk",
            "annotation_id",
            "revision",
            "annotation__revision",
            "annotation__status",
            "annotation__pair__label_id",
            "counted",
            "weight",
        )
    )
    for pk, annotation_id, revision, latest, status, label_id, was_counted, was_weight in votes:
        if revision != latest:
            continue  # an earlier revision's votes settle nothing any more
        now_counted = counts_now and (was_counted or status == Annotation.Status.OPEN)
        weight = pair_voting.weight_of(voter, label_id) if now_counted else 0.0
        if (was_counted, was_weight) != (now_counted, weight):
            AnnotationVote.objects.filter(pk=pk, quarantined=False).update(
                counted=now_counted, weight=weight
            )
            changed.add(annotation_id)
    return changed


def recount_voter(voter: Voter) -> int:
    """Reweigh all of a voter's outline votes, then recount each outline they touched."""
    voter.refresh_from_db()
    touched = _rewrite_weights(voter)
    for pk in touched:
        settle(pk)
    return len(touched)


# --- moderators -------------------------------------------------------------------


@transaction.atomic
def make_gold(annotation: Annotation, answer: bool) -> None:
    """A moderator's known answer (the outline is right or wrong), to train and score
    checkers with. Its status is left as the crowd's votes made it, as for gold pairs: a
    moderator's answer alone puts no outline in the exports, and the pair stays offered
    for outlining until the crowd accepts an outline of it."""
    locked = _lock(pk=annotation.pk)
    Annotation.objects.filter(pk=locked.pk).update(is_gold=True, gold_answer=answer)


@transaction.atomic
def remove_gold(annotation: Annotation) -> None:
    """No longer gold: the crowd's votes decide it again."""
    locked = _lock(pk=annotation.pk)
    Annotation.objects.filter(pk=locked.pk).update(is_gold=False, gold_answer=None)
    locked.is_gold, locked.gold_answer = False, None
    Annotation.objects.filter(pk=locked.pk).update(status=Annotation.Status.OPEN)
    locked.status = Annotation.Status.OPEN
    _settle_locked(locked, timezone.now())
    tasks.outline_settled(locked.pair_id)
