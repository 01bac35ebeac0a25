"""The pairs waiting for an outline: AnnotationTask's one home.

A task is open while its pair is validated, no outline of it has been accepted, and
fewer than NOT_ANNOTATABLE_TO_CLOSE trusted voters have said it cannot be outlined.
Everything that changes one of those facts calls a function here, and each rewrites
`open` from the facts in the same statement, so the flag never drifts.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q

from donations.models import ImageLabel
from people.models import Voter
from validation import tickets
from validation.voting import counts_for

from .models import Agreement, Annotation, AnnotationTask, NotAnnotatable

# The kind of ticket a pair served to be outlined carries (annotations.drawing hands it out).
DRAW_TICKET = "outline:draw"
# …and the kind a pair asked for by its uuid carries: its voter chose it, so it is no task.
CHOSEN_TICKET = "outline:chosen"


def _open_expression() -> ExpressionWrapper:
    return ExpressionWrapper(
        Q(validated=True)
        & Q(accepted=False)
        & Q(not_annotatable__lt=settings.NOT_ANNOTATABLE_TO_CLOSE),
        output_field=BooleanField(),
    )


def _refresh(pair_id: int) -> None:
    AnnotationTask.objects.filter(pk=pair_id).update(open=_open_expression())


def pair_status_changed(pair_id: int, label_id: int, status: str) -> None:
    """A pair's status changed: validated pairs are tasks, others are not (any more)."""
    validated = status == ImageLabel.Status.VALIDATED
    if not AnnotationTask.objects.filter(pk=pair_id).update(validated=validated):
        if not validated:
            return
        AnnotationTask.objects.create(pair_id=pair_id, label_id=label_id)
    _refresh(pair_id)


def outline_drawn(pair_id: int) -> None:
    AnnotationTask.objects.filter(pk=pair_id).update(outlines=F("outlines") + 1)


def outline_settled(pair_id: int) -> None:
    """An outline of the pair was accepted, or stopped being so: recount whether any is."""
    accepted = Annotation.objects.filter(pair_id=pair_id).accepted().exists()
    AnnotationTask.objects.filter(pk=pair_id).update(accepted=accepted)
    _refresh(pair_id)


def said_not_annotatable(pair_id: int, trusted_voters: int) -> None:
    """How many trusted voters now say the pair cannot be outlined."""
    AnnotationTask.objects.filter(pk=pair_id).update(not_annotatable=trusted_voters)
    _refresh(pair_id)


def was_served(ticket: object, voter: Voter, pair: ImageLabel, network: str) -> bool:
    """Whether `ticket` is the one GET /v1/annotate served this voter with this pair."""
    if ticket is None:
        return False
    try:
        tickets.verify(ticket, voter, pair.pk, network, kind=DRAW_TICKET)
    except tickets.TicketRefused:
        return False
    return True


def say_not_annotatable(pair: ImageLabel, voter: Voter, network: str = "", ticket=None) -> int:
    """`voter` says the pair cannot be outlined; how many trusted voters now say so.

    A voter's word counts towards closing the task (NOT_ANNOTATABLE_TO_CLOSE) when their
    votes count (validation's trust) and the pair was served to them as a task — or they
    are a moderator: nobody can close a pair of their choosing with fresh identities.
    Saying it twice changes nothing.
    """
    trusted = counts_for(voter) and (voter.is_moderator or was_served(ticket, voter, pair, network))
    with transaction.atomic():
        if not voter.exists:
            voter.save()
        # Said before: the first word stands.
        with contextlib.suppress(IntegrityError), transaction.atomic():
            NotAnnotatable.objects.create(pair=pair, voter=voter, trusted=trusted)
        count = NotAnnotatable.objects.filter(pair=pair, trusted=True, voter__banned=False).count()
        said_not_annotatable(pair.pk, count)
    return count


# --- label merges (validation.merge tells) --------------------------------------------


def pairs_relabelled(pair_ids: list[int], label_id: int) -> None:
    """Pairs moved to another label: their tasks and agreements follow."""
    AnnotationTask.objects.filter(pk__in=pair_ids).update(label_id=label_id)
    Agreement.objects.filter(first__pair_id__in=pair_ids).update(label_id=label_id)


def pair_combined(pair: ImageLabel, into: ImageLabel) -> None:
    """A pair is merged into another of the same picture: its outlines move there, but for
    those whose authors outlined the other pair already (theirs there stands)."""
    taken = Annotation.objects.filter(pair=into, author__isnull=False).values("author_id")
    Annotation.objects.filter(pair=pair, author_id__in=taken).delete()
    moving = Annotation.objects.filter(pair=pair)
    moved = moving.count()
    Agreement.objects.filter(first__pair=pair).update(label_id=into.label_id)
    moving.update(pair=into)
    if moved:
        AnnotationTask.objects.filter(pk=into.pk).update(outlines=F("outlines") + moved)
        outline_settled(into.pk)
