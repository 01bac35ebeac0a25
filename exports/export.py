"""Dataset export: JSON, JSON Lines, CSV, COCO and an ImageFolder tar, all streamed.

Three promises shape this module:

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

import csv
import hashlib
import io
import itertools
import json
import queue
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Prefetch, Q
from django.utils.text import slugify

from donations.imaging import DISPLAY_SIDE, THUMB_SIDE
from donations.models import Image, ImageLabel
from donations.storage import file_name, public_storage
from labels.models import Label
from people.replicas import read_alias

from . import quality
from .query import LabelQuery, Sql, compose

CSV_HEADER = (
    b"uuid,image_url,width,height,label,sublabel,num_yes,num_no,probability,confidence,status\r\n"
)
COPY_CHUNK_BYTES = 256 * 1024


def csv_header(export: Export) -> bytes:
    """CSV_HEADER, with a split column when the export is split."""
    return CSV_HEADER[:-2] + b",split\r\n" if export.split else CSV_HEADER


COPY_QUEUE_CHUNKS = 8  # at most ~2 MB in flight between PostgreSQL and the client
CURSOR_BATCH_ROWS = 2000
FILE_CHUNK_BYTES = 1024 * 1024
# A client that stops reading must not hold a snapshot (and vacuum) forever.
IDLE_TIMEOUT = "10min"


class ExportError(RuntimeError):
    """The stream cannot go on; the client sees a truncated download."""


class TooCostly(ValueError):
    """The planner expects this query to cost more than one request may spend."""


class TooSlow(RuntimeError):
    """A count or preview ran past its statement timeout and was cancelled."""


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

    def matching(self) -> Sql:
        """A condition over `img` for the public images this export contains."""
        if self.release_id is not None:
            return Sql(RELEASED_IMAGES, [Image.Status.PUBLIC, self.release_id])
        if self.annotations_only:
            return Sql("FALSE")  # annotations do not exist yet, so no image has one
        return self.query.condition(passing=self.passing())

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
        sql = Sql(
            f"{alias}.probability >= %s AND {alias}.confidence >= %s",
            [self.min_probability, self.min_confidence],
        )
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
        return self._scoped(
            alias,
            Sql(
                f"{alias}.status = %s AND 1 - {alias}.probability >= %s "
                f"AND 1 - {alias}.confidence >= %s",
                [PairFilter.REJECTED, self.min_probability, self.min_confidence],
            ),
        )

    def passing(self, alias: str = "p") -> Sql:
        """The pair filter: positives, and verified negatives when they are asked for."""
        if not self.negatives:
            return self.positive(alias)
        return compose("((", self.positive(alias), ") OR (", self.negative(alias), "))")


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


def label_cells(export: Export) -> str | Sql:
    """LABEL_CELLS, reading a release's label names as they were when it was cut."""
    if export.release_id is None:
        return LABEL_CELLS
    return Sql(LABEL_CELLS.replace(LIVE_NAMES, RELEASED_NAMES), [export.release_id])


# --- The snapshot ----------------------------------------------------------------


APPLICATION_NAME = "imagemonkey-export"


@contextmanager
def snapshot(database: str | None = None) -> Iterator[Snapshot]:
    """A READ ONLY REPEATABLE READ transaction on a connection of its own.

    Not the request's connection: Django runs that one in autocommit and may
    close it when the view returns, while the stream goes on long after.
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


def _after_first(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Rows rendered as `,{…}`: drop the comma in front of the very first one."""
    for index, chunk in enumerate(chunks):
        yield chunk[1:] if index == 0 else chunk


def _crlf(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """COPY ends rows with LF; RFC 4180 wants CRLF (rendered lines hold no LF)."""
    for chunk in chunks:
        yield chunk.replace(b"\n", b"\r\n")


# --- SQL that renders rows -------------------------------------------------------------

# Each label's name and part, rendered once per export rather than once per row:
# as the start of a JSON validation object, and as two RFC 4180 CSV cells.
# A CSV cell is quoted with quotes doubled, control characters blanked, and a
# leading ' in front of anything a spreadsheet would run as a formula.
LABEL_CELLS = """
WITH names AS (
    SELECT l.id,
           COALESCE(parent.name, l.name) AS label,
           CASE WHEN parent.id IS NULL THEN '' ELSE l.name END AS sublabel
    FROM labels_label l LEFT JOIN labels_label parent ON parent.id = l.parent_id
), cells AS MATERIALIZED (
    SELECT names.id,
           '{"label":' || to_json(names.label)::text
               || ',"sublabel":' || to_json(names.sublabel)::text AS json,
           (SELECT string_agg(
                       '"' || replace(
                           CASE WHEN clean ~ '^[[:space:]]*[-=+@]' THEN '''' || clean ELSE clean END,
                           '"', '""') || '"',
                       ',' ORDER BY n)
            FROM unnest(ARRAY[names.label, names.sublabel]) WITH ORDINALITY AS cell(value, n),
                 LATERAL regexp_replace(cell.value, '[[:cntrl:]]', ' ', 'g') AS clean) AS csv
    FROM names
)
"""
LIVE_NAMES = """SELECT l.id,
           COALESCE(parent.name, l.name) AS label,
           CASE WHEN parent.id IS NULL THEN '' ELSE l.name END AS sublabel
    FROM labels_label l LEFT JOIN labels_label parent ON parent.id = l.parent_id"""
RELEASED_NAMES = """SELECT label_id AS id, label, sublabel
    FROM exports_releaselabel WHERE release_id = %s"""
# Rows look their label's cell up in one jsonb object (label id → cell) built once
# per query, rather than joining `cells`: a join makes the planner hash the pairs and
# sort every row (on disk, at a million pairs) before the first one leaves, while the
# lookup keeps the pairs in the order the (image_id, label_id) index reads them.
JSON_CELL_MAP = ", cellmap AS MATERIALIZED (SELECT jsonb_object_agg(id, json) AS m FROM cells)\n"
CSV_CELL_MAP = ", cellmap AS MATERIALIZED (SELECT jsonb_object_agg(id, csv) AS m FROM cells)\n"
# The cell of the label of pair `p`, from `cellmap`.
CELL = "((SELECT m FROM cellmap) ->> p.label_id::text)"


def _split_field(export: Export, before: str, after: str) -> Sql:
    """SQL text for the image's split between `before` and `after`, or '' without a split."""
    if export.split is None:
        return Sql("''")
    return compose(Sql("%s || ", [before]), export.split_of(), Sql(" || %s", [after]))


def image_objects(export: Export, row_prefix: str) -> Sql:
    """One JSON object per matching image with its passing pairs, as in the /v1/export shape."""
    return compose(
        label_cells(export),
        JSON_CELL_MAP,
        Sql(
            """SELECT %s || '{"uuid":"' || img.uuid || '","provider":"donation","width":'
                || img.width || ',"height":' || img.height || """,
            [row_prefix],
        ),
        _split_field(export, ',"split":"', '"'),
        """ || ',"annotations":[],"validations":['
                || COALESCE(string_agg(""",
        CELL,
        """ || ',"num_yes":' || p.num_yes
                || ',"num_no":' || p.num_no || ',"probability":' || p.probability
                || ',"confidence":' || p.confidence || ',"status":"' || p.status || '"}',
                ',' ORDER BY p.label_id), '')
            || ']}'
        FROM donations_image img
        LEFT JOIN """,
        export.pairs,
        """ p ON p.image_id = img.id AND """,
        export.passing(),
        " WHERE ",
        export.matching(),
        " GROUP BY img.id ORDER BY img.id",
    )


def pair_lines(export: Export, ordered: bool = True) -> Sql:
    """One CSV line (without its line break) per passing pair of every matching image."""
    url = export.image_url_prefix.replace('"', '""')
    url = "".join(char for char in url if char.isprintable())
    return compose(
        label_cells(export),
        CSV_CELL_MAP,
        Sql(
            """SELECT img.uuid || ',' || %s || img.uuid || '",' || img.width || ',' || img.height
                || ',' || """,
            ['"' + url],
        ),
        CELL,
        """ || ',' || p.num_yes || ',' || p.num_no || ',' || p.probability || ',' || p.confidence
            || ',' || p.status || """,
        _split_field(export, ",", ""),
        """
        FROM donations_image img
        JOIN """,
        export.pairs,
        """ p ON p.image_id = img.id AND """,
        export.passing(),
        " WHERE ",
        export.matching(),
        # The order of img.id, but by the pair's column: the planner then merge-joins
        # images and pairs in index order and streams rows without sorting them.
        " ORDER BY p.image_id, p.label_id" if ordered else "",
    )


def coco_images(export: Export) -> Sql:
    """COCO image entries with the image-level labels in LVIS's form.

    LVIS (a COCO-format dataset read by pycocotools) keeps image-level facts on
    the image: `neg_category_ids` lists the categories verified absent. The same
    form with `pos_category_ids` for the categories verified present is what
    image-label COCO files (Detic's, for one) use. `annotations` stays for
    geometry, which an image-level label has none of. Each pair's votes are in
    `imagemonkey_labels`, which COCO tools ignore.
    """
    return compose(
        Sql(
            """SELECT ',{"id":' || img.id || ',"file_name":"' || img.uuid
                || CASE img.format WHEN 'png' THEN '.png' ELSE '.jpg' END
                || '","width":' || img.width || ',"height":' || img.height
                || ',"license":1,"coco_url":' || to_json(%s || img.uuid)::text
                || ',"imagemonkey_uuid":"' || img.uuid || '"' || """,
            [export.image_url_prefix],
        ),
        _split_field(export, ',"split":"', '"'),
        """ || ',"pos_category_ids":['
                || COALESCE(string_agg(p.label_id::text, ',' ORDER BY p.label_id) FILTER (WHERE """,
        export.positive(),
        """), '') || '],"neg_category_ids":['
                || COALESCE(string_agg(p.label_id::text, ',' ORDER BY p.label_id) FILTER (WHERE """,
        export.negative(),
        """), '') || '],"imagemonkey_labels":['
                || COALESCE(string_agg('{"category_id":' || p.label_id
                    || ',"status":"' || p.status || '","num_yes":' || p.num_yes
                    || ',"num_no":' || p.num_no || ',"probability":' || p.probability
                    || ',"confidence":' || p.confidence || '}', ',' ORDER BY p.label_id), '')
                || ']}'
            FROM donations_image img
            LEFT JOIN """,
        export.pairs,
        """ p ON p.image_id = img.id AND """,
        export.passing(),
        " WHERE ",
        export.matching(),
        " GROUP BY img.id ORDER BY img.id",
    )


def used_labels(export: Export) -> Sql:
    """`SELECT DISTINCT label_id` of the export's passing pairs (live, or the release's)."""
    return compose(
        "SELECT DISTINCT p.label_id FROM donations_image img JOIN ",
        export.pairs,
        " p ON p.image_id = img.id AND ",
        export.passing(),
        " WHERE ",
        export.matching(),
    )


def coco_categories(export: Export) -> Sql:
    """The labels that occur in the export; a part's supercategory is its label,
    a label's is the first of its is-a categories."""
    if export.release_id is not None:
        return released_categories(export)
    return compose(
        "WITH used AS MATERIALIZED (",
        used_labels(export),
        """)
        SELECT ',{"id":' || l.id
            || ',"name":' || to_json(COALESCE(parent.name || '/', '') || l.name)::text
            || ',"supercategory":' || to_json(COALESCE(parent.name, (
                SELECT category.name FROM labels_label_categories link
                JOIN labels_label category ON category.id = link.to_label_id
                WHERE link.from_label_id = l.id ORDER BY category.name LIMIT 1), ''))::text
            || '}'
        FROM used JOIN labels_label l ON l.id = used.label_id
        LEFT JOIN labels_label parent ON parent.id = l.parent_id
        ORDER BY l.id""",
    )


def released_categories(export: Export) -> Sql:
    """coco_categories for a release: its labels' names as they were when it was cut."""
    return compose(
        "WITH used AS MATERIALIZED (",
        used_labels(export),
        """)
        SELECT ',{"id":' || l.label_id
            || ',"name":' || to_json(l.label || CASE l.sublabel WHEN '' THEN '' ELSE '/' || l.sublabel END)::text
            || ',"supercategory":' || to_json(l.supercategory)::text || '}'
        FROM used JOIN exports_releaselabel l ON l.label_id = used.label_id AND """,
        Sql("l.release_id = %s ORDER BY l.label_id", [export.release_id]),
    )


def tar_images(export: Export) -> Sql:
    """One row per matching image for the tar, in image order: (uuid, format, master
    sha256, publication key, split or None, positive label ids, negative label ids)."""
    return compose(
        "SELECT img.uuid, img.format, img.master_sha256, img.publication, ",
        export.split_of() if export.split else "NULL",
        """,
            COALESCE(array_agg(p.label_id ORDER BY p.label_id) FILTER (WHERE """,
        export.positive(),
        """), '{}'),
            COALESCE(array_agg(p.label_id ORDER BY p.label_id) FILTER (WHERE """,
        export.negative(),
        """), '{}')
        FROM donations_image img
        LEFT JOIN """,
        export.pairs,
        """ p ON p.image_id = img.id AND """,
        export.passing(),
        " WHERE ",
        export.matching(),
        " GROUP BY img.id ORDER BY img.id",
    )


# --- Formats -------------------------------------------------------------------------


def render_json(export: Export) -> Iterator[bytes]:
    yield b"["
    with snapshot(export.database) as snap:
        yield from _after_first(snap.copy_lines(image_objects(export, ",")))
    yield b"]\n"


def render_jsonl(export: Export) -> Iterator[bytes]:
    with snapshot(export.database) as snap:
        yield from snap.copy_lines(image_objects(export, ""))


def render_csv(export: Export) -> Iterator[bytes]:
    yield csv_header(export)
    with snapshot(export.database) as snap:
        yield from _crlf(snap.copy_lines(pair_lines(export)))


COCO_LICENSE = {
    "id": 1,
    "name": "CC0 1.0",
    "url": "https://creativecommons.org/publicdomain/zero/1.0/",
}


def render_coco(export: Export) -> Iterator[bytes]:
    """COCO layout; the image-level labels are on the images (coco_images says how)."""
    with snapshot(export.database) as snap:
        info = {
            "description": "ImageMonkey dataset export",
            "url": export.image_url_prefix,
            "version": "1.0",
            "year": snap.taken.year,
            "contributor": "ImageMonkey contributors",
            "date_created": snap.taken.isoformat(),
            "query": str(export.query),
            "min_probability": export.min_probability,
            "min_confidence": export.min_confidence,
            "status": export.status,
            "negatives": export.negatives,
            "image_labels": (
                "image-level, on each image as in LVIS: pos_category_ids (the labels), "
                "neg_category_ids (verified negatives), imagemonkey_labels (the votes); "
                "annotations hold geometry only, and there is none yet"
            ),
        }
        if export.release_id is not None:
            info["release"] = export.release_slug
        head = {"info": info, "licenses": [COCO_LICENSE]}
        yield json.dumps(head)[:-1].encode() + b', "images": [\n'
        yield from _after_first(snap.copy_lines(coco_images(export)))
        yield b'], "categories": [\n'
        yield from _after_first(snap.copy_lines(coco_categories(export)))
        yield b'], "annotations": []}\n'


# --- The ImageFolder tar ----------------------------------------------------------------

TAR_BLOCK = tarfile.BLOCKSIZE
TAR_RECORD = tarfile.RECORDSIZE


class _TarStream:
    """Tar framing written by hand, so members stream without a seekable file."""

    def __init__(self, mtime: float):
        self.mtime = int(mtime)
        self.written = 0

    def _out(self, data: bytes) -> bytes:
        self.written += len(data)
        return data

    def member(self, name: str, size: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        yield self._out(info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8"))
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            if sent > size:
                break
            yield self._out(chunk)
        if sent != size:
            raise ExportError(f"{name} changed size while it was being archived")
        yield self._out(b"\0" * (-size % TAR_BLOCK))

    def end(self) -> bytes:
        trailer = b"\0" * (2 * TAR_BLOCK)
        return trailer + b"\0" * (-(self.written + len(trailer)) % TAR_RECORD)


def folder_names(snap: Snapshot) -> dict[int, str]:
    """A safe, unique folder name per label: `dog`, `traffic-light`, `dog.eye` for a part."""
    rows = snap.rows(
        Sql(
            "SELECT l.id, l.name, parent.id, parent.name FROM labels_label l "
            "LEFT JOIN labels_label parent ON parent.id = l.parent_id ORDER BY l.id"
        )
    )
    folders: dict[int, str] = {}
    taken: set[str] = set()
    for pk, name, parent_pk, parent_name in rows:
        # slugify leaves only ASCII letters, digits, - and _: no dots, no slashes.
        folder = slugify(name) or f"label-{pk}"
        if parent_pk is not None:
            folder = f"{slugify(parent_name) or f'label-{parent_pk}'}.{folder}"
        while folder in taken:
            folder = f"{folder}-{pk}"
        taken.add(folder)
        folders[pk] = folder
    return folders


def _hashed(chunks: Iterator[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


@dataclass
class _TarCounts:
    images: int = 0
    files: int = 0
    skipped: int = 0
    missing: int = 0
    mismatched: int = 0
    pairs: int = 0


def archive_folder(export: Export, taken: datetime) -> str:
    """The tar's top-level folder, named after the export: imagemonkey-dog-cat-20261201, or
    after the release: imagemonkey-release-2027-01."""
    if export.release_id is not None:
        return f"imagemonkey-release-{export.release_slug}"
    stem = slugify(str(export.query))[:60].strip("-") or "export"
    return f"imagemonkey-{stem}-{taken:%Y%m%d}"


class _Spool:
    """Lines of a member written while the images stream, sent once their size is known.

    They wait in a temporary file, not in memory; `member` hashes what it sends
    into the MANIFEST.
    """

    def __init__(self, name: str, file, header: bytes = b""):
        self.name = name
        self.file = file
        self.file.write(header)

    def write(self, line: bytes) -> None:
        self.file.write(line)

    def member(self, archive: _TarStream, folder: str, hashes) -> Iterator[bytes]:
        size = self.file.tell()
        self.file.seek(0)
        digest = hashlib.sha256()
        chunks = _hashed(iter(partial(self.file.read, FILE_CHUNK_BYTES), b""), digest)
        yield from archive.member(f"{folder}/{self.name}", size, chunks)
        hashes.write(f"{digest.hexdigest()}  {self.name}\n".encode())


def _csv_line(cells: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()


def render_tar(export: Export) -> Iterator[bytes]:
    """The images, then pairs.csv and the layout's label files, then the MANIFEST, all
    under one top-level folder.

    layout=single: `<label>/<uuid>.<ext>`, one folder per class (torchvision's
    ImageFolder), for the images with exactly one positive label among the
    requested ones; the others are listed in skipped.csv. layout=multi:
    `images/<uuid>.<ext>`, each image once, with multi-hot targets in labels.csv
    and labels.jsonl. The MANIFEST comes last because it lists the sha256 of
    everything before it; those lines wait in a temporary file, not in memory.
    """
    with (
        snapshot(export.database) as snap,
        tempfile.TemporaryFile() as hashes,
        ExitStack() as files,
    ):
        archive = _TarStream(snap.taken.timestamp())
        folder = archive_folder(export, snap.taken)
        counts = _TarCounts()
        if export.release_id is None:
            names = folder_names(snap)
        else:  # the folders as they were named when the release was cut
            names = released_folders(snap, export.release_id)
        classes = export.query.requested_label_ids or _used_labels(export, snap)
        if export.layout == Layout.MULTI:
            split = ["split"] if export.split else []
            header = ["file", "uuid", *split, *(names[label_id] for label_id in classes)]
            spools = [
                _Spool(
                    "labels.csv", files.enter_context(tempfile.TemporaryFile()), _csv_line(header)
                ),
                _Spool("labels.jsonl", files.enter_context(tempfile.TemporaryFile())),
            ]
        else:
            header = ["uuid", "reason", "labels"]
            spools = [
                _Spool(
                    "skipped.csv", files.enter_context(tempfile.TemporaryFile()), _csv_line(header)
                )
            ]
        yield from _image_members(
            export, snap, archive, folder, names, classes, spools, counts, hashes
        )
        yield from _pairs_csv_member(export, snap, archive, folder, counts, hashes)
        for spool in spools:
            yield from spool.member(archive, folder, hashes)
        if export.release_id is not None:
            yield from _quality_members(export, snap, archive, folder, hashes)
        head = _manifest_head(export, snap.taken, counts)
        body_size = hashes.tell()
        hashes.seek(0)
        body = iter(partial(hashes.read, FILE_CHUNK_BYTES), b"")
        yield from archive.member(
            f"{folder}/MANIFEST", len(head) + body_size, itertools.chain([head], body)
        )
        yield archive.end()


def released_folders(snap: Snapshot, release_id: int) -> dict[int, str]:
    """folder_names as they were when the release was cut."""
    sql = Sql(
        "SELECT label_id, folder FROM exports_releaselabel WHERE release_id = %s", [release_id]
    )
    return dict(snap.rows(sql))


def _used_labels(export: Export, snap: Snapshot) -> list[int]:
    """The labels of the export's passing pairs: the classes of a query that asks for none
    (`~cat`)."""
    sql = compose(used_labels(export), " ORDER BY label_id")
    return [label_id for (label_id,) in snap.rows(sql)]


def _image_members(
    export, snap, archive, folder, names, classes, spools, counts, hashes
) -> Iterator[bytes]:
    storage = public_storage()
    kind = SIZES[export.size]
    wanted = set(classes)
    for row in snap.rows(tar_images(export)):
        uuid, image_format, master_sha256, publication, split, positives, negatives = row
        counts.images += 1
        extension = "png" if image_format == Image.Format.PNG else "jpg"
        under = f"{split}/" if split else ""  # a split is the first folder: train/dog/…
        if export.layout == Layout.MULTI:
            path = f"{under}images/{uuid}.{extension}"
        else:
            candidates = [label_id for label_id in positives if label_id in wanted]
            if len(candidates) != 1:
                reason = "no positive label" if not candidates else "several positive labels"
                labels = " ".join(names[label_id] for label_id in candidates)
                spools[0].write(_csv_line([str(uuid), reason, labels]))
                counts.skipped += 1
                continue
            path = f"{under}{names[candidates[0]]}/{uuid}.{extension}"
        try:
            handle = storage.open(file_name(uuid, kind, extension, publication), "rb")
        except OSError:
            counts.missing += 1
            hashes.write(f"# missing, not in the archive: {path}\n".encode())
            continue
        digest = hashlib.sha256()
        with handle:
            chunks = iter(partial(handle.read, FILE_CHUNK_BYTES), b"")
            yield from archive.member(f"{folder}/{path}", handle.size, _hashed(chunks, digest))
        hashes.write(f"{digest.hexdigest()}  {path}\n".encode())
        counts.files += 1
        if kind == "master" and digest.hexdigest() != master_sha256:
            counts.mismatched += 1
            hashes.write(f"# differs from the recorded master sha256: {path}\n".encode())
        if export.layout == Layout.MULTI:
            _write_targets(spools, path, uuid, split, positives, negatives, names, classes)


def _write_targets(spools, path, uuid, split, positives, negatives, names, classes) -> None:
    """A multi-hot row: 1 positive, 0 verified negative, empty when not known."""
    positive, negative = set(positives), set(negatives)
    targets = [1 if c in positive else 0 if c in negative else None for c in classes]
    labels_csv, labels_jsonl = spools
    cells = ["" if target is None else target for target in targets]
    labels_csv.write(_csv_line([path, str(uuid), *([split] if split else []), *cells]))
    entry = {
        "file": path,
        "uuid": str(uuid),
        **({"split": split} if split else {}),
        "labels": [names[label_id] for label_id in positives],
        "negatives": [names[label_id] for label_id in negatives],
        "target": targets,
    }
    labels_jsonl.write(json.dumps(entry).encode() + b"\n")


def _pairs_csv_member(export, snap, archive, folder, counts, hashes) -> Iterator[bytes]:
    """pairs.csv, the CSV export; its size is summed first, from the same snapshot."""
    counts.pairs, size = snap.one(
        compose(
            "SELECT count(*), COALESCE(sum(octet_length(line) + 2), 0) FROM (",
            pair_lines(export, ordered=False),
            ") AS lines(line)",  # + 2: each line ends with CRLF
        )
    )
    digest = hashlib.sha256()
    header = csv_header(export)
    chunks = itertools.chain([header], _crlf(snap.copy_lines(pair_lines(export))))
    yield from archive.member(f"{folder}/pairs.csv", len(header) + size, _hashed(chunks, digest))
    hashes.write(f"{digest.hexdigest()}  pairs.csv\n".encode())


def _quality_members(export, snap, archive, folder, hashes) -> Iterator[bytes]:
    """A release's QUALITY.md and quality.json, as measured when it was cut."""
    (text,) = snap.one(quality.stored(export.release_id))
    report = json.loads(text)
    for name, content in quality.members(report) if report else []:
        yield from archive.member(f"{folder}/{name}", len(content), iter([content]))
        hashes.write(f"{hashlib.sha256(content).hexdigest()}  {name}\n".encode())


def _manifest_head(export: Export, taken: datetime, counts: _TarCounts) -> bytes:
    layout = (
        "images/<uuid>.<ext>, multi-hot targets in labels.csv and labels.jsonl"
        if export.layout == Layout.MULTI
        else "<label>/<uuid>.<ext> (ImageFolder), other images in skipped.csv"
    )
    lines = [
        f"# ImageMonkey dataset export, layout={export.layout}: {layout}",
        f"# query: {json.dumps(str(export.query))}",
        f"# min_probability: {export.min_probability}",
        f"# min_confidence: {export.min_confidence}",
        f"# status: {export.status}",
        f"# negatives: {str(export.negatives).lower()}",
        f"# annotations_only: {str(export.annotations_only).lower()}",
        f"# size: {export.size} ({SIZES[export.size]} rendition)",
        f"# split: {'/'.join(map(str, export.split)) if export.split else 'none'}",
        f"# seed: {export.seed}",
        f"# snapshot: {taken.isoformat()}",
        f"# images: {counts.images}",
        f"# image files: {counts.files}",
        f"# images skipped, in skipped.csv: {counts.skipped}",
        f"# pairs.csv rows: {counts.pairs}",
        f"# images whose file is missing: {counts.missing}",
        f"# files whose sha256 differs from the recorded master: {counts.mismatched}",
        "# check every file, in this folder, with: grep -v '^#' MANIFEST | sha256sum -c",
    ]
    if export.release_id is not None:
        lines[1:1] = [
            f"# release: {export.release_slug} (minus the pictures revoked since, "
            "listed in /v1/revocations.jsonl)"
        ]
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    content_type: str
    extension: str
    render: Callable[[Export], Iterator[bytes]]


FORMATS = {
    f.name: f
    for f in [
        Format("json", "JSON", "application/json", "json", render_json),
        Format("jsonl", "JSON Lines", "application/x-ndjson", "jsonl", render_jsonl),
        Format("csv", "CSV", "text/csv; charset=utf-8; header=present", "csv", render_csv),
        Format("coco", "COCO JSON", "application/json", "coco.json", render_coco),
        Format("tar", "Images (tar)", "application/x-tar", "tar", render_tar),
    ]
}


# --- Counts and previews: cheap, bounded queries on the request's connection ---------


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
BYTES_PER_IMAGE = {"json": 130, "jsonl": 130, "coco": 330, "csv": 0, "tar": 0}
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
    if format_name != "tar":
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
        """) FROM donations_image img
        JOIN """,
        export.pairs,
        """ p ON p.image_id = img.id AND """,
        export.passing(),
        " WHERE ",
        export.matching(),
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


def validation_counts(min_probability: float, min_count: int) -> list[dict]:
    """Per label: the public pairs with probability ≥ min_probability, if at least min_count."""
    counted = Q(pairs__image__status=Image.Status.PUBLIC, pairs__probability__gte=min_probability)
    rows = (
        Label.objects.filter(is_meta=False)
        .annotate(count=Count("pairs", filter=counted))
        .filter(count__gte=min_count)
        .filter(Q(active=True) | Q(count__gt=0))  # a retired label shows only while it has pairs
        .order_by("-count", "parent__name", "name")
        .values_list("name", "parent__name", "count")
    )
    with bounded():
        return [
            {"label": parent or name, "sublabel": name if parent else "", "count": count}
            for name, parent, count in rows
        ]
