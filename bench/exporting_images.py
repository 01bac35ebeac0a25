"""image_export_vs_copy and image_export_rss_ratio: the exports that carry the pictures.

tar, parquet, hf and webdataset read every picture's file besides its rows, so
their baseline is the least any such export must do: PostgreSQL's
`COPY (each public image's uuid, format, publication key and label ids, in image
order) TO STDOUT`, read by psycopg2, and then each picture's file read whole from
the same storage — in a child process of its own, like each export
(`python -m bench.exporting_images`), which calls the /v1/export view with
status=any and layout=multi (every public image once) and drains the stream as a
WSGI server would.

The pictures: one real 640×480 JPEG, hard-linked as the master of every public
image of the small and the medium dataset, under a MEDIA_ROOT of the benchmark's
own (bench/data/media-<database>), made once per dataset. The same bytes for
every picture keep the files in the page cache for both sides alike.

Ratios: the baseline's time ÷ the export's, median over rounds (baseline and the
four formats back to back); peak RSS (VmHWM) of the export at the medium
dataset ÷ at the small one (rows: 10× more); first byte in ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import DATA, ROOT, Context, current_database_url, median, ratio, use_database
from .exporting import _peak_rss_kb, everything_query

FORMATS = ("tar", "parquet", "hf", "webdataset")
BASELINE = """
COPY (
    SELECT img.uuid, img.format, img.publication, array_agg(p.label_id ORDER BY p.label_id)
    FROM donations_image img LEFT JOIN validation_imagelabel p ON p.image_id = img.id
    WHERE img.status = 'public'
    GROUP BY img.id ORDER BY img.id
) TO STDOUT
"""


def media_root(database: str) -> Path:
    return DATA / f"media-{database}"


def _photo() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (640, 480))
    image.putdata(
        [((x * 7) % 256, (y * 5) % 256, (x + y) % 256) for y in range(480) for x in range(640)]
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def ensure_pictures(database: str) -> int:
    """A master file for every public image of the current database (made once)."""
    from django.db import connection

    from donations.storage import file_name

    root = media_root(database) / "public"
    done = root / ".complete"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT uuid, format, publication FROM donations_image WHERE status = 'public'"
        )
        rows = cursor.fetchall()
    # The marker names the dataset it was made for: a regenerated one gets new files.
    stamp = f"{len(rows)} {min((str(row[0]) for row in rows), default='')}"
    if done.exists() and done.read_text() == stamp:
        return len(rows)
    root.mkdir(parents=True, exist_ok=True)
    original = root / "original.jpg"
    original.write_bytes(_photo())
    for uuid, image_format, publication in rows:
        extension = "png" if image_format == "png" else "jpg"
        path = root / file_name(uuid, "master", extension, publication)
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            os.link(original, path)
    done.write_text(stamp)
    return len(rows)


class _Reader:
    """COPY's rows: each names a picture whose file is read whole, as an export reads it."""

    def __init__(self, root: Path, started: float):
        from donations.storage import file_name

        self.file_name = file_name
        self.root = root
        self.started = started
        self.first = None
        self.bytes = 0
        self.rest = b""

    def write(self, data) -> None:
        from uuid import UUID

        if self.first is None:
            self.first = time.perf_counter() - self.started
        lines = (self.rest + bytes(data)).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            uuid, image_format, publication, _ = line.decode().split("\t")
            publication = "" if publication == "\\N" else publication
            extension = "png" if image_format == "png" else "jpg"
            name = self.file_name(UUID(uuid), "master", extension, publication)
            with open(self.root / name, "rb") as handle:
                self.bytes += len(handle.read())


def _child(kind: str, query: str) -> dict:
    from django.conf import settings

    root = Path(settings.MEDIA_ROOT) / "public"
    if kind == "copy":
        from django.db import connection

        connection.ensure_connection()
        started = time.perf_counter()
        reader = _Reader(root, started)
        with connection.connection.cursor() as cursor:
            cursor.copy_expert(BASELINE, reader, size=256 * 1024)
        seconds = time.perf_counter() - started
        return {
            "bytes": reader.bytes,
            "seconds": seconds,
            "first_byte_ms": (reader.first or seconds) * 1000,
            "peak_rss_kb": _peak_rss_kb(),
        }

    from django.test import RequestFactory

    from exports.views import export

    request = RequestFactory().get(
        "/v1/export",
        {"query": query, "format": kind, "status": "any", "layout": "multi"},
        HTTP_HOST="127.0.0.1",
    )
    started = time.perf_counter()
    response = export(request)
    if response.status_code != 200:
        raise SystemExit(f"export answered {response.status_code}: {response.content[:200]!r}")
    size, first_byte = 0, None
    for chunk in response.streaming_content:
        if chunk and first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
    seconds = time.perf_counter() - started
    return {
        "bytes": size,
        "seconds": seconds,
        "first_byte_ms": (first_byte or seconds) * 1000,
        "peak_rss_kb": _peak_rss_kb(),
    }


def run_child(database_url: str, database: str, kind: str, query: str) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root(database)),
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLE": "0",
    }
    env.setdefault("DJANGO_SETTINGS_MODULE", "imagemonkey.settings")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.exporting_images", "--kind", kind, "--query", query],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"image export child ({kind}) failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def image_export_vs_copy(ctx: Context) -> dict:
    results: dict = {}
    peaks: dict[str, dict[str, int]] = {}
    for size, database in (("small", ctx.small), ("medium", ctx.medium)):
        use_database(database)
        results[f"image_export_pictures_{size}"] = ensure_pictures(database)
        url, query = current_database_url(), everything_query()
        runs: dict[str, list[dict]] = {kind: [] for kind in ("copy", *FORMATS)}
        repeats = ctx.scale.export_repeats if size == "medium" else 1
        for _ in range(repeats):
            for kind in runs:
                runs[kind].append(run_child(url, database, kind, query))
        peaks[size] = {kind: max(r["peak_rss_kb"] for r in runs[kind]) for kind in FORMATS}
        if size != "medium":
            continue
        for kind in FORMATS:
            per_round = [
                ratio(copy["seconds"], run["seconds"])
                for copy, run in zip(runs["copy"], runs[kind], strict=True)
            ]
            results[f"image_export_vs_copy_{kind}"] = median(per_round)
            results[f"image_export_first_byte_ms_{kind}"] = median(
                [r["first_byte_ms"] for r in runs[kind]]
            )
            results[f"image_export_mb_{kind}"] = runs[kind][0]["bytes"] / 1e6
        results["image_export_copy_seconds"] = median([r["seconds"] for r in runs["copy"]])
        results["image_export_mb_copy"] = runs["copy"][0]["bytes"] / 1e6
    results["image_export_vs_copy"] = min(results[f"image_export_vs_copy_{k}"] for k in FORMATS)
    for kind in FORMATS:
        results[f"image_export_peak_rss_mb_{kind}_medium"] = peaks["medium"][kind] / 1024
        results[f"image_export_peak_rss_mb_{kind}_small"] = peaks["small"][kind] / 1024
        results[f"image_export_rss_ratio_{kind}"] = ratio(
            peaks["medium"][kind], peaks["small"][kind]
        )
    results["image_export_rss_ratio"] = max(
        results[f"image_export_rss_ratio_{kind}"] for kind in FORMATS
    )
    use_database(ctx.large)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One image export, for bench (a child).")
    parser.add_argument("--kind", choices=["copy", *FORMATS], required=True)
    parser.add_argument("--query", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagemonkey.settings")
    import django

    django.setup()
    print(json.dumps(_child(args.kind, args.query)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
