"""Task selection: ours at three sizes (select_flatness), and the original's queries (select_vs_original).

Ours is `validation.selection.next_task(voter)` for the bench voter, trusted,
with about 200 votes at every size: the whole call as a view makes it
(gold now and then, the random-key window, the NOT EXISTS skip of answered
pairs and own donations, loading the winner with its image and label). The sizes are measured
in rounds that visit every size in turn (each dataset keeps its connection),
so that a burst of load on the shared machine falls on all of them alike; a
headline is the median of the per-round ratios.

The original ImageMonkey picked a validation task with one of two queries
(reference section 5), run here as raw SQL on the same tables:
`ORDER BY random() LIMIT 1` over pairs nobody voted on yet, and
`OFFSET floor(random() * count) LIMIT 1` over all pairs of public images.
Both read every qualifying row; ours reads a window of 24 index entries.
"""

from __future__ import annotations

from .common import Context, median, ratio, timed, use_database
from .dataset import bench_voter

ORIGINAL_UNVOTED = """
SELECT p.id, img.uuid, l.name
FROM validation_imagelabel p
JOIN donations_image img ON img.id = p.image_id
JOIN labels_label l ON l.id = p.label_id
WHERE img.status = 'public' AND p.num_yes = 0 AND p.num_no = 0
ORDER BY random() LIMIT 1
"""

ORIGINAL_OFFSET = """
SELECT p.id, img.uuid, l.name
FROM validation_imagelabel p
JOIN donations_image img ON img.id = p.image_id
JOIN labels_label l ON l.id = p.label_id
WHERE img.status = 'public'
OFFSET floor(random() * (
    SELECT count(*) FROM validation_imagelabel p
    JOIN donations_image img ON img.id = p.image_id
    WHERE img.status = 'public'
)) LIMIT 1
"""


_VOTERS: dict[str, object] = {}


def _ours(database: str, calls: int, warmup: int) -> list[float]:
    """Seconds per `next_task(bench voter)` call on `database`, after `warmup` calls."""
    from validation.selection import next_task

    use_database(database)
    if database not in _VOTERS:
        _VOTERS[database] = bench_voter()
    voter = _VOTERS[database]
    for _ in range(warmup):
        next_task(voter)
    return timed(lambda: next_task(voter), calls)


def _raw(sql: str):
    from django.db import connection

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    return run


def select_flatness(ctx: Context) -> dict:
    """Rounds that visit every size in turn; the headline is the median of per-round ratios."""
    scale = ctx.scale
    sizes = sorted({scale.small, scale.medium, scale.large})
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    ratios: list[float] = []
    for size in sizes:
        _ours(ctx.databases[size], 0, scale.warmup)
    for _ in range(scale.select_rounds):
        medians = {}
        for size in sizes:
            times = _ours(ctx.databases[size], scale.select_calls, 1)
            samples[size] += times
            medians[size] = median(times)
        ratios.append(ratio(medians[scale.large], medians[scale.small]))
    results = {f"select_ms_{size}": median(samples[size]) * 1000 for size in sizes}
    results["select_flatness"] = median(ratios)
    return results


def select_vs_original(ctx: Context) -> dict:
    """Each round: both original queries once and a batch of ours; median of per-round ratios."""
    scale = ctx.scale
    use_database(ctx.large)
    queries = {"order_by_random": ORIGINAL_UNVOTED, "offset": ORIGINAL_OFFSET}
    for run in map(_raw, queries.values()):
        run()  # warm the cache
    _ours(ctx.large, 0, scale.warmup)
    original: dict[str, list[float]] = {name: [] for name in queries}
    ratios: dict[str, list[float]] = {name: [] for name in queries}
    ours: list[float] = []
    for _ in range(scale.original_repeats):
        times = {name: timed(_raw(sql), 1)[0] for name, sql in queries.items()}
        batch = _ours(ctx.large, scale.select_calls, 1)
        ours += batch
        for name, seconds in times.items():
            original[name].append(seconds)
            ratios[name].append(ratio(seconds, median(batch)))
    results = {"select_ms_ours_large": median(ours) * 1000}
    for name in queries:
        results[f"select_ms_original_{name}"] = median(original[name]) * 1000
        results[f"select_vs_original_{name}"] = median(ratios[name])
    results["select_vs_original"] = min(results[f"select_vs_original_{name}"] for name in queries)
    return results
