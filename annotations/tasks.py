"""The pairs waiting for an outline: AnnotationTask's one home.

A task is open while its pair is validated, no outline of it has been accepted, and
fewer than NOT_ANNOTATABLE_TO_CLOSE trusted voters have said it cannot be outlined.
Everything that changes one of those facts calls a function here, and each rewrites
`open` from the facts in the same statement, so the flag never drifts.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, F, Q

from donations.models import ImageLabel

from .models import Annotation, AnnotationTask


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
