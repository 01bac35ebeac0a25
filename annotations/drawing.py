"""Drawing outlines and editing them: every outline is written here.

An outline may be drawn of a pair the crowd has validated (the label is in the picture),
on a public picture, of a label people outline (labels' `annotatable`). Each person
draws one outline per pair; editing it adds a revision, and the new revision starts
its votes afresh. The shapes are checked by annotations.shapes before anything is
written; a refusal writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from donations.models import Image, ImageLabel
from people.models import Voter
from validation import tickets

from . import agreement, geometry, shapes, tasks
from .models import Annotation, AnnotationRevision


class DrawingRefused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def why_not_outlined(pair: ImageLabel) -> DrawingRefused | None:
    """Why this pair (image and label with parent loaded) cannot be outlined, or None."""
    if pair.image.status != Image.Status.PUBLIC:
        return DrawingRefused("no such public picture with that label", 404)
    if not pair.label.is_annotatable:
        return DrawingRefused(f"“{pair.label.full_name}” is not outlined (a scene or a category)")
    if pair.frozen:
        return DrawingRefused("A moderator has closed this picture for now.", 409)
    if pair.status != ImageLabel.Status.VALIDATED:
        return DrawingRefused(
            f"the crowd has not confirmed “{pair.label.full_name}” in this picture yet", 409
        )
    return None


@dataclass(frozen=True)
class Drawn:
    annotation: Annotation
    revision: AnnotationRevision


def draw_ticket(voter: Voter, pair: ImageLabel, network: str, chosen: bool = False) -> str:
    """The ticket a served task carries: an outline drawn with it was not of the author's
    choosing, so it may count as evidence for the outlines it agrees with. A pair the
    voter asked for by name (`chosen`) gets a ticket of another kind, good for nothing:
    serving it does not make it a task they were given."""
    kind = tasks.CHOSEN_TICKET if chosen else tasks.DRAW_TICKET
    return tickets.issue_for(voter, pair.pk, network, kind=kind)


def check_shapes(pair: ImageLabel, raw: object) -> list[dict]:
    """The clean shapes, or DrawingRefused naming the shape and the reason."""
    try:
        return shapes.clean_shapes(raw, pair.image.width, pair.image.height)
    except shapes.ShapeError as error:
        raise DrawingRefused(str(error), 400) from None


@dataclass(frozen=True)
class Plan:
    """An outline checked and ready to be written (made by `plan` only)."""

    pair: ImageLabel
    shapes: list[dict]
    ticket: object = None


def plan(pair: ImageLabel, raw_shapes: object, ticket=None) -> Plan:
    """Check that the pair may be outlined and the shapes are good; DrawingRefused otherwise.

    The pair comes with its image and label (and parent) loaded.
    """
    if refused := why_not_outlined(pair):
        raise refused
    return Plan(pair, check_shapes(pair, raw_shapes), ticket)


def draw_many(plans: list[Plan], author: Voter, network: str = "") -> list[Drawn]:
    """New outlines by `author`, all or none; DrawingRefused with nothing written otherwise."""
    drawn = []
    try:
        with transaction.atomic():
            if not author.exists:
                author.save()
            for item in plans:
                annotation = Annotation.objects.create(
                    pair=item.pair,
                    author=author,
                    author_network=network,
                    independent=tasks.was_served(item.ticket, author, item.pair, network),
                )
                revision = AnnotationRevision.objects.create(
                    annotation=annotation,
                    number=1,
                    shapes=item.shapes,
                    author=author,
                    **geometry.measured(item.shapes, item.pair.image.width, item.pair.image.height),
                )
                tasks.outline_drawn(item.pair.pk)
                annotation.pair = item.pair
                drawn.append(Drawn(annotation, revision))
    except IntegrityError:
        raise DrawingRefused(
            "You have already outlined this; edit your outline instead.", 409
        ) from None
    for item in drawn:
        agreement.compare(item.annotation)
    return drawn


def draw(
    pair: ImageLabel, author: Voter, raw_shapes: object, network: str = "", ticket=None
) -> Drawn:
    """A new outline of the pair by `author`; DrawingRefused with nothing written otherwise."""
    return draw_many([plan(pair, raw_shapes, ticket)], author, network)[0]


def may_edit(annotation: Annotation, voter: Voter) -> bool:
    """Its author and moderators edit an outline; anyone else draws their own."""
    return voter.exists and (voter.pk == annotation.author_id or voter.is_moderator)


def revise(annotation: Annotation, editor: Voter, raw_shapes: object) -> Drawn:
    """A new revision of the outline; its votes start afresh. DrawingRefused otherwise.

    The annotation comes with its pair, image and label (and parent) loaded.
    """
    if not may_edit(annotation, editor):
        raise DrawingRefused("Only the outline's author or a moderator can edit it.", 403)
    pair = annotation.pair
    if pair.image.status != Image.Status.PUBLIC:
        raise DrawingRefused("no such outline", 404)
    if not pair.label.is_annotatable:
        raise DrawingRefused(f"“{pair.label.full_name}” is not outlined (a scene or a category)")
    if pair.frozen:
        raise DrawingRefused("A moderator has closed this picture for now.", 409)
    if pair.status != ImageLabel.Status.VALIDATED:
        raise DrawingRefused(
            f"The crowd no longer says there is a {pair.label.full_name} in this picture: "
            "there is nothing to outline.",
            409,
        )
    clean = check_shapes(pair, raw_shapes)
    with transaction.atomic():
        locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
        number = locked.revision + 1
        revision = AnnotationRevision.objects.create(
            annotation=locked,
            number=number,
            shapes=clean,
            author=editor,
            **geometry.measured(clean, pair.image.width, pair.image.height),
        )
        fresh = {
            "revision": number,
            "status": Annotation.Status.OPEN,
            "num_yes": 0,
            "num_no": 0,
            "probability": 0.0,
            "confidence": 0.0,
            "settled_as": "",
            # A gold outline's known answer was about the shapes it had.
            "is_gold": False,
            "gold_answer": None,
            "updated": timezone.now(),
        }
        Annotation.objects.filter(pk=locked.pk).update(**fresh)
        for name, value in fresh.items():
            setattr(annotation, name, value)
        if locked.status == Annotation.Status.ACCEPTED:
            tasks.outline_settled(pair.pk)
    agreement.compare(annotation)
    return Drawn(annotation, revision)
