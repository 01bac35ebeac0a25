"""Picking the next task without scanning the table.

Every pair has a random key, and servable pairs (open, not frozen, on a public
image) sit in a partial index on it. A task is drawn by starting at a random
point of that index and reading a small window forward (wrapping around once),
skipping what the voter has answered or donated with an indexed NOT EXISTS per
row. Among the window, the pair with the fewest votes wins, and among those
the one closest to settling. The cost depends on the window, not on the table:
a million pairs answer as fast as ten thousand (bench/ measures it).

Voters in training get gold pairs among their tasks (the first task, then each
task with a chance of one half); newly trusted voters on each task with a
chance of one in three until they have answered GOLD_PROBATION gold pairs, and
then now and then (each task with a chance of 1 / GOLD_EVERY). Gold comes at
random moments, never at
fixed positions, so that nobody can answer gold with care and the rest
carelessly; and a voter meets about as many gold pairs whose answer is yes as
whose answer is no, so that always answering the same cannot pass training.
"""

from __future__ import annotations

import random

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from labels.models import Label

from .models import ImageLabel, Vote, Voter
from .voting import counts_for

WINDOW = 24


def _unseen(queryset: QuerySet, voter: Voter) -> QuerySet:
    answered = Vote.objects.filter(pair=OuterRef("pk"), voter=voter)
    return queryset.filter(~Exists(answered)).exclude(
        Q(image__donor_id=voter.pk) & Q(image__donor__isnull=False)
    )


def _window(queryset: QuerySet, size: int, exclude: set[int] = frozenset()) -> list[ImageLabel]:
    """Up to `size` rows starting at a random point of the random-key index, wrapping once."""
    start = random.randint(0, 2**31 - 1)
    queryset = queryset.select_related("image", "label__parent")
    if exclude:
        queryset = queryset.exclude(pk__in=exclude)
    rows = list(queryset.filter(random_key__gte=start).order_by("random_key")[:size])
    if len(rows) < size:
        rows += list(
            queryset.filter(random_key__lt=start).order_by("random_key")[: size - len(rows)]
        )
    return rows


def _priority(pair: ImageLabel) -> tuple:
    votes = pair.num_yes + pair.num_no
    # How sure the pair already is, either way (1.0 would be certain); 0 without weight.
    closeness = abs(2 * pair.confidence - 1) if pair.confidence else 0.0
    # Most pairs settle with 3 or 4 agreeing votes: up to 4, finish what is closest.
    return (votes // 4, -closeness, pair.random_key)


def open_pairs(voter: Voter, label: Label | None = None) -> QuerySet:
    pairs = ImageLabel.objects.filter(servable=True, label__active=True)
    if label is not None:
        pairs = pairs.filter(label=label)
    return _unseen(pairs, voter)


def gold_pairs(voter: Voter, label: Label | None = None) -> QuerySet:
    pairs = ImageLabel.objects.filter(is_gold=True, image__status="public", label__active=True)
    if label is not None:
        pairs = pairs.filter(label=label)
    return _unseen(pairs, voter)


def in_training(voter: Voter) -> bool:
    return not counts_for(voter) and not voter.banned


def wants_gold(voter: Voter) -> bool:
    if in_training(voter):
        return voter.tasks_served == 0 or random.random() < 0.5
    on_probation = voter.gold_correct + voter.gold_wrong < settings.GOLD_PROBATION
    if on_probation and not voter.is_moderator:
        return random.random() < 1 / 3
    return random.random() < 1 / settings.GOLD_EVERY


def gold_task(
    voter: Voter, label: Label | None = None, exclude: set[int] = frozenset()
) -> ImageLabel | None:
    """A gold pair the voter has not seen, preferring the answer they have met less often."""
    met = dict(
        Vote.objects.filter(voter=voter, pair__is_gold=True)
        .values_list("pair__gold_answer")
        .annotate(n=Count("pk"))
        .order_by()
    )
    yes, no = met.get(True, 0), met.get(False, 0)
    wanted = random.random() < 0.5 if yes == no else yes < no
    pairs = gold_pairs(voter, label)
    gold = _window(pairs.filter(gold_answer=wanted), 1, exclude) or _window(pairs, 1, exclude)
    return gold[0] if gold else None


def next_task(
    voter: Voter, label: Label | None = None, exclude: set[int] = frozenset()
) -> ImageLabel | None:
    """The next pair to show this voter, or None when nothing is left."""
    task = gold_task(voter, label, exclude) if wants_gold(voter) else None
    if task is None:
        candidates = _window(open_pairs(voter, label), WINDOW, exclude)
        task = min(candidates, key=_priority) if candidates else None
    if task is None and in_training(voter):
        task = gold_task(voter, label, exclude)
    if task is not None:
        Voter.objects.filter(pk=voter.pk).update(tasks_served=F("tasks_served") + 1)
        voter.tasks_served += 1
    return task


def still_open_for(voter: Voter, pair_id: int) -> ImageLabel | None:
    """The pair the page preloaded, if this voter may still answer it."""
    pairs = ImageLabel.objects.filter(pk=pair_id).filter(Q(servable=True) | Q(is_gold=True))
    return _unseen(pairs, voter).select_related("image", "label__parent").first()


def grid_tasks(voter: Voter, label: Label, size: int = 12) -> list[ImageLabel]:
    """Up to `size` pairs of one label for the grid, with gold mixed in for voters in training."""
    gold_share = (
        2 if in_training(voter) else (1 if random.random() < 1 / settings.GOLD_EVERY else 0)
    )
    gold = _window(gold_pairs(voter, label), gold_share) if gold_share else []
    rows = _window(open_pairs(voter, label), max(size * 2, WINDOW), exclude={p.pk for p in gold})
    rows.sort(key=_priority)
    chosen = gold + rows[: size - len(gold)]
    if len(chosen) < size:
        chosen += _window(
            gold_pairs(voter, label), size - len(chosen), exclude={p.pk for p in chosen}
        )
    random.shuffle(chosen)
    if chosen:
        Voter.objects.filter(pk=voter.pk).update(tasks_served=F("tasks_served") + len(chosen))
    return chosen


def image_needing_labels(voter: Voter):
    """A public picture with few labels, drawn from a random point of the uuid index."""
    import uuid as uuid_module

    from donations.models import Image

    start = uuid_module.uuid4()
    images = (
        Image.objects.public()
        .exclude(Q(donor_id=voter.pk) & Q(donor__isnull=False))
        .order_by("uuid")
    )
    window = list(images.filter(uuid__gte=start)[:WINDOW])
    if len(window) < WINDOW:
        window += list(images.filter(uuid__lt=start)[: WINDOW - len(window)])
    if not window:
        return None
    counts = dict(
        ImageLabel.objects.filter(image__in=window)
        .values("image")
        .annotate(n=Count("pk"))
        .values_list("image", "n")
    )
    return min(window, key=lambda image: (counts.get(image.pk, 0), random.random()))
