"""outline_export_vs_copy and outline_export_rss_ratio: the COCO export of accepted outlines.

The generator (`ensure_outlines`) gives a dataset as many accepted outlines' shapes as it
has pairs (1M on the 1M-pair dataset, 100k on the 100k one): one accepted Annotation with
one AnnotationRevision (number 1) per validated pair on a public picture, until the
shapes of the revisions — the COCO export's annotation entries, one per shape — number
`target`. A dataset has about one validated pair in six, so an outline has about six
shapes (rectangles, turned rectangles, ellipses, polygons of 5 to 14 points). A few
hundred distinct shape sets (per picture size) are cleaned by `annotations.shapes` and
measured by `annotations.geometry.measured`, as drawing them through the site would, and
cycled through; the rows go in with COPY (FREEZE) with the tables' indexes and
constraints dropped and rebuilt from their definitions, and the pairs' AnnotationTasks
are marked accepted and closed, as annotations.tasks keeps them. The count of shapes is
what says a dataset is filled; `bench.dataset.reset` empties the outline tables, so every
run of the benchmark fills them once per dataset.

The export is `/v1/export?format=coco&annotations_only=true&status=any` of the query
matching every public picture, in a child process (bench.exporting.run_child); its
baseline a COPY of the same annotation rows (`COPY_BASELINE`: the outlines of positive
pairs on public pictures in exports.renderers.coco_annotations' order, the shapes' text
unrendered) in the same kind of child. Rounds run the two side by side; the headline is the median of per-round ratios
of COPY's time to the export's (the same rows each). The export also writes the images
and categories sections, which the baseline does not: their cost is part of the ratio.
Memory: the exporting child's peak RSS on the large dataset ÷ on the medium one.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Iterator

from .common import Context, current_database_url, median, ratio, use_database
from .dataset import NULL, _copy, _phase, _text, _without_indexes

SEED = 16
SETS_PER_SIZE = 25  # distinct shape sets per picture size (12 sizes: 300 in all)
CREATED = "2025-06-01 12:00:00+00"

# Annotation rows the generator writes, and the tables their rows go to.
ANNOTATION_TABLES = ["annotations_annotation", "annotations_annotationrevision"]
# TRUNCATE needs every table that refers to annotations in the same statement.
EMPTIED_TABLES = ["annotations_agreement", "annotations_annotationvote", *ANNOTATION_TABLES]

# Validated pairs (as bench/outlining.py's TASKS_SQL counts them) on public pictures.
VALIDATED_PAIRS = """
SELECT p.id, img.width, img.height
FROM validation_imagelabel p JOIN donations_image img ON img.id = p.image_id
WHERE (p.status = 'validated' OR p.num_yes > p.num_no) AND img.status = 'public'
ORDER BY p.id
"""

# The annotation rows of the COCO export, in the order of exports.renderers.coco_annotations
# for annotations_only, status=any, no thresholds: the accepted outlines of positive pairs
# on every public picture (the query matching everything; the export takes its pictures
# from its images section instead).
COPY_BASELINE = """
COPY (
    SELECT a.id * 128 + s.n, img.id, p.label_id, s.shape
    FROM donations_image img
    JOIN validation_imagelabel p ON p.image_id = img.id
        AND p.probability >= 0 AND p.confidence >= 0
    JOIN annotations_annotation a ON a.pair_id = p.id AND a.status = 'accepted'
    JOIN annotations_annotationrevision r ON r.annotation_id = a.id AND r.number = a.revision
    CROSS JOIN LATERAL unnest(r.export_coco) WITH ORDINALITY AS s(shape, n)
    WHERE img.status = 'public'
    ORDER BY img.id, a.id, s.n
) TO STDOUT
"""

SHAPE_COUNT = """
SELECT count(*), COALESCE(sum(cardinality(r.export_coco)), 0)
FROM annotations_annotation a
JOIN annotations_annotationrevision r ON r.annotation_id = a.id AND r.number = a.revision
WHERE a.status = 'accepted'
"""


# --- Shapes --------------------------------------------------------------------------


def _shape(rng: random.Random, width: int, height: int) -> dict:
    """One shape as the editor sends it: inside the picture, of a plausible size."""
    kind = rng.choices(["rect", "turned", "ellipse", "polygon"], [0.45, 0.1, 0.15, 0.3])[0]
    w = rng.uniform(0.05, 0.4) * width
    h = rng.uniform(0.05, 0.4) * height
    left = rng.uniform(0, width - w)
    top = rng.uniform(0, height - h)
    if kind == "rect":
        return {"type": "rect", "left": left, "top": top, "width": w, "height": h, "angle": 0}
    if kind == "turned":
        # Turned about its corner by a little, so it stays (mostly) inside.
        return {
            "type": "rect",
            "left": left + w * 0.1,
            "top": top,
            "width": w * 0.8,
            "height": h * 0.8,
            "angle": rng.uniform(-8, 8),
        }
    if kind == "ellipse":
        return {"type": "ellipse", "left": left, "top": top, "rx": w / 2, "ry": h / 2, "angle": 0}
    # A star-shaped polygon: points around a centre at increasing angles never cross.
    count = rng.randint(5, 14)
    cx, cy = left + w / 2, top + h / 2
    steps = sorted(rng.uniform(0, 2 * math.pi) for _ in range(count))
    points = []
    for angle in steps:
        reach = rng.uniform(0.5, 1.0)
        points.append(
            {"x": cx + math.cos(angle) * w / 2 * reach, "y": cy + math.sin(angle) * h / 2 * reach}
        )
    return {"type": "polygon", "points": points, "angle": 0}


def shape_sets(width: int, height: int, mean: float, seed: int = SEED) -> list[dict]:
    """SETS_PER_SIZE shape sets for a picture of width × height, about `mean` shapes each:
    the clean shapes (JSON) and what annotations.geometry.measured stores with them."""
    from annotations.geometry import measured
    from annotations.shapes import MAX_SHAPES, ShapeError, clean_shapes

    rng = random.Random(f"{seed}:{width}x{height}")
    sets = []
    while len(sets) < SETS_PER_SIZE:
        # Sizes spread evenly around the mean (1 to 2 × mean − 1), so the cycle averages it.
        count = max(1, min(MAX_SHAPES, round(rng.uniform(1, 2 * mean - 1))))
        try:
            clean = clean_shapes([_shape(rng, width, height) for _ in range(count)], width, height)
        except ShapeError:
            continue  # a turned rectangle too far out: draw again, as a person would
        sets.append({"shapes": clean, **measured(clean, width, height)})
    return sets


# --- Rows ----------------------------------------------------------------------------


def _array(items: list[str]) -> str:
    """A text[] literal of `items`, for COPY's text format."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return _text("{" + ",".join(quoted) + "}")


def _rows(
    pairs: list[tuple[int, int, int]], target: int, mean: float
) -> tuple[list[tuple[int, dict]], int]:
    """(pair id, shape set) per outline until the shapes number `target`; the shape count."""
    cycles: dict[tuple[int, int], list] = {}
    cursor: dict[tuple[int, int], int] = {}
    chosen, shapes = [], 0
    for pair_id, width, height in pairs:
        if shapes >= target:
            break
        size = (width, height)
        if size not in cycles:
            cycles[size] = [_line_parts(item) for item in shape_sets(width, height, mean)]
            cursor[size] = 0
        item = cycles[size][cursor[size] % SETS_PER_SIZE]
        cursor[size] += 1
        chosen.append((pair_id, item))
        shapes += item["count"]
    return chosen, shapes


def _line_parts(item: dict) -> dict:
    """A shape set's revision columns, rendered once for COPY."""
    return {
        "count": len(item["export_coco"]),
        "columns": "\t".join(
            [
                _text(json.dumps(item["shapes"])),
                _array(item["export_original"]),
                _array(item["export_coco"]),
                repr(float(item["coverage"])),
            ]
        ),
    }


def _annotation_lines(chosen: list[tuple[int, dict]], seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    for number, (pair_id, _item) in enumerate(chosen, start=1):
        yes = rng.randint(3, 5)
        yield (
            f"{number}\t{uuid.UUID(int=rng.getrandbits(128), version=4)}\t{pair_id}\t{NULL}\t1\t"
            f"accepted\t{yes}\t0\t0.95\t0.9\taccepted\tf\t{NULL}\t\tt\t"
            f"{rng.getrandbits(31)}\t{CREATED}\t{CREATED}\n"
        )


def _revision_lines(chosen: list[tuple[int, dict]]) -> Iterator[str]:
    for number, (_pair_id, item) in enumerate(chosen, start=1):
        yield f"{number}\t{number}\t1\t{item['columns']}\t{NULL}\t{CREATED}\n"


def outline_counts() -> tuple[int, int]:
    """(accepted outlines, their shapes) in the current database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(SHAPE_COUNT)
        outlines, shapes = cursor.fetchone()
    return outlines, int(shapes)


def ensure_outlines(target: int, quiet: bool = False) -> dict:
    """Accepted outlines with `target` shapes in all in the current (bench) database."""
    from django.db import connection, transaction

    outlines, shapes = outline_counts()
    if shapes >= target:
        return {"outlines": outlines, "shapes": shapes, "seconds": 0.0, "reused": True}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(VALIDATED_PAIRS)
        pairs = cursor.fetchall()
    if not pairs:
        raise RuntimeError("the dataset has no validated pairs on public pictures to outline")
    # 10 % above the mean needed, so the cycle's spread cannot leave the target short.
    mean = max(1.0, 1.1 * target / len(pairs))
    chosen, shapes = _rows(pairs, target, mean)
    _phase("shape sets", started)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(f"TRUNCATE {', '.join(EMPTIED_TABLES)} RESTART IDENTITY")
        raw = cursor.cursor
        with _without_indexes(cursor, ANNOTATION_TABLES):
            _copy(
                raw,
                "annotations_annotation",
                "id, uuid, pair_id, author_id, revision, status, num_yes, num_no, probability, "
                "confidence, settled_as, is_gold, gold_answer, author_network, independent, "
                "random_key, created, updated",
                _annotation_lines(chosen, SEED),
            )
            _copy(
                raw,
                "annotations_annotationrevision",
                "id, annotation_id, number, shapes, export_original, export_coco, coverage, "
                "author_id, created",
                _revision_lines(chosen),
            )
        # The outlined pairs' tasks: accepted and closed (annotations.tasks' rule).
        cursor.execute(
            """INSERT INTO annotations_annotationtask
                   (pair_id, label_id, validated, accepted, not_annotatable, outlines, open,
                    random_key)
               SELECT p.id, p.label_id, true, true, 0, 1, false, p.random_key
               FROM annotations_annotation a JOIN validation_imagelabel p ON p.id = a.pair_id
               ON CONFLICT (pair_id) DO UPDATE
                   SET accepted = true, open = false, outlines = EXCLUDED.outlines"""
        )
    with connection.cursor() as cursor:
        for table in ANNOTATION_TABLES:
            cursor.execute(
                f"""SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                  COALESCE(max(id), 1), max(id) IS NOT NULL) FROM {table}"""
            )
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    seconds = time.perf_counter() - started
    if not quiet:
        print(
            f"    {len(chosen):,} accepted outlines with {shapes:,} shapes in {seconds:.1f} s",
            flush=True,
        )
    return {"outlines": len(chosen), "shapes": shapes, "seconds": seconds, "reused": False}


# --- The benchmark ---------------------------------------------------------------------


def _filled(ctx: Context, database: str, size: int) -> dict:
    use_database(database)
    if ctx.scale.name != "tiny":
        print(f"==> {database}: accepted outlines with {size:,} shapes", flush=True)
    return ensure_outlines(size, quiet=ctx.scale.name == "tiny")


def outline_export_vs_copy(ctx: Context) -> dict:
    from .exporting import everything_query, run_child

    scale = ctx.scale
    results: dict = {}
    made = {"large": _filled(ctx, ctx.large, scale.large)}
    if ctx.medium != ctx.large:
        made["medium"] = _filled(ctx, ctx.medium, scale.medium)
    ctx.details["outline_export"] = made
    use_database(ctx.large)
    query = everything_query()
    rows = made["large"]["shapes"]
    url = current_database_url()
    params = {"annotations_only": "true"}
    if scale.warmup > 1:
        run_child(url, "copy", query, baseline=COPY_BASELINE)  # warm the page cache
    runs: dict[str, list[dict]] = {"copy": [], "coco": []}
    for _ in range(scale.export_repeats):
        runs["copy"].append(run_child(url, "copy", query, baseline=COPY_BASELINE))
        runs["coco"].append(run_child(url, "coco", query, params=params))
    for run in runs["copy"]:
        if run["rows"] != rows:
            raise RuntimeError(f"the COPY wrote {run['rows']} rows, expected {rows}")
    for run in runs["coco"]:
        if run["annotations"] != rows:
            raise RuntimeError(f"the export wrote {run['annotations']} annotations, not {rows}")
    results["outline_export_rows"] = rows
    results["outline_export_outlines"] = made["large"]["outlines"]
    for kind in runs:
        results[f"outline_export_rows_per_s_{kind}"] = median(
            [rows / r["seconds"] for r in runs[kind]]
        )
    results["outline_export_vs_copy"] = median(
        [
            ratio(copy["seconds"], coco["seconds"])
            for copy, coco in zip(runs["copy"], runs["coco"], strict=True)
        ]
    )
    results["outline_export_mb"] = median([r["bytes"] for r in runs["coco"]]) / 1e6

    peak_large = max(r["peak_rss_kb"] for r in runs["coco"])
    peak_medium = peak_large
    if "medium" in made:
        use_database(ctx.medium)
        peak_medium = run_child(current_database_url(), "coco", query, params=params)["peak_rss_kb"]
    results["outline_export_peak_rss_mb_large"] = peak_large / 1024
    results["outline_export_peak_rss_mb_medium"] = peak_medium / 1024
    results["outline_export_rss_ratio"] = ratio(peak_large, peak_medium)
    use_database(ctx.large)
    return results
