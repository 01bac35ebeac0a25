"""Picking the next task without scanning the table.

Every pair has a random key, and servable pairs (open, not frozen, on a public
image) sit in a partial index on it. A task is drawn by starting at a random
point of that index and reading a small window forward (wrapping around once),
skipping what the voter has answered or donated with an indexed NOT EXISTS per
row. Only the window's priority columns are read; among them, the pair with the
fewest votes (in steps of four) wins, and among those the one closest to
settling, and only the winner is loaded with its image and label. The cost
depends on the window, not on the table: a million pairs answer as fast as ten
thousand (bench/ measures it). Serving a task writes nothing.

Voters in training get gold pairs among their tasks (each task with a chance
of one half, the first one too); newly trusted
voters on each task with a chance of one in three until they have answered
GOLD_PROBATION gold pairs, and then now and then (each task with a chance of
1 / GOLD_EVERY). Gold comes at random moments, never at fixed positions, so
that nobody can answer gold with care and the rest carelessly; and a voter
meets about as many gold pairs whose answer is yes as whose answer is no, so
that always answering the same cannot pass training.

Trusted voters are also asked, one task in REVOTE_EVERY, a pair of the blind
re-vote sample (validation.models.RevoteSample): a settled pair drawn at random
when it settled, served like any task; its votes do not count (it is settled),
and their agreement with its outcome is measured in exports.quality.
"""

from __future__ import annotations

import functools
import random

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from donations.models import Image, ImageLabel
from labels.models import Label
from people.models import Voter

from . import rules
from .models import Vote
from .voting import counts_for

WINDOW = 24


def _unseen(queryset: QuerySet, voter: Voter) -> QuerySet:
    if not voter.exists:
        return queryset  # a visitor who has not written anything has seen nothing
    answered = Vote.objects.filter(pair=OuterRef("pk"), voter=voter)
    return queryset.filter(~Exists(answered)).exclude(
        Q(image__donor_id=voter.pk) & Q(image__donor__isnull=False)
    )


# One window of the random-key index: the pairs of a pool (open pairs, or gold
# pairs) from a random point on, that this voter has neither answered nor
# donated. Written as SQL because it runs on every task served, and building
# it with the ORM cost more than PostgreSQL takes to run it.
# `servable` (donations.pairs) already says open, not frozen, on a public picture,
# with a taggable label; gold pairs are settled, so for them the picture and the
# label are checked here, the label by labels' own rule (LabelQuerySet.taggable).
_POOLS = {
    "open": "p.servable",
    "gold": "p.is_gold AND NOT p.frozen AND img.status = %(public)s AND p.label_id IN ({taggable})",
}
_WINDOW_SQL = """
SELECT p.id, p.num_yes, p.num_no, p.confidence, p.random_key
FROM validation_imagelabel p
JOIN donations_image img ON img.id = p.image_id
WHERE {pool} AND p.random_key {side} %(start)s
  AND NOT EXISTS (
      SELECT 1 FROM validation_vote v WHERE v.pair_id = p.id AND v.voter_id = %(voter)s
  )
  AND (img.donor_id IS NULL OR img.donor_id <> %(voter)s){more}
ORDER BY p.random_key
LIMIT %(size)s
"""


def _window_rows(
    voter: Voter,
    pool: str,
    size: int,
    label: Label | None = None,
    exclude: set[int] = frozenset(),
    gold_answer: bool | None = None,
) -> list[tuple]:
    """(id, num_yes, num_no, confidence, random_key) of up to `size` pairs, wrapping once."""
    params = {
        "voter": voter.pk or 0,  # a visitor with no voter row has answered and donated nothing
        "start": random.randint(0, 2**31 - 1),
        "size": size,
    }
    where = _POOLS[pool]
    if pool == "gold":
        taggable, taggable_params = _taggable_sql()
        where = where.format(taggable=taggable)
        params["public"] = Image.Status.PUBLIC
        params.update(taggable_params)
    more = ""
    if label is not None:
        more += " AND p.label_id = %(label)s"
        params["label"] = label.pk
    if exclude:
        more += " AND p.id <> ALL(%(exclude)s)"
        params["exclude"] = sorted(exclude)
    if gold_answer is not None:
        more += " AND p.gold_answer = %(answer)s"
        params["answer"] = gold_answer
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW_SQL.format(pool=where, side=">=", more=more), params)
        rows = cursor.fetchall()
        if len(rows) < size:
            params["size"] = size - len(rows)
            cursor.execute(_WINDOW_SQL.format(pool=where, side="<", more=more), params)
            rows += cursor.fetchall()
    return rows


@functools.cache
def _taggable_sql() -> tuple[str, dict]:
    """Label.objects.taggable()'s ids as SQL with named parameters, compiled once."""
    query = Label.objects.taggable().order_by().values("pk").query
    sql, values = query.sql_with_params()
    names = {f"taggable_{n}": value for n, value in enumerate(values)}
    return sql % tuple(f"%({name})s" for name in names), names


def _priority(row: tuple) -> tuple:
    """Sort key of a window row: the pair most worth a vote comes first."""
    _, num_yes, num_no, confidence, random_key = row
    votes = num_yes + num_no
    # How sure the pair already is, either way (1.0 would be certain); 0 without weight.
    closeness = abs(2 * confidence - 1) if confidence else 0.0
    # Most pairs settle with 3 or 4 agreeing votes: up to 4, finish what is closest.
    return (votes // 4, -closeness, random_key)


# Rows loaded beyond those wanted, in case a pair is deleted between the window and the load.
SPARE = 2


def _load(rows: list[tuple], take: int) -> list[ImageLabel]:
    """The first `take` pairs of these window rows still there, with image and label."""
    ids = [row[0] for row in rows[: take + SPARE]]
    pairs = ImageLabel.objects.select_related("image", "label__parent").in_bulk(ids)
    return [pairs[pk] for pk in ids if pk in pairs][:take]


def best_open_pairs(
    voter: Voter,
    take: int = 1,
    label: Label | None = None,
    exclude: set[int] = frozenset(),
    window: int = WINDOW,
) -> list[ImageLabel]:
    """The `take` open pairs most worth this voter's vote among a window, best first."""
    if take <= 0:
        return []
    rows = sorted(_window_rows(voter, "open", window, label, exclude), key=_priority)
    return _load(rows, take)


def gold_window(
    voter: Voter,
    size: int,
    label: Label | None = None,
    exclude: set[int] = frozenset(),
    gold_answer: bool | None = None,
) -> list[ImageLabel]:
    """Up to `size` gold pairs this voter has not answered, from a random point."""
    if size <= 0:
        return []
    return _load(_window_rows(voter, "gold", size + SPARE, label, exclude, gold_answer), size)


OPEN_COUNTS_KEY = "selection:open-by-label"
OPEN_COUNTS_SECONDS = 60  # counting every servable pair costs ~250 ms at a million


def labels_with_open_tasks(limit: int | None = None) -> list[Label]:
    """Top-level taggable labels that have servable pairs, the most first, each with `open`.

    The counts are a scan of every servable pair, so they are kept for a minute in the
    cache: the grid's picker and the "nothing left" page read them on every visit.
    """
    counts = cache.get(OPEN_COUNTS_KEY)
    if counts is None:
        counts = list(
            ImageLabel.objects.filter(servable=True, label__parent__isnull=True)
            .values("label_id")
            .annotate(open=Count("pk"))
            .order_by()
            .values_list("label_id", "open")
        )
        cache.set(OPEN_COUNTS_KEY, counts, OPEN_COUNTS_SECONDS)
    labels = Label.objects.taggable().top_level().in_bulk([label_id for label_id, _ in counts])
    chosen = []
    for label_id, open_pairs in counts:
        if label_id in labels:
            labels[label_id].open = open_pairs
            chosen.append(labels[label_id])
    chosen.sort(key=lambda label: (-label.open, label.name))
    return chosen[:limit] if limit else chosen


def in_training(voter: Voter) -> bool:
    return not counts_for(voter) and not voter.banned


def wants_gold(voter: Voter) -> bool:
    if in_training(voter):
        # Half of a trainee's tasks, at random from the very first: nothing about a
        # task's position says whether it is gold.
        return random.random() < 0.5
    on_probation = voter.gold_correct + voter.gold_wrong < settings.GOLD_PROBATION
    if on_probation and not voter.is_moderator:
        return random.random() < 1 / 3
    return random.random() < 1 / settings.GOLD_EVERY


def gold_task(
    voter: Voter, label: Label | None = None, exclude: set[int] = frozenset()
) -> ImageLabel | None:
    """A gold pair the voter has not seen, preferring the answer they have met less often."""
    met = (
        dict(
            Vote.objects.filter(voter=voter, pair__is_gold=True)
            .values_list("pair__gold_answer")
            .annotate(n=Count("pk"))
            .order_by()
        )
        if voter.exists
        else {}
    )
    yes, no = met.get(True, 0), met.get(False, 0)
    wanted = random.random() < 0.5 if yes == no else yes < no
    gold = gold_window(voter, 1, label, exclude, gold_answer=wanted) or gold_window(
        voter, 1, label, exclude
    )
    return gold[0] if gold else None


# A window of the re-vote sample from a random point, for revote_task: settled pairs,
# so the picture, the label and the freeze are checked here as for gold.
_REVOTE_SQL = """
SELECT p.id FROM validation_revotesample s
JOIN validation_imagelabel p ON p.id = s.pair_id
JOIN donations_image img ON img.id = p.image_id
WHERE s.random_key {side} %(start)s AND NOT p.frozen AND NOT p.is_gold
  AND img.status = %(public)s AND p.label_id IN ({taggable})
  AND NOT EXISTS (
      SELECT 1 FROM validation_vote v WHERE v.pair_id = p.id AND v.voter_id = %(voter)s
  )
  AND (img.donor_id IS NULL OR img.donor_id <> %(voter)s){more}
ORDER BY s.random_key
LIMIT 1
"""


def revote_task(
    voter: Voter, label: Label | None = None, exclude: set[int] = frozenset()
) -> ImageLabel | None:
    """A pair of the blind re-vote sample this voter has not answered, from a random point."""
    taggable, params = _taggable_sql()
    params = {
        **params,
        "voter": voter.pk or 0,
        "start": random.randint(0, 2**31 - 1),
        "public": Image.Status.PUBLIC,
    }
    more = ""
    if label is not None:
        more += " AND p.label_id = %(label)s"
        params["label"] = label.pk
    if exclude:
        more += " AND p.id <> ALL(%(exclude)s)"
        params["exclude"] = sorted(exclude)
    with connection.cursor() as cursor:
        for side in (">=", "<"):  # from the random point on, then wrapping around once
            cursor.execute(_REVOTE_SQL.format(side=side, taggable=taggable, more=more), params)
            row = cursor.fetchone()
            if row is not None:
                found = _load([(row[0],)], 1)
                return found[0] if found else None
    return None


def next_task(
    voter: Voter, label: Label | None = None, exclude: set[int] = frozenset()
) -> ImageLabel | None:
    """The next pair to show this voter, or None when nothing is left.

    A trusted voter's task is now and then (rules.wants_revote) a pair of the blind
    re-vote sample: settled, like a gold pair, and served through the same ticket.
    """
    task = gold_task(voter, label, exclude) if wants_gold(voter) else None
    if task is None and counts_for(voter) and rules.wants_revote(random.random()):
        task = revote_task(voter, label, exclude)
    if task is None:
        best = best_open_pairs(voter, 1, label, exclude)
        task = best[0] if best else None
    if task is None and in_training(voter):
        task = gold_task(voter, label, exclude)
    return task


def still_open_for(voter: Voter, pair_id: int) -> ImageLabel | None:
    """The pair the page preloaded (it was served with a ticket), if it may still be shown.

    One test for every pair, gold or not, settled or open: its picture is public, it is
    not frozen and its label is taggable. Whether the pair settled since it was served
    must not decide it, or the answer would tell gold pairs (which stay in the pool)
    from ordinary ones; a vote on a pair settled meanwhile is held out like any other.
    """
    pairs = ImageLabel.objects.filter(
        pk=pair_id,
        frozen=False,
        image__status=Image.Status.PUBLIC,
        label__in=Label.objects.taggable(),
    )
    return _unseen(pairs, voter).select_related("image", "label__parent").first()


def grid_tasks(voter: Voter, label: Label, size: int = 12) -> list[ImageLabel]:
    """Up to `size` pairs of one label for the grid, with gold mixed in for voters in training."""
    gold_share = min(
        size, 2 if in_training(voter) else (1 if random.random() < 1 / settings.GOLD_EVERY else 0)
    )
    gold = gold_window(voter, gold_share, label) if gold_share else []
    chosen = gold + best_open_pairs(
        voter, size - len(gold), label, {p.pk for p in gold}, window=max(size * 2, WINDOW)
    )
    if len(chosen) < size:
        chosen += gold_window(voter, size - len(chosen), label, {p.pk for p in chosen})
    random.shuffle(chosen)
    return chosen


def image_needing_labels(voter: Voter):
    """A public picture with few labels, drawn from a random point of the uuid index."""
    import uuid as uuid_module

    start = uuid_module.uuid4()
    images = Image.objects.public().order_by("uuid")
    if voter.exists:
        images = images.exclude(donor_id=voter.pk)
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


def undone_for(voter: Voter, pair_id: int) -> ImageLabel | None:
    """The pair whose answer this voter has just undone, to ask it once more.

    The same test for gold and ordinary pairs, settled or open, as still_open_for.
    """
    found = undone_among(voter, [pair_id])
    return found[0] if found else None


def undone_among(voter: Voter, pair_ids, label: Label | None = None) -> list[ImageLabel]:
    """Those of these pairs whose answers this voter has undone (a grid asks them again)."""
    if not voter.exists:
        return []
    undone = Vote.objects.filter(pair=OuterRef("pk"), voter=voter, undone=True)
    pairs = ImageLabel.objects.filter(
        Exists(undone),
        pk__in=list(pair_ids),
        frozen=False,
        image__status=Image.Status.PUBLIC,
        label__in=Label.objects.taggable(),
    )
    if label is not None:
        pairs = pairs.filter(label=label)
    return list(pairs.select_related("image", "label__parent").order_by("pk"))


EXAMPLES = 3


def examples_of(label: Label, exclude_image: int | None = None) -> dict[str, list[Image]]:
    """Pictures the crowd settled on this label, as examples: `yes` validated, `no` rejected.

    Never gold pairs: an example shows its answer, and a gold pair's must stay unknown.
    """
    examples = {}
    for key, status in (("yes", ImageLabel.Status.VALIDATED), ("no", ImageLabel.Status.REJECTED)):
        pairs = (
            ImageLabel.objects.public()
            .filter(label=label, status=status, is_gold=False)
            .exclude(image_id=exclude_image)
            .select_related("image")
            .order_by("-updated")[:EXAMPLES]
        )
        examples[key] = [pair.image for pair in pairs]
    return examples
