"""Reads on PostgreSQL streaming replicas, writes on the primary.

`DATABASE_REPLICA_URLS` names the replicas (settings.py makes them the aliases
`replica1`, `replica2`, …). `ReplicaRouter` sends the ORM's reads to one of them only
while a request allows it (`people.middleware.ReplicaRoutingMiddleware` decides, with
`reads_may_use_replica`): a GET or HEAD from a visitor who has not written anything in the
last few seconds. Everything else reads and writes on the primary: other methods, a
request that has written (the router saw a write, or a transaction is open on the
primary), the few seconds after a visitor's own POST (read-your-writes), and all work
outside requests (commands, the shell, tests). Code that opens cursors itself (exports)
asks `read_alias()` for its connection.

A replica serves only while it is fresh: its WAL receiver is streaming and it has
replayed all it received, or the last transaction it replayed is at most
`REPLICA_MAX_LAG_S` old. On an idle primary the replay timestamp keeps ageing, which is
why "caught up" is asked first. The answer is kept per process for about a second; a
replica that cannot be reached is skipped for a few seconds, and the site reads on the
primary meanwhile.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils.crypto import salted_hmac

from .identity import client_ip

log = logging.getLogger(__name__)

FRESH_FOR_S = 1.5  # how long one check's answer is trusted
DOWN_FOR_S = 5.0  # how long an unreachable or lagging replica is skipped

# Whether this request may read on a replica (set by the middleware, cleared by a write):
# None if not, else how deep in transactions the primary's connection was when it began.
_may_use_replica: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "may_use_replica", default=None
)
# The replica this request reads on, once chosen: one request sees one replica.
_chosen: contextvars.ContextVar[str | None] = contextvars.ContextVar("replica", default=None)

LAG_QUERY = """
SELECT pg_is_in_recovery(),
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver),
       pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(),
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
"""


def replica_aliases() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", []))


@dataclass(frozen=True)
class Standing:
    """What one replica said about itself."""

    in_recovery: bool
    streaming: bool
    caught_up: bool
    replay_age_s: float | None

    def is_fresh(self, max_lag_s: float) -> bool:
        if not self.in_recovery:
            return False  # promoted, or not a standby at all: not ours to read from
        if self.streaming and self.caught_up:
            return True  # nothing received is left to replay
        return self.replay_age_s is not None and self.replay_age_s <= max_lag_s


class _Health:
    """Each replica's last answer, per process: {alias: (until, fresh)}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.known: dict[str, tuple[float, bool]] = {}

    def cached(self, alias: str) -> bool | None:
        with self.lock:
            until, fresh = self.known.get(alias, (0.0, False))
        return fresh if time.monotonic() < until else None

    def remember(self, alias: str, fresh: bool) -> None:
        with self.lock:
            self.known[alias] = (time.monotonic() + (FRESH_FOR_S if fresh else DOWN_FOR_S), fresh)

    def forget(self) -> None:
        with self.lock:
            self.known.clear()


health = _Health()


def check(alias: str) -> bool:
    """Ask the replica how far behind it is; False when it cannot be reached."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_QUERY)
            in_recovery, streaming, caught_up, age = cursor.fetchone()
    except DatabaseError as error:
        log.warning("replica %s is skipped: %s", alias, str(error).strip().splitlines()[0])
        connections[alias].close()
        return False
    standing = Standing(
        in_recovery, streaming, bool(caught_up), None if age is None else float(age)
    )
    fresh = standing.is_fresh(settings.REPLICA_MAX_LAG_S)
    if not fresh:
        log.warning("replica %s is skipped: %s", alias, standing)
    return fresh


def is_fresh(alias: str) -> bool:
    fresh = health.cached(alias)
    if fresh is None:
        fresh = check(alias)
        health.remember(alias, fresh)
    return fresh


def mark_down(alias: str) -> None:
    """A query on the replica failed: skip it for a while."""
    health.remember(alias, False)
    connections[alias].close()


def read_alias() -> str:
    """The database this request's reads go to."""
    depth = _may_use_replica.get()
    if depth is None or len(connections[DEFAULT_DB_ALIAS].atomic_blocks) > depth:
        return DEFAULT_DB_ALIAS  # not allowed, or a transaction is open on the primary
    if chosen := _chosen.get():
        return chosen
    aliases = replica_aliases()
    random.shuffle(aliases)
    for alias in aliases:
        if is_fresh(alias):
            _chosen.set(alias)
            return alias
    _may_use_replica.set(None)  # none is fresh: this whole request reads on the primary
    return DEFAULT_DB_ALIAS


def replica_in_use() -> str | None:
    return _chosen.get()


def pin_to_primary() -> None:
    """From now on, this request reads and writes on the primary."""
    _may_use_replica.set(None)
    _chosen.set(None)


@contextmanager
def replica_reads(allowed: bool):
    """Within the block, reads may go to a replica (when `allowed` and one is configured)."""
    depth = len(connections[DEFAULT_DB_ALIAS].atomic_blocks)
    may = _may_use_replica.set(depth if allowed and replica_aliases() else None)
    chosen = _chosen.set(None)
    try:
        yield
    finally:
        _chosen.reset(chosen)
        _may_use_replica.reset(may)


class ReplicaRouter:
    """Django's database router (settings.DATABASE_ROUTERS)."""

    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        pin_to_primary()  # a request that writes reads its own writes afterwards
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replicas hold the primary's rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


# --- Read-your-writes ----------------------------------------------------------------------
# After a visitor's own POST (or PUT, PATCH, DELETE), their reads stay on the primary for
# a few seconds, twice the lag a replica may have: a signed cookie says so for browsers,
# and a Redis key per client address for API clients, which keep no cookies (and for the
# token a POST /v1/voter has just minted). The anonymous page cache (people/pagecache.py)
# is skipped meanwhile too, so a visitor sees their vote at once.

WROTE_COOKIE_SALT = "people.replicas.wrote"


def read_your_writes_seconds() -> int:
    return max(5, 2 * int(settings.REPLICA_MAX_LAG_S))


def wrote_cookie_name() -> str:
    return "__Host-wrote" if settings.HTTPS else "wrote"


def _address_key(address: str) -> str:
    return "wrote:" + salted_hmac(WROTE_COOKIE_SALT, address).hexdigest()[:32]


def remember_write(request, response) -> None:
    seconds = read_your_writes_seconds()
    cache.set(_address_key(client_ip(request)), 1, seconds)
    response.set_signed_cookie(
        wrote_cookie_name(),
        "1",
        salt=WROTE_COOKIE_SALT,
        max_age=seconds,
        secure=settings.HTTPS,
        httponly=True,
        samesite="Lax",
    )


def wrote_recently(request) -> bool:
    """Whether this visitor wrote something in the last few seconds (memoized per request)."""
    known = getattr(request, "_wrote_recently", None)
    if known is None:
        seconds = read_your_writes_seconds()
        known = (
            request.get_signed_cookie(
                wrote_cookie_name(), default=None, salt=WROTE_COOKIE_SALT, max_age=seconds
            )
            is not None
            or cache.get(_address_key(client_ip(request))) is not None
        )
        request._wrote_recently = known
    return known
