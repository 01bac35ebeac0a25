"""Picking what to outline, and which outline to check, without scanning a table.

The technique is validation.selection's: every row has a random key, and the rows that
may be served sit in a partial index on it. A task is drawn by starting at a random
point of that index and reading a small window forward (wrapping around once),
skipping with an indexed NOT EXISTS per row what this voter has done already; among
the window the row most worth doing wins, and only it is loaded. The cost depends on
the window, not on the table (bench/ measures it). Serving writes nothing.

- To outline: open AnnotationTasks (a validated pair with no accepted outline, not
  given up as not annotatable: annotations.tasks keeps `open`), on a public picture,
  of a label people outline, that this voter has neither outlined nor called not
  annotatable. Pairs with the fewest outlines so far come first.
- To check: outlines whose latest revision is open (or gold ones, for training, as
  often as validation.selection serves gold pairs), on a public picture whose pair is
  not frozen, of a label people outline, that this voter neither drew nor donated nor
  has answered in this revision. The outline with the fewest votes (in steps of four)
  wins, then the one closest to settling.
"""

from __future__ import annotations

import functools
import random

from django.db import connection

from donations.models import Image, ImageLabel
from labels.models import Label
from people.models import Voter
from validation import selection as pair_selection

from .models import Annotation

WINDOW = 24
SPARE = 2

_TASK_WINDOW = """
SELECT t.pair_id, t.outlines, t.random_key
FROM annotations_annotationtask t
JOIN validation_imagelabel p ON p.id = t.pair_id
JOIN donations_image img ON img.id = p.image_id
WHERE t.open AND t.random_key {side} %(start)s
  AND img.status = %(public)s AND NOT p.frozen AND t.label_id IN ({annotatable})
  AND NOT EXISTS (
      SELECT 1 FROM annotations_annotation a WHERE a.pair_id = t.pair_id AND a.author_id = %(voter)s
  )
  AND NOT EXISTS (
      SELECT 1 FROM annotations_notannotatable n
      WHERE n.pair_id = t.pair_id AND n.voter_id = %(voter)s
  ){more}
ORDER BY t.random_key
LIMIT %(size)s
"""

_POOLS = {
    "open": "a.status = 'open' AND NOT a.is_gold",
    "gold": "a.is_gold",
    # Settled ordinary outlines, served as often as gold: a gold outline the crowd has
    # settled is in the export, and without these beside it, a served outline found in
    # the export would be gold. Votes on them count for nothing (only open outlines count).
    "settled": "a.status <> 'open' AND NOT a.is_gold",
}
_CHECK_WINDOW = """
SELECT a.id, a.num_yes, a.num_no, a.confidence, a.random_key
FROM annotations_annotation a
JOIN validation_imagelabel p ON p.id = a.pair_id
JOIN donations_image img ON img.id = p.image_id
WHERE {pool} AND a.random_key {side} %(start)s
  AND img.status = %(public)s AND NOT p.frozen AND p.label_id IN ({annotatable})
  AND p.status = %(validated)s
  AND (a.author_id IS NULL OR a.author_id <> %(voter)s)
  AND (img.donor_id IS NULL OR img.donor_id <> %(voter)s)
  AND NOT EXISTS (
      SELECT 1 FROM annotations_annotationvote v
      WHERE v.annotation_id = a.id AND v.revision = a.revision AND v.voter_id = %(voter)s
  ){more}
ORDER BY a.random_key
LIMIT %(size)s
"""


@functools.cache
def _annotatable_sql() -> tuple[str, dict]:
    """Label.objects.annotatable()'s ids as SQL with named parameters, compiled once."""
    query = Label.objects.annotatable().order_by().values("pk").query
    sql, values = query.sql_with_params()
    names = {f"annotatable_{n}": value for n, value in enumerate(values)}
    return sql % tuple(f"%({name})s" for name in names), names


def _window(template: str, voter: Voter, size: int, more: str, params: dict, **fmt) -> list:
    annotatable, annotatable_params = _annotatable_sql()
    params = {
        **params,
        **annotatable_params,
        "voter": voter.pk or 0,  # a visitor with no voter row has done nothing yet
        "start": random.randint(0, 2**31 - 1),
        "size": size,
        "public": Image.Status.PUBLIC,
        "validated": ImageLabel.Status.VALIDATED,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            template.format(side=">=", annotatable=annotatable, more=more, **fmt), params
        )
        rows = cursor.fetchall()
        if len(rows) < size:
            params["size"] = size - len(rows)
            cursor.execute(
                template.format(side="<", annotatable=annotatable, more=more, **fmt), params
            )
            rows += cursor.fetchall()
    return rows


def _label_filter(column: str, label: Label | None) -> tuple[str, dict]:
    if label is None:
        return "", {}
    return f" AND {column} = %(label)s", {"label": label.pk}


def pair_to_outline(
    voter: Voter, label: Label | None = None, window: int = WINDOW, exclude=frozenset()
) -> ImageLabel | None:
    """The validated pair this voter should outline next, or None when none is left
    (`exclude`: ids of pairs not to serve, such as the one just skipped)."""
    more, params = _label_filter("t.label_id", label)
    if exclude:
        more += " AND t.pair_id <> ALL(%(exclude)s)"
        params["exclude"] = sorted(exclude)
    rows = sorted(_window(_TASK_WINDOW, voter, window, more, params), key=lambda r: (r[1], r[2]))
    ids = [row[0] for row in rows[: 1 + SPARE]]
    pairs = ImageLabel.objects.select_related("image", "label__parent").in_bulk(ids)
    found = [pairs[pk] for pk in ids if pk in pairs]
    return found[0] if found else None


def pair_for_outlining(voter: Voter, pair_id: int | None = None, *, uuid=None) -> ImageLabel | None:
    """The pair named by its number (the editor's) or its uuid (the API's `validation_id`),
    when it may be outlined (validated, not frozen, of a public picture, of a label people
    outline), or None."""
    named = {"pk": pair_id} if uuid is None else {"uuid": uuid}
    pair = (
        ImageLabel.objects.select_related("image", "label__parent")
        .filter(
            **named,
            status=ImageLabel.Status.VALIDATED,
            frozen=False,
            image__status=Image.Status.PUBLIC,
            label__in=Label.objects.annotatable(),
        )
        .first()
    )
    return pair


def _priority(row: tuple) -> tuple:
    _, num_yes, num_no, confidence, random_key = row
    closeness = abs(2 * confidence - 1) if confidence else 0.0
    return ((num_yes + num_no) // 4, -closeness, random_key)


def _outlines(voter: Voter, pool: str, size: int, label: Label | None) -> list[tuple]:
    more, params = _label_filter("p.label_id", label)
    return _window(_CHECK_WINDOW, voter, size, more, params, pool=_POOLS[pool])


def _load(ids: list[int]) -> Annotation | None:
    found = Annotation.objects.select_related("pair__image", "pair__label__parent").in_bulk(ids)
    loaded = [found[pk] for pk in ids if pk in found]
    return loaded[0] if loaded else None


def outline_to_check(voter: Voter, label: Label | None = None) -> Annotation | None:
    """The outline this voter should check next (gold now and then, as for pairs, and as
    often a settled ordinary outline beside it), or None."""
    known = random.sample(["gold", "settled"], 2)  # either first, at even odds (see _POOLS)

    def settled_one() -> Annotation | None:
        for pool in known:
            if task := _load([row[0] for row in _outlines(voter, pool, 1 + SPARE, label)]):
                return task
        return None

    task = settled_one() if pair_selection.wants_gold(voter) else None
    if task is None:
        rows = sorted(_outlines(voter, "open", WINDOW, label), key=_priority)
        task = _load([row[0] for row in rows[: 1 + SPARE]])
    if task is None and pair_selection.in_training(voter):
        task = settled_one()
    return task


def outlines_to_check(voter: Voter, size: int, label: Label | None = None) -> list[Annotation]:
    """Up to `size` outlines to check at once (the grid), open ones with gold among them for
    voters in training (and as many settled ordinary ones), in random order."""
    gold_share = min(size, 2) if pair_selection.in_training(voter) else 0
    rows = []
    if gold_share:  # as many settled ordinary outlines beside the gold (see _POOLS)
        rows = [
            row[0]
            for pool in ("gold", "settled")
            for row in _outlines(voter, pool, gold_share, label)
        ]
    opened = sorted(_outlines(voter, "open", max(size * 2, WINDOW), label), key=_priority)
    ids = list(dict.fromkeys([*rows, *(row[0] for row in opened)]))[:size]
    found = Annotation.objects.select_related("pair__image", "pair__label__parent").in_bulk(ids)
    chosen = [found[pk] for pk in ids if pk in found]
    random.shuffle(chosen)
    return chosen
