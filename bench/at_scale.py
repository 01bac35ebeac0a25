"""The figures at 10 million pairs (issue 19): only `make bench` (scale full) has that dataset.

- `select_flatness_10m`: `next_task(bench voter)` at 10M ÷ at 10k, in rounds that visit
  both in turn (as `select_flatness` does for 10k…1M), with the pages selection reads in
  the operating system's cache for both (`_warm`); `select_ms_10m_cold` before that.
- `select_vs_original_10m`: the original's `ORDER BY random() LIMIT 1` over unvoted pairs
  at 10M ÷ ours at 10M; it reads every qualifying row, so it grows with the table.
- `browse_queries_10m`: SQL queries for the /browse pages at 10M, and whether they are the
  same as at 1M (`browse_queries_same_10m`, 1 when every page runs the same count).
- `export_rss_ratio_10m`: peak RSS of the CSV and JSON exports of every public pair at
  10M ÷ at 1M (the worse of the two), and `export_vs_copy_10m`, rows/s against COPY's at
  10M: the median of per-round ratios, as at 1M. The export's cost guard
  (EXPORT_MAX_COST) refuses so large a live export, so the child runs without it: a
  release or an operator's dump is what exports that much.
- Table and index sizes at 10M, for SCALING.md.
"""

from __future__ import annotations

import os

from .browse_pages import query_counts
from .common import Context, current_database_url, median, ratio, timed, use_database
from .exporting import _public_pairs, everything_query, run_child
from .selecting import ORIGINAL_UNVOTED, _ours, _raw

TABLES = (
    "validation_imagelabel",
    "validation_vote",
    "donations_image",
    "validation_voter",
)


def _sizes() -> dict:
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                "SELECT pg_table_size(%s), pg_indexes_size(%s), "
                "(SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass)",
                [table, table, table],
            )
            data, indexes, rows = cursor.fetchone()
            sizes[table] = {"rows": rows, "table_mb": data / 2**20, "indexes_mb": indexes / 2**20}
        cursor.execute("SELECT pg_database_size(current_database())")
        sizes["database_mb"] = cursor.fetchone()[0] / 2**20
    return sizes


# Every page task selection reads, for _warm: the pairs' and pictures' heaps (sequential
# scans), and the indexes it descends (full index scans, sequential ones forbidden).
WARMING = (
    ("on", "SELECT count(*) FROM validation_imagelabel"),
    ("on", "SELECT count(*) FROM donations_image"),
    ("off", "SELECT count(*) FROM validation_imagelabel WHERE servable AND random_key >= 0"),
    ("off", "SELECT count(*) FROM validation_imagelabel WHERE is_gold AND random_key >= 0"),
    ("off", "SELECT count(*) FROM donations_image WHERE id >= 0"),
    ("off", "SELECT count(*) FROM validation_vote WHERE pair_id >= 0"),
)


def _warm(database: str) -> float:
    """Read every page task selection may touch once, so that the operating system caches
    them; the seconds it took. The 10k dataset lives in memory after a few tasks, the 10M
    one (7.7 GB) does not: timed cold, a window's ~75 page reads from disk dominate, and the
    figure would compare the disk with memory rather than the work per task."""
    import time

    from django.db import connection, transaction

    use_database(database)
    started = time.perf_counter()
    for seqscan, sql in WARMING:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL enable_seqscan = {seqscan}")
            cursor.execute(f"SET LOCAL enable_bitmapscan = {seqscan}")
            cursor.execute(sql)
    return time.perf_counter() - started


def scale_figures(ctx: Context) -> dict:
    huge = ctx.huge
    if not huge:
        return {}
    scale = ctx.scale
    results: dict = {}

    # Selection: 10M against 10k, side by side; first as the disk has them (reported, not
    # the target), then with the pages selection reads in the operating system's cache.
    for database in (ctx.small, huge):
        _ours(database, 0, scale.warmup)
    cold = _ours(huge, scale.select_calls, 1)
    results["select_ms_10m_cold"] = median(cold) * 1000
    results["select_warm_seconds_10m"] = _warm(huge) + _warm(ctx.small)
    ratios, samples = [], []
    for _ in range(scale.select_rounds):
        small = median(_ours(ctx.small, scale.select_calls, 1))
        times = _ours(huge, scale.select_calls, 1)
        samples += times
        ratios.append(ratio(median(times), small))
    results["select_ms_10m"] = median(samples) * 1000
    results["select_flatness_10m"] = median(ratios)

    # The original's selection at 10M, against ours in the same rounds.
    use_database(huge)
    original = _raw(ORIGINAL_UNVOTED)
    original()  # warm the cache
    per_round, original_times = [], []
    for _ in range(max(1, scale.original_repeats // 2)):
        seconds = timed(original, 1)[0]
        original_times.append(seconds)
        per_round.append(ratio(seconds, median(_ours(huge, scale.select_calls, 1))))
    results["select_ms_original_10m"] = median(original_times) * 1000
    results["select_vs_original_10m"] = median(per_round)

    # Browse: the same queries at 10M as at 1M.
    at_large, at_huge = query_counts(ctx.large), query_counts(huge)
    results["browse_queries_10m"] = at_huge["first@48"]
    results["browse_queries_same_10m"] = int(at_large == at_huge)
    ctx.details["browse_query_counts_10m"] = at_huge

    # Export: memory at 10M against 1M, and speed against COPY at 10M.
    saved = os.environ.get("EXPORT_MAX_COST")
    os.environ["EXPORT_MAX_COST"] = str(10**15)
    try:
        use_database(huge)
        query, rows = everything_query(), _public_pairs()
        huge_url = current_database_url()
        # Rounds of COPY, CSV and JSON back to back, as export_vs_copy does at 1M: on a
        # shared machine one round moves by ±0.1.
        rounds = [
            {kind: run_child(huge_url, kind, query) for kind in ("copy", "csv", "json")}
            for _ in range(scale.export_repeats)
        ]
        runs = rounds[-1]
        use_database(ctx.large)
        large_url = current_database_url()
        at_1m = {kind: run_child(large_url, kind, query) for kind in ("csv", "json")}
    finally:
        if saved is None:
            os.environ.pop("EXPORT_MAX_COST", None)
        else:
            os.environ["EXPORT_MAX_COST"] = saved
    if runs["csv"]["rows"] != rows:
        raise RuntimeError(f"the CSV export wrote {runs['csv']['rows']} rows, expected {rows}")
    results["export_rows_10m"] = rows
    for kind in ("csv", "json"):
        results[f"export_rss_ratio_{kind}_10m"] = ratio(
            runs[kind]["peak_rss_kb"], at_1m[kind]["peak_rss_kb"]
        )
        results[f"export_peak_rss_mb_{kind}_10m"] = runs[kind]["peak_rss_kb"] / 1024
        results[f"export_vs_copy_{kind}_10m"] = median(
            [ratio(r["copy"]["seconds"], r[kind]["seconds"]) for r in rounds]
        )
        results[f"export_seconds_{kind}_10m"] = median([r[kind]["seconds"] for r in rounds])
    results["export_seconds_copy_10m"] = median([r["copy"]["seconds"] for r in rounds])
    results["export_bytes_csv_10m"] = runs["csv"]["bytes"]
    results["export_bytes_json_10m"] = runs["json"]["bytes"]
    results["export_rss_ratio_10m"] = max(
        results["export_rss_ratio_csv_10m"], results["export_rss_ratio_json_10m"]
    )
    results["export_vs_copy_10m"] = min(
        results["export_vs_copy_csv_10m"], results["export_vs_copy_json_10m"]
    )

    use_database(huge)
    ctx.details["sizes_10m"] = _sizes()
    use_database(ctx.large)
    ctx.details["sizes_1m"] = _sizes()
    return results
