"""Choosing a pair to outline at three sizes (outline_select_flatness).

`annotations.selection.pair_to_outline(voter)` for the bench voter, as GET /v1/annotate
calls it: the random-key window over open AnnotationTasks, the NOT EXISTS skips of the
voter's own outlines and "not annotatable" answers, loading the winner. Every dataset's
validated pairs are made tasks first (what the crowd's recounts and the annotations
migration do; see TASKS_SQL), in one statement; the sizes are then measured in rounds that visit each
in turn, as select_flatness does, and the headline is the median of the per-round ratios
of the large dataset's time to the small one's.
"""

from __future__ import annotations

from .common import Context, median, ratio, timed, use_database
from .dataset import bench_voter

# Every validated pair waits for an outline, as annotations.tasks keeps them. The
# generator's pairs settle only when their counted votes are diverse enough, which its
# tally does not say, so the pairs it meant to be validated (more counted yes than no)
# stand in for them.
TASKS_SQL = """
INSERT INTO annotations_annotationtask
    (pair_id, label_id, validated, accepted, not_annotatable, outlines, open, random_key)
SELECT id, label_id, true, false, 0, 0, true, random_key
FROM validation_imagelabel WHERE status = 'validated' OR num_yes > num_no
ON CONFLICT (pair_id) DO NOTHING
"""

_VOTERS: dict[str, object] = {}


def _tasks_ready(database: str) -> int:
    """Make the database's validated pairs tasks (once per run); how many are open."""
    from django.db import connection

    use_database(database)
    with connection.cursor() as cursor:
        cursor.execute(TASKS_SQL)
        cursor.execute("ANALYZE annotations_annotationtask")
        cursor.execute("SELECT count(*) FROM annotations_annotationtask WHERE open")
        return cursor.fetchone()[0]


def _ours(database: str, calls: int, warmup: int) -> list[float]:
    from annotations.selection import pair_to_outline

    use_database(database)
    if database not in _VOTERS:
        _VOTERS[database] = bench_voter()
    voter = _VOTERS[database]
    for _ in range(warmup):
        pair_to_outline(voter)
    return timed(lambda: pair_to_outline(voter), calls)


def outline_select_flatness(ctx: Context) -> dict:
    scale = ctx.scale
    sizes = sorted({scale.small, scale.medium, scale.large})
    results: dict = {}
    for size in sizes:
        results[f"outline_tasks_{size}"] = _tasks_ready(ctx.databases[size])
        _ours(ctx.databases[size], 0, scale.warmup)
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    ratios: list[float] = []
    for _ in range(scale.select_rounds):
        medians = {}
        for size in sizes:
            times = _ours(ctx.databases[size], scale.select_calls, 1)
            samples[size] += times
            medians[size] = median(times)
        ratios.append(ratio(medians[scale.large], medians[scale.small]))
    use_database(ctx.databases[scale.large])
    results.update({f"outline_select_ms_{size}": median(samples[size]) * 1000 for size in sizes})
    results["outline_select_flatness"] = median(ratios)
    return results
