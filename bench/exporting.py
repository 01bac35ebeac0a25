"""export_vs_copy, export_rss_ratio and export_first_byte_ms: the streaming export.

Each export runs in a child process of its own (``python -m bench.exporting``),
which starts Django, then times the /v1/export view (exports.views)
called with a RequestFactory request and drains its StreamingHttpResponse as
a WSGI server would, and finally reports its own peak memory (VmHWM). The
query is `<top label> | ~<top label>`: every public image, so every pair on a
public image is a row.

The baseline is PostgreSQL's own `COPY (the same rows) TO STDOUT (FORMAT csv)`
read by psycopg2 into a sink, in the same kind of child: the same columns in
the same order (image uuid, image URL, size, label, part, votes, probability,
confidence) ordered by image and label, as the CSV export writes them. Rows
per second of each export ÷ rows per second of the COPY; the JSON export has
the same pairs in it (grouped per image), so its rows are the same pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import ROOT, Context, current_database_url, median, ratio, use_database

COPY_BASELINE = """
COPY (
    SELECT img.uuid, 'http://127.0.0.1/v1/donation/' || img.uuid, img.width, img.height,
           COALESCE(parent.name, l.name),
           CASE WHEN parent.id IS NULL THEN '' ELSE l.name END,
           p.num_yes, p.num_no, p.probability, p.confidence
    FROM donations_image img
    JOIN validation_imagelabel p ON p.image_id = img.id
    JOIN labels_label l ON l.id = p.label_id
    LEFT JOIN labels_label parent ON parent.id = l.parent_id
    WHERE img.status = 'public'
    ORDER BY img.id, p.label_id
) TO STDOUT (FORMAT csv)
"""


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _Sink:
    """Where COPY's output goes: counted and dropped."""

    def __init__(self, started: float):
        self.bytes = 0
        self.lines = 0
        self.started = started
        self.first = None

    def write(self, data) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.bytes += len(data)
        self.lines += 1


# The chunk exports.renderers.render_coco yields before the annotation entries, one a line.
COCO_ANNOTATIONS = b'], "annotations": [\n'


def _child(
    kind: str, query: str, baseline: str = COPY_BASELINE, params: dict | None = None
) -> dict:
    """Run one export (or the COPY `baseline`) in this process; what the parent reads."""
    if kind == "copy":
        from django.db import connection

        connection.ensure_connection()
        started = time.perf_counter()
        sink = _Sink(started)
        with connection.connection.cursor() as cursor:
            cursor.copy_expert(baseline, sink, size=256 * 1024)
        seconds = time.perf_counter() - started
        return {
            "rows": sink.lines,
            "bytes": sink.bytes,
            "seconds": seconds,
            "first_byte_ms": (sink.first or seconds) * 1000,
            "first_row_ms": (sink.first or seconds) * 1000,
            "peak_rss_kb": _peak_rss_kb(),
        }

    from django.test import RequestFactory

    from exports.views import export

    request = RequestFactory().get(
        # status=any: every pair, like the COPY baseline (the default exports settled ones).
        "/v1/export",
        {"query": query, "format": kind, "status": "any", **(params or {})},
        HTTP_HOST="127.0.0.1",
    )
    started = time.perf_counter()
    response = export(request)
    if response.status_code != 200:
        raise SystemExit(f"export answered {response.status_code}: {response.content[:200]!r}")
    size = newlines = chunks = 0
    annotations = None  # COCO: newlines after the annotations section opens
    first_byte = first_row = None
    prefix = {"csv": 1, "json": 1}.get(kind, 0)  # the CSV header line, the JSON "["
    for chunk in response.streaming_content:
        if not chunk:
            continue
        now = time.perf_counter() - started
        first_byte = now if first_byte is None else first_byte
        chunks += 1
        if chunks > prefix and first_row is None:
            first_row = now
        size += len(chunk)
        newlines += chunk.count(b"\n")
        if annotations is not None:
            annotations += chunk.count(b"\n")
        elif kind == "coco" and chunk == COCO_ANNOTATIONS:
            annotations = 0
    seconds = time.perf_counter() - started
    return {
        "rows": newlines - 1 if kind == "csv" else None,
        # The closing `]}` line follows the last entry.
        "annotations": annotations - 1 if annotations is not None else None,
        "bytes": size,
        "seconds": seconds,
        "first_byte_ms": (first_byte or seconds) * 1000,
        "first_row_ms": (first_row or seconds) * 1000,
        "peak_rss_kb": _peak_rss_kb(),
    }


def run_child(
    database_url: str,
    kind: str,
    query: str,
    baseline: str | None = None,
    params: dict | None = None,
) -> dict:
    """One export in a fresh process, with the memory and times it reports: `kind` is a
    format of /v1/export with `params` added to its request, or "copy" for `baseline`
    (COPY_BASELINE unless given)."""
    # The export's own rate limit is not what is measured here.
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLE": "0",
    }
    env.setdefault("DJANGO_SETTINGS_MODULE", "imagemonkey.settings")
    command = [sys.executable, "-m", "bench.exporting", "--kind", kind, "--query", query]
    if baseline is not None:
        command += ["--baseline", baseline]
    for name, value in (params or {}).items():
        command += ["--param", f"{name}={value}"]
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"export child ({kind}) failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def everything_query() -> str:
    """`person | ~person`: every public image, in the query language (the top label)."""
    from donations.models import ImageLabel
    from labels.models import Label

    label = (
        ImageLabel.objects.filter(label__parent__isnull=True)
        .values_list("label__name", flat=True)
        .order_by("label_id")
        .first()
    )
    name = "person" if Label.objects.filter(name="person").exists() else label
    return f"{name} | ~{name}"


def _public_pairs() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM validation_imagelabel p JOIN donations_image img "
            "ON img.id = p.image_id WHERE img.status = 'public'"
        )
        return cursor.fetchone()[0]


def export_vs_copy(ctx: Context) -> dict:
    scale = ctx.scale
    results: dict = {}
    use_database(ctx.large)
    query = everything_query()
    rows = _public_pairs()
    large_url = current_database_url()
    if scale.warmup > 1:
        run_child(large_url, "copy", query)  # warm the page cache
    runs: dict[str, list[dict]] = {"copy": [], "csv": [], "json": []}
    for _ in range(scale.export_repeats):
        for kind in runs:
            runs[kind].append(run_child(large_url, kind, query))
    for run in runs["csv"]:
        if run["rows"] != rows:
            raise RuntimeError(f"the CSV export wrote {run['rows']} rows, expected {rows}")
    speed = {kind: median([rows / r["seconds"] for r in values]) for kind, values in runs.items()}
    results["export_rows"] = rows
    for kind in ("copy", "csv", "json"):
        results[f"export_rows_per_s_{kind}"] = speed[kind]
    # Per round (COPY, CSV, JSON back to back), rows/s ÷ rows/s: the same rows, so the
    # ratio of the COPY's time to the export's; the headline is the median over rounds.
    for kind in ("csv", "json"):
        per_round = [
            ratio(copy["seconds"], export["seconds"])
            for copy, export in zip(runs["copy"], runs[kind], strict=True)
        ]
        results[f"export_vs_copy_{kind}"] = median(per_round)
    results["export_vs_copy"] = min(results["export_vs_copy_csv"], results["export_vs_copy_json"])
    results["export_first_byte_ms"] = median([r["first_row_ms"] for r in runs["csv"]])
    results["export_first_byte_ms_json"] = median([r["first_row_ms"] for r in runs["json"]])
    results["export_first_byte_ms_copy"] = median([r["first_row_ms"] for r in runs["copy"]])

    # Memory: the same exports on the medium dataset, one run each.
    peak_large = {kind: max(r["peak_rss_kb"] for r in runs[kind]) for kind in ("csv", "json")}
    peak_medium = peak_large
    if ctx.medium != ctx.large:
        use_database(ctx.medium)
        medium_url = current_database_url()
        peak_medium = {
            kind: run_child(medium_url, kind, query)["peak_rss_kb"] for kind in peak_large
        }
    for kind in peak_large:
        results[f"export_peak_rss_mb_{kind}_large"] = peak_large[kind] / 1024
        results[f"export_peak_rss_mb_{kind}_medium"] = peak_medium[kind] / 1024
        results[f"export_rss_ratio_{kind}"] = ratio(peak_large[kind], peak_medium[kind])
    results["export_rss_ratio"] = max(
        results["export_rss_ratio_csv"], results["export_rss_ratio_json"]
    )
    use_database(ctx.large)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One export, for bench.exporting (a child).")
    parser.add_argument("--kind", choices=["copy", "csv", "json", "coco"], required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--baseline", default=COPY_BASELINE, help="the COPY statement to time")
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE for the view")
    args = parser.parse_args(argv)
    params = dict(item.split("=", 1) for item in args.param)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagemonkey.settings")
    import django

    django.setup()
    print(json.dumps(_child(args.kind, args.query, args.baseline, params)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
