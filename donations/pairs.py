"""The image–label pair's one home: creating pairs, and keeping `servable` true.

A pair is *servable* — offered to voters as a task — when it is open, not
frozen, on a public picture, and its label is taggable (active, not a category,
with an active parent: labels' own rule). Everything that creates a pair or
changes one of those facts comes through here, so the flag never drifts:
ingestion, accepted label suggestions, labels added on a picture, moderation
decisions, label (de)activation, and voting's recount (is_servable).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When

from labels.models import Label, LabelSuggestion
from people.models import Voter

from .models import Image, ImageLabel, SuggestionUse


def is_servable(pair: ImageLabel) -> bool:
    """Whether this pair may be served as a task (its image and label, with parent, loaded)."""
    return (
        pair.status == ImageLabel.Status.OPEN
        and not pair.frozen
        and pair.image.status == Image.Status.PUBLIC
        and pair.label.is_taggable
    )


def _servable_expression():
    """is_servable, as SQL over the pair table (for updates of many pairs at once)."""
    taggable = Label.objects.taggable().filter(pk=OuterRef("label_id"))
    public = Image.objects.public().filter(pk=OuterRef("image_id"))
    return Case(
        When(
            Q(status=ImageLabel.Status.OPEN) & Q(frozen=False) & Exists(public) & Exists(taggable),
            then=Value(True),
        ),
        default=Value(False),
    )


def _sync(pairs) -> int:
    """Set `servable` right on these pairs, writing only the rows that are wrong."""
    expression = _servable_expression()
    wrong = pairs.alias(should=expression).exclude(servable=F("should"))
    return ImageLabel.objects.filter(pk__in=wrong.values("pk")).update(servable=expression)


def sync_servable_for_image(image: Image) -> int:
    """After an image's status changed: its pairs may (not) be served as tasks."""
    return _sync(ImageLabel.objects.filter(image=image))


def sync_servable_for_labels(label_ids: Iterable[int]) -> int:
    """After labels were (de)activated or made categories: theirs and their parts' pairs."""
    ids = list(label_ids)
    return _sync(ImageLabel.objects.filter(Q(label_id__in=ids) | Q(label__parent_id__in=ids)))


def refresh_servable(pair: ImageLabel) -> None:
    """Recompute one pair's flag after its status or frozen changed, and store it."""
    servable = is_servable(pair)
    if servable != pair.servable:
        pair.servable = servable
        ImageLabel.objects.filter(pk=pair.pk).update(servable=servable)


def attach(image: Image, label: Label, added_by: Voter | None = None) -> tuple[ImageLabel, bool]:
    """The pair of this image and label, created (servable when it should be) if new."""
    pair, created = ImageLabel.objects.get_or_create(
        image=image,
        label=label,
        defaults={"added_by": added_by if added_by and added_by.exists else None},
    )
    if created:
        pair.image, pair.label = image, label
        refresh_servable(pair)
    return pair, created


def attach_many(
    image: Image,
    labels: Iterable[Label],
    added_by: Voter | None = None,
    ask_parts: bool = False,
) -> None:
    """New pairs of one image (that has none of these labels yet), in one statement.

    With `ask_parts`, each top-level label's parts are asked about later, once the crowd
    has validated the label (attach_parts): nobody is asked about a dog's eye before
    anyone has said there is a dog.
    """
    donor = added_by if added_by and added_by.exists else None
    rows = [
        ImageLabel(
            image=image,
            label=label,
            added_by=donor,
            ask_parts=ask_parts and label.parent_id is None,
        )
        for label in labels
    ]
    for row in rows:
        row.servable = is_servable(row)
    ImageLabel.objects.bulk_create(rows)


def attach_parts(pair: ImageLabel) -> int:
    """Once a pair whose parts were asked about is validated: a pair for each taggable part
    of its label (those the image lacks), then no more asking. The number created."""
    if not pair.ask_parts or pair.status != ImageLabel.Status.VALIDATED:
        return 0
    parts = Label.objects.taggable().filter(parent_id=pair.label_id).select_related("parent")
    rows = [
        ImageLabel(image=pair.image, label=part, added_by_id=pair.added_by_id) for part in parts
    ]
    for row in rows:
        row.servable = is_servable(row)
    created = ImageLabel.objects.bulk_create(rows, ignore_conflicts=True)
    ImageLabel.objects.filter(pk=pair.pk).update(ask_parts=False)
    pair.ask_parts = False
    return len(created)


def add_label(image: Image, text: str, added_by: Voter | None = None) -> tuple[Label | None, bool]:
    """A label someone typed for a picture (the /label page, the API's labelme): the pair
    of the label it names, created with no votes if new, or a suggestion for curators when
    the taxonomy lacks it. (label, created); (None, False) for a suggestion."""
    label = Label.objects.resolve(text)
    if label is None:
        suggest(text, image)
        return None, False
    _, created = attach(image, label, added_by=added_by)
    return label, created


@transaction.atomic
def label_by_donor(image: Image, labels: Iterable[Label], suggestions: Iterable[str], donor) -> int:
    """A donor names what is in one picture of theirs (pending or public): new pairs for the
    labels, suggestions for unknown words. Returns how many pairs are new."""
    added = 0
    for label in labels:
        added += attach(image, label, added_by=donor)[1]
    for text in suggestions:
        suggest(text, image)
    return added


def suggest(text: str, image: Image | None = None) -> LabelSuggestion:
    """Count a request for a label the taxonomy lacks, remembering the image it was for."""
    suggestion = LabelSuggestion.objects.record(text)
    if image is not None:
        SuggestionUse.objects.get_or_create(suggestion=suggestion, image=image)
    return suggestion


@transaction.atomic
def accept_suggestion(suggestion: LabelSuggestion, *, by=None, **choices) -> Label:
    """Accept a suggestion (creating its label, as LabelSuggestion.accept takes `choices`)
    and give every waiting image its pair."""
    label = suggestion.accept(by=by, **choices)
    uses = SuggestionUse.objects.filter(suggestion=suggestion).select_related("image")
    for use in uses:
        attach(use.image, label)
    uses.delete()
    return label


@transaction.atomic
def reject_suggestion(suggestion: LabelSuggestion, *, by=None) -> None:
    suggestion.reject(by=by)
    SuggestionUse.objects.filter(suggestion=suggestion).delete()
