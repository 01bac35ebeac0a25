"""Dataset export: what an export holds (`Export`), the snapshot it reads, and its counts.

The formats are rendered by exports.renderers (JSON, JSON Lines, CSV, COCO) and
exports.bundles (the image tar), listed in exports.formats; exports.bounds keeps
a request from costing more than it may. Four promises shape them all:

- **One snapshot.** An export opens a connection of its own and a READ ONLY,
  REPEATABLE READ transaction on it, so every query of the export (a tar or a
  COCO file runs several) sees the database as it was at the first one; votes
  that arrive meanwhile are not in it. The connection closes when the stream
  ends, fails or is abandoned by the client (the generators' ``finally``).
- **Flat memory.** Rows never gather in a Python list: PostgreSQL renders each
  JSON object or CSV line itself and ``COPY … TO STDOUT`` streams the text
  through a small bounded queue (or a server-side cursor for the tar), so a
  million rows use as much memory as a hundred.
- **Nothing personal.** Exports select an explicit list of columns: the
  image's uuid, size and format, the label names and the vote counts. Voters,
  donors, addresses and original file names never appear.
- **Bounded cost.** Before anything runs, PostgreSQL's planner estimates the
  query; one estimated above EXPORT_MAX_COST is refused with the reason
  (``check_cost``). Counts and previews run under a short statement timeout
  (EXPORT_COUNT_TIMEOUT_MS), streams under a long one (EXPORT_STREAM_TIMEOUT_S).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connections
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from donations.imaging import DISPLAY_SIDE, THUMB_SIDE
from donations.models import Image, ImageLabel
from labels.models import Label, accessor_of
from people.replicas import read_alias

# TooSlow and estimated_cost are part of this module's public face: callers that
# count (the tests among them) reach them here, beside the counts that use them.
from . import quality
from .bounds import TooSlow as TooSlow
from .bounds import bounded
from .bounds import estimated_cost as estimated_cost
from .query import LabelQuery, Sql, compose, thresholds

COPY_CHUNK_BYTES = 256 * 1024
COPY_QUEUE_CHUNKS = 8  # at most ~2 MB in flight between PostgreSQL and the client
CURSOR_BATCH_ROWS = 2000
# The memory an export's query may give its sorts and hashes, shared out among the
# lookups its condition writes (PostgreSQL's work_mem each; a hash may take twice that):
# an export is one stream, and exports are few (EXPORT_RATE). 64 MB lets a label on
# 1.3M pictures be hashed once rather than probed for every picture.
EXPORT_MEMORY_MB = 256
EXPORT_WORK_MEM_MB = (4, 64)  # at least PostgreSQL's default, at most this
# A client that stops reading must not hold a snapshot (and vacuum) forever.
IDLE_TIMEOUT = "10min"


class ExportError(RuntimeError):
    """The stream cannot go on; the client sees a truncated download."""


class PairFilter:
    """Which pairs an export takes as positives (`status`): settled ones by default."""

    VALIDATED = "validated"
    REJECTED = "rejected"
    OPEN = "open"
    ANY = "any"
    CHOICES = (VALIDATED, REJECTED, OPEN, ANY)


class Layout:
    """How a tar holds the images: one folder per class, or each image once."""

    SINGLE = "single"
    MULTI = "multi"
    CHOICES = (SINGLE, MULTI)


SPLITS = ("train", "val", "test")
DEFAULT_SEED = 0
# How far a near-duplicate's similar_to chain is followed to its root.
MAX_SIMILAR_DEPTH = 64

# The uuid at the root of the similar_to chain of the image aliased `img` (itself, mostly);
# the one parameter is how deep the chain is followed.
SIMILAR_ROOT = """CASE WHEN img.similar_to_id IS NULL THEN img.uuid ELSE (
    WITH RECURSIVE chain(uuid, next, depth) AS (
        SELECT img.uuid, img.similar_to_id, 0
        UNION ALL
        SELECT up.uuid, up.similar_to_id, chain.depth + 1
        FROM chain JOIN donations_image up ON up.id = chain.next
        WHERE chain.depth < %s
    ) SELECT uuid FROM chain ORDER BY depth DESC LIMIT 1) END"""

# The `size` of a tar's images: which stored rendition (donations.storage.RENDITIONS).
SIZES = {"256": "thumb", "1024": "display", "master": "master"}


@dataclass(frozen=True)
class Export:
    """What to export: the query, the pairs that count, and where images live.

    A pair is a *positive* when its status is `status` (every status for "any")
    and it is past both thresholds. With `negatives`, a rejected pair is a
    *verified negative* when the crowd is as sure of its "no" as the thresholds
    ask of a "yes" (its no share is at least min_probability, its confidence at
    most 1 − min_confidence). The query's terms match pairs of either kind.
    """

    query: LabelQuery
    min_probability: float = 0.0
    min_confidence: float = 0.0
    status: str = PairFilter.VALIDATED
    negatives: bool = False
    annotations_only: bool = False
    layout: str = Layout.SINGLE  # the tar's
    size: str = "master"  # the tar's images: a key of SIZES
    # Train/val/test percentages (80, 10, 10), or None for no split; see split_of().
    split: tuple[int, int, int] | None = None
    seed: int = DEFAULT_SEED
    # Absolute URL that an image's uuid completes, e.g. https://host/v1/donation/
    image_url_prefix: str = "/v1/donation/"
    # A release's id: the rows are then its frozen ones (exports_releaseentry),
    # minus the pictures revoked since; `query` and the thresholds are the release's.
    release_id: int | None = None
    # Where the download's snapshot is taken: chosen when the export is made, in the
    # request (a replica when the request may read on one), since the rows are streamed
    # after the view has returned.
    database: str = field(default_factory=read_alias, compare=False)
    release_slug: str = ""

    @property
    def pairs(self) -> str:
        """The table rows read their pairs from: the live pairs, or the release's."""
        return "validation_imagelabel" if self.release_id is None else "exports_releaseentry"

    @property
    def reads_every_pair(self) -> bool:
        """Whether the export holds most pictures, so that rendering every passing pair
        in one ordered pass costs less than finding the matching pictures' pairs
        (exports.renderers.image_objects): a release's download, and a query that matches
        the pictures without any of the labels it names (`~cat`, `x | ~x`), which each
        label leaves the most of."""
        if self.release_id is not None:
            return True
        return not self.annotations_only and self.query.matches_unlabelled

    @property
    def work_mem_mb(self) -> int:
        """PostgreSQL's work_mem for this export's snapshot: EXPORT_MEMORY_MB shared out
        among the subqueries its condition writes, each of which may become a hash."""
        lowest, highest = EXPORT_WORK_MEM_MB
        lookups = max(1, self.matching().subqueries)
        return max(lowest, min(highest, EXPORT_MEMORY_MB // lookups))

    def matching(self, outlined: bool = False) -> Sql:
        """A condition over `img` for the public images this export contains.

        `outlined`: the caller's rows are themselves accepted outlines of positive pairs
        of `img`, so annotations_only holds for every image they come from and is not
        checked again (an EXISTS per image that would drive the plan).
        """
        if self.release_id is not None:
            condition = Sql(RELEASED_IMAGES, [Image.Status.PUBLIC, self.release_id])
        else:
            condition = self.query.condition(passing=self.passing())
        if self.annotations_only and not outlined:
            return compose(condition, " AND ", self.has_outline())
        return condition

    def has_outline(self) -> Sql:
        """Whether the picture `img` has an accepted outline of a positive pair (for a
        release, one it froze): an EXISTS on pairs aliased `ap`."""
        return compose(
            "EXISTS (SELECT 1 FROM ",
            self.pairs,
            " ap ",
            self.outline_join("ap", geometry=False),
            " WHERE ap.image_id = img.id AND ",
            self.positive("ap"),
            ")",
        )

    def outline_join(self, pair: str = "p", geometry: bool = True) -> str:
        """SQL text joining the accepted outlines of the pair aliased `pair` (a row of
        `pairs`): one row per outline, `r`, with its annotation_id, export_original,
        export_coco and coverage. Live, the revision the crowd accepted; a release's, the
        revision it froze when it was cut (exports_releaseoutline), whatever happened since.

        Without `geometry` a live join stops at the accepted outline (enough to know one
        exists) and binds `a` instead of `r`; a release's binds `r` either way.
        """
        if self.release_id is not None:
            return f"JOIN exports_releaseoutline r ON r.entry_id = {pair}.id"
        accepted = (
            f"JOIN annotations_annotation a ON a.pair_id = {pair}.id AND a.status = 'accepted'"
        )
        if not geometry:
            return accepted
        return f"{accepted} JOIN annotations_annotationrevision r ON r.annotation_id = a.id AND r.number = a.revision"

    def split_of(self) -> Sql:
        """SQL for the split ("train", "val" or "test") of the image aliased `img`.

        The bucket (0–99) is the first 32 bits of md5("<seed>:<uuid>") modulo 100,
        so an image keeps its split in every export with the same seed and
        percentages. The uuid is that of the root of the image's similar_to chain:
        near-duplicates (similar_to is set at ingestion from the perceptual hash)
        share their original's split, and no copy of a test image is trained on.
        """
        train, val, _ = self.split or (100, 0, 0)
        # width_bucket counts the bounds at or below the bucket: 0 train, 1 val, 2 test.
        return Sql(
            "((ARRAY['train', 'val', 'test'])[1 + width_bucket("
            "('x' || substr(md5(%s || ':' || (" + SIMILAR_ROOT + ")::text), 1, 8))::bit(32)::bigint"
            " %% 100, ARRAY[%s, %s])])",
            [str(self.seed), MAX_SIMILAR_DEPTH, train, train + val],
        )

    def positive(self, alias: str = "p") -> Sql:
        """A condition over the pair table (aliased `alias`) for the export's positives."""
        sql = thresholds(alias, self.min_probability, self.min_confidence)
        if self.status != PairFilter.ANY:
            sql = Sql(f"{alias}.status = %s AND ", [self.status]) + sql
        return self._scoped(alias, sql)

    def _scoped(self, alias: str, sql: Sql) -> Sql:
        """`sql`, limited to the release's frozen rows when the export is a release's."""
        if self.release_id is None:
            return sql
        scope = Sql(
            f"{alias}.release_id = %s AND {alias}.label_id IS NOT NULL AND ", [self.release_id]
        )
        return scope + sql

    def negative(self, alias: str = "p") -> Sql:
        """A condition over the pair table for the verified negatives (FALSE without them)."""
        if not self.negatives:
            return Sql("FALSE")
        sql = Sql(f"{alias}.status = %s", [PairFilter.REJECTED])
        # As in thresholds(): both shares are at most 1, so a minimum of 0 passes every pair.
        for column, minimum in (
            ("probability", self.min_probability),
            ("confidence", self.min_confidence),
        ):
            if minimum > 0:
                sql = sql + Sql(f" AND 1 - {alias}.{column} >= %s", [minimum])
        return self._scoped(alias, sql)

    def pictures_and_pairs(self, join: str = "JOIN") -> Sql:
        """`FROM` the matching pictures (`img`) and their passing pairs (`p`, live or the
        release's), up to the end of WHERE; `join` is "LEFT JOIN" to keep the matching
        pictures that have none."""
        return compose(
            f"FROM donations_image img {join} ",
            self.pairs,
            " p ON p.image_id = img.id AND ",
            self.passing(),
            " WHERE ",
            self.matching(),
        )

    def pair_rows(self) -> Sql:
        """(image_id, label_id, status) of every passing pair of the export's images:
        what its quality report measures."""
        return compose("SELECT p.image_id, p.label_id, p.status ", self.pictures_and_pairs())

    def outline_rows(self) -> Sql:
        """(label_id, shapes) of every accepted outline of the export's positive pairs
        (a release's: those it froze): what its quality report counts of outlines."""
        return compose(
            "SELECT p.label_id, cardinality(r.export_coco) FROM donations_image img JOIN ",
            self.pairs,
            " p ON p.image_id = img.id AND ",
            self.positive(),
            " ",
            self.outline_join("p"),
            " WHERE ",
            self.matching(outlined=True),
        )

    def passing(self, alias: str = "p") -> Sql:
        """The pair filter: positives, and verified negatives when they are asked for."""
        if not self.negatives:
            return self.positive(alias)
        return compose("((", self.positive(alias), ") OR (", self.negative(alias), "))")

    def outlined_image_ids(self) -> Sql:
        """`SELECT DISTINCT image_id` of the pictures with an accepted outline of a positive
        pair: the pictures annotations_only keeps (has_outline, read from the outlines' side).

        Read from the accepted outlines (an index of their own) to their pairs, it costs as
        many rows as there are outlines, where the EXISTS per matching picture costs a look
        at every picture's pairs. Live exports only: a release's reads the outlines it froze.
        """
        return compose(
            "SELECT DISTINCT ap.image_id FROM annotations_annotation a "
            "JOIN validation_imagelabel ap ON ap.id = a.pair_id "
            "WHERE a.status = 'accepted' AND ",
            self.positive("ap"),
        )


# A released image is served while it is public and has not been revoked.
RELEASED_IMAGES = """img.status = %s AND EXISTS (
    SELECT 1 FROM exports_releaseentry e WHERE e.release_id = %s AND e.image_id = img.id
) AND NOT EXISTS (SELECT 1 FROM exports_revocation r WHERE r.image_uuid = img.uuid)"""


@dataclass(frozen=True)
class ReleasedQuery:
    """A release's query as it was written when it was cut (its labels may be gone since)."""

    text: str
    named_label_ids: list[int]

    def __str__(self) -> str:
        return self.text

    @property
    def requested_label_ids(self) -> list[int]:
        """The tar's classes: the labels the query named when the release was cut."""
        return self.named_label_ids


# --- The snapshot ----------------------------------------------------------------


APPLICATION_NAME = "imagemonkey-export"


@contextmanager
def snapshot(
    database: str | None = None, in_key_order: bool = False, work_mem_mb: int | None = None
) -> Iterator[Snapshot]:
    """A READ ONLY REPEATABLE READ transaction on a connection of its own.

    Not the request's connection: Django runs that one in autocommit and may
    close it when the view returns, while the stream goes on long after.

    `in_key_order` (a release's download: snapshot_for) turns off the planner's
    sorts. Joined to the images, a release's frozen rows are hashed on both sides and
    the result sorted before the first row leaves (0.8–4 s at 1M pairs); without a
    sort PostgreSQL merges the rows in the order of their indexes (the entries'
    (release, image, label), image_public_id) and streams from the first row, for
    about the same total. A live export gets that plan by itself.
    """
    db = connections.create_connection(database or read_alias())
    try:
        db.ensure_connection()
        raw = db.connection
        raw.autocommit = False
        with raw.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # Named, so operators (and tests) can tell export connections apart.
            cursor.execute(f"SET LOCAL application_name = '{APPLICATION_NAME}'")
            # Compiling a million-row query costs more than it saves (bench/RESULTS.md).
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_TIMEOUT}'")
            if in_key_order:
                cursor.execute("SET LOCAL enable_sort = off")
            # One process per export: the renderers' aggregates take rows in the order of
            # their ordered subqueries, which a parallel plan's partial aggregates would not.
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            if work_mem_mb is not None:
                cursor.execute(f"SET LOCAL work_mem = '{int(work_mem_mb)}MB'")
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                [f"{int(settings.EXPORT_STREAM_TIMEOUT_S)}s"],
            )
            # The first query fixes the snapshot; now() is the time it was taken.
            cursor.execute("SELECT now()")
            (taken,) = cursor.fetchone()
        yield Snapshot(raw, taken)
    finally:
        # Closing ends the transaction. The raw connection is closed directly
        # because the wrapper refuses to be closed from another thread.
        if db.connection is not None:
            db.connection.close()


def snapshot_for(export: Export):
    """The snapshot an export's download reads: in key order for a release's rows."""
    return snapshot(
        export.database, in_key_order=export.release_id is not None, work_mem_mb=export.work_mem_mb
    )


class Snapshot:
    def __init__(self, raw_connection, taken: datetime):
        self.raw = raw_connection
        self.taken = taken
        self._cursor_names = itertools.count(1)

    def one(self, sql: Sql) -> tuple:
        with self.raw.cursor() as cursor:
            cursor.execute(sql.text, sql.params)
            return cursor.fetchone()

    def rows(self, sql: Sql) -> Iterator[tuple]:
        """Rows from a server-side cursor, fetched in batches."""
        name = f"export_rows_{next(self._cursor_names)}"
        with self.raw.cursor(name=name) as cursor:
            cursor.itersize = CURSOR_BATCH_ROWS
            cursor.execute(sql.text, sql.params)
            yield from cursor

    def copy_lines(self, sql: Sql) -> Iterator[bytes]:
        """The one text column of `sql`, one row per line, in chunks, via COPY TO STDOUT.

        CSV format with a quote and delimiter that never occur (0x01, 0x02)
        passes each value through verbatim; the callers' SQL guarantees values
        hold neither those nor line breaks (JSON escapes them, CSV cells blank them).
        """
        with self.raw.cursor() as cursor:
            statement = cursor.mogrify(sql.text, sql.params).decode()
        statement = f"COPY ({statement}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
        yield from _CopyPipe(self.raw, statement).chunks()


class _CopyPipe:
    """Runs COPY in a worker thread and hands its output over through a bounded queue.

    psycopg2's copy_expert only returns when the COPY is over, so a thread
    writes while the response generator reads; when the queue is full the
    thread waits, PostgreSQL's socket fills and the server waits too.
    """

    _done = object()

    def __init__(self, raw_connection, statement: str):
        self.raw = raw_connection
        self.statement = statement
        self.queue: queue.Queue = queue.Queue(maxsize=COPY_QUEUE_CHUNKS)
        self.stopped = threading.Event()
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:  # called by copy_expert, once per row
        self.buffer += data
        if len(self.buffer) >= COPY_CHUNK_BYTES:
            self._put(bytes(self.buffer))
            self.buffer.clear()

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            with self.raw.cursor() as cursor:
                cursor.copy_expert(self.statement, self)
            if self.buffer:
                self._put(bytes(self.buffer))
            self._put(self._done)
        except Exception as error:
            self._put(error)

    def _next(self, worker: threading.Thread):
        while True:
            try:
                return self.queue.get(timeout=1)
            except queue.Empty:
                if not worker.is_alive():  # it can only end by sending something first
                    raise ExportError("the export stopped without finishing") from None

    def chunks(self) -> Iterator[bytes]:
        worker = threading.Thread(target=self._run, name="export-copy", daemon=True)
        worker.start()
        try:
            while (item := self._next(worker)) is not self._done:
                if isinstance(item, Exception):
                    raise ExportError("the export query failed") from item
                yield item
        finally:
            if worker.is_alive():  # the client went away: stop PostgreSQL, then the thread
                self.stopped.set()
                self.raw.cancel()
                worker.join(timeout=10)


# --- Counts and previews: cheap, bounded queries on the request's connection ---------


def count_images(export: Export) -> int:
    sql = compose("SELECT count(*) FROM donations_image img WHERE ", export.matching())
    with bounded() as db, db.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        return cursor.fetchone()[0]


# A download's size is estimated, not measured: file sizes are not stored. Bytes per pixel
# of the stored renditions (JPEG at quality 90 for masters and 85 for the others, about
# what photos take; PNG much more), and about what a row of each format takes.
BYTES_PER_PIXEL = {"jpeg": 0.35, "png": 1.5}
TAR_BYTES_PER_FILE = 1536  # the member's pax header and padding
BYTES_PER_IMAGE = {"json": 130, "jsonl": 130, "coco": 330}  # 0 for the others
BYTES_PER_IMAGE |= {"yolo": 150, "voc": 600, "labelme": 900}  # plus the picture itself
# The formats that carry the image files themselves (and take `layout` and `size`).
IMAGE_FORMATS = frozenset({"tar", "parquet", "hf", "webdataset"})
# The detection datasets carry them too, and take `size` (exports.detection).
BUNDLES_IMAGES = IMAGE_FORMATS | {"yolo", "voc", "labelme"}
BYTES_PER_PAIR = 170  # a CSV row, a JSON validation, a pairs.csv row: all about this


@dataclass
class LabelCount:
    label: Label
    positives: int
    negatives: int


@dataclass
class Summary:
    """What the preview tells before a download: counts and an estimated size."""

    images: int
    positives: int
    negatives: int
    labels: list[LabelCount]
    estimated_bytes: int


def summarize(export: Export, format_name: str) -> Summary:
    """The images, the positive and negative pairs per label, and the estimated size of the
    download in `format_name` (two bounded queries, and one for the label names)."""
    side = {"thumb": THUMB_SIDE, "display": DISPLAY_SIDE, "master": None}[SIZES[export.size]]
    if format_name not in BUNDLES_IMAGES:
        image_bytes = Sql("0")
    else:
        # The rendition's pixels: the master's, scaled so that its long side fits `side`.
        scale = (
            "1"
            if side is None
            else f"LEAST(1.0, ({int(side)}::float / GREATEST(img.width, img.height)) ^ 2)"
        )
        image_bytes = Sql(
            f"img.width::float * img.height * {scale} * "
            "CASE img.format WHEN 'png' THEN %s ELSE %s END + %s",
            [BYTES_PER_PIXEL["png"], BYTES_PER_PIXEL["jpeg"], TAR_BYTES_PER_FILE],
        )
    images = compose(
        "SELECT count(*), COALESCE(sum(",
        image_bytes,
        "), 0) FROM donations_image img WHERE ",
        export.matching(),
    )
    pairs = compose(
        "SELECT p.label_id, count(*) FILTER (WHERE ",
        export.positive(),
        "), count(*) FILTER (WHERE ",
        export.negative(),
        ") ",
        export.pictures_and_pairs(),
        " GROUP BY p.label_id",
    )
    with bounded() as db, db.cursor() as cursor:
        cursor.execute(images.text, images.params)
        count, file_bytes = cursor.fetchone()
        cursor.execute(pairs.text, pairs.params)
        per_label = cursor.fetchall()
    labels = Label.objects.select_related("parent").in_bulk([row[0] for row in per_label])
    counts = sorted(
        (
            LabelCount(labels[pk], positives, negatives)
            for pk, positives, negatives in per_label
            if pk in labels  # a release may name a label deleted since
        ),
        key=lambda c: (-c.positives, -c.negatives, c.label.full_name),
    )
    positives = sum(c.positives for c in counts)
    negatives = sum(c.negatives for c in counts)
    estimated = (
        float(file_bytes)
        + count * BYTES_PER_IMAGE.get(format_name, 0)
        + (positives + negatives) * BYTES_PER_PAIR
    )
    return Summary(count, positives, negatives, counts, int(estimated))


def first_images(export: Export, limit: int) -> list[Image]:
    """The first few matching images, each with `passing_pairs` (four small queries)."""
    images = compose(
        "SELECT img.id FROM donations_image img WHERE ",
        export.matching(),
        Sql(" ORDER BY img.id LIMIT %s", [limit]),
    )
    with bounded() as db, db.cursor() as cursor:
        cursor.execute(images.text, images.params)
        ids = [pk for (pk,) in cursor.fetchall()]
        # The live pairs (a release's frozen rows name them by image and label).
        pairs = compose(
            "SELECT q.id FROM validation_imagelabel q JOIN ",
            export.pairs,
            Sql(
                " p ON p.image_id = q.image_id AND p.label_id = q.label_id "
                "WHERE p.image_id = ANY(%s) AND ",
                [ids],
            ),
            export.passing(),
        )
        cursor.execute(pairs.text, pairs.params)
        pair_ids = [pk for (pk,) in cursor.fetchall()]
    passing = (
        ImageLabel.objects.filter(pk__in=pair_ids)
        .select_related("label__parent")
        .order_by("label_id")
    )
    return list(
        Image.objects.filter(pk__in=ids)
        .order_by("pk")
        .prefetch_related(Prefetch("pairs", queryset=passing, to_attr="passing_pairs"))
    )


def measure_quality(export: Export) -> dict:
    """The quality report of a live export's pairs, measured now under the count timeout
    (quality.of_export measures the same inside an export's snapshot)."""
    about = {"query": str(export.query), "snapshot": timezone.now().isoformat()}
    with bounded() as db, db.cursor() as cursor:
        return quality.measure(export.pair_rows(), cursor, about, export.outline_rows())


def validation_counts(min_probability: float, min_count: int) -> list[dict]:
    """Per label, in the original's shape: {"label": its accessor (dog, dog.has='eye'),
    "count": its public pairs with probability ≥ min_probability}, for labels with at
    least min_count of them and never a zero row."""
    counted = Q(pairs__image__status=Image.Status.PUBLIC, pairs__probability__gte=min_probability)
    rows = (
        Label.objects.filter(is_meta=False)
        .annotate(count=Count("pairs", filter=counted))
        .filter(count__gte=max(min_count, 1))
        .order_by("-count", "parent__name", "name")
        .values_list("name", "parent__name", "count")
    )
    with bounded():
        return [
            {"label": accessor_of(name, parent or ""), "count": count}
            for name, parent, count in rows
        ]
