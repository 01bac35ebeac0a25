"""Bounded cost: a query too costly to run is refused, a count too slow is stopped.

Exports, counts, previews and statistics are public, so none may become a
denial of service: the planner's estimate is checked before a query runs
(EXPORT_MAX_COST), and counts run under a short statement timeout
(EXPORT_COUNT_TIMEOUT_MS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from people.replicas import read_alias

from .query import compose

if TYPE_CHECKING:
    from .export import Export


class TooCostly(ValueError):
    """The planner expects this query to cost more than one request may spend."""


class TooSlow(RuntimeError):
    """A count or preview ran past its statement timeout and was cancelled."""


def estimated_cost(export: Export) -> float:
    """The planner's estimate (its own units, see EXPLAIN) for counting the export's images."""
    sql = compose(
        "EXPLAIN (FORMAT JSON) SELECT count(*) FROM donations_image img WHERE ", export.matching()
    )
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Total Cost"])


def check_cost(export: Export) -> None:
    """TooCostly, with the reason in words, for a query too expensive to run at all.

    The estimate grows with the number of images a query makes PostgreSQL test
    against each label. Negations inside `|` are the usual cause: every image is
    checked against every negated label.
    """
    cost, ceiling = estimated_cost(export), settings.EXPORT_MAX_COST
    if cost > ceiling:
        raise TooCostly(
            f"this query is too costly to run (PostgreSQL estimates {cost:,.0f}; at most "
            f"{ceiling:,.0f} is allowed): it makes every image be tested against every "
            "label. Name the labels you want with & and |, and keep ~ (not) for a few "
            "labels joined with &."
        )


@contextmanager
def bounded() -> Iterator[BaseDatabaseWrapper]:
    """Run the queries inside under EXPORT_COUNT_TIMEOUT_MS; TooSlow when it fires.

    Yields the connection to run them on: a replica when the request may read on one.
    """
    alias = read_alias()
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                [f"{int(settings.EXPORT_COUNT_TIMEOUT_MS)}ms"],
            )
            yield connections[alias]
    except OperationalError as error:
        if getattr(error.__cause__, "pgcode", None) != "57014":  # query_canceled
            raise
        raise TooSlow(
            f"counting this query took longer than {settings.EXPORT_COUNT_TIMEOUT_MS / 1000:g} s "
            "and was stopped; try a simpler query, or again in a minute"
        ) from None
