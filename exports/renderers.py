"""The formats PostgreSQL renders row by row: JSON, JSON Lines, CSV and COCO.

Each label's name is rendered once per export, each row by SQL, and the text
streams through the snapshot's COPY pipe (exports.export).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from .export import Export, snapshot_for
from .query import Sql, compose

CSV_HEADER = (
    b"uuid,image_url,width,height,label,sublabel,num_yes,num_no,probability,confidence,status\r\n"
)


def csv_header(export: Export) -> bytes:
    """CSV_HEADER, with a split column when the export is split."""
    return CSV_HEADER[:-2] + b",split\r\n" if export.split else CSV_HEADER


def label_cells(export: Export) -> str | Sql:
    """LABEL_CELLS, reading a release's label names as they were when it was cut."""
    if export.release_id is None:
        return LABEL_CELLS
    return Sql(LABEL_CELLS.replace(LIVE_NAMES, RELEASED_NAMES), [export.release_id])


def _after_first(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Rows rendered as `,{…}`: drop the comma in front of the very first one."""
    for index, chunk in enumerate(chunks):
        yield chunk[1:] if index == 0 else chunk


def crlf(chunks: Iterator[bytes]) -> Iterator[bytes]:
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
# Rows look their label's cell up in one jsonb array built once per query, the cell of
# label n at position n (null where no label has that id), rather than joining `cells`:
# a join makes the planner hash the pairs and sort every row (on disk, at a million
# pairs) before the first one leaves, while the lookup keeps the pairs in the order the
# (image_id, label_id) index reads them. An array's element is found by its position, an
# object's key by a search over text (0.2 s of 1.6 s for the CSV of 1M pairs). The array
# is as long as the largest label id, a few thousand in a curated taxonomy.
_CELL_MAP = """, cellmap AS MATERIALIZED (
    SELECT jsonb_agg(cells.{column} ORDER BY n) AS m
    FROM generate_series(0, (SELECT max(id) FROM cells)) AS n
    LEFT JOIN cells ON cells.id = n
)
"""
JSON_CELL_MAP = _CELL_MAP.format(column="json")
CSV_CELL_MAP = _CELL_MAP.format(column="csv")


def cell_of(pair: str) -> str:
    """The cell of the label of the pair aliased `pair`, from `cellmap`."""
    return f"((SELECT m FROM cellmap) ->> {pair}.label_id::int)"  # noqa: S608 - an alias of ours


CELL = cell_of("p")


def _split_field(export: Export, before: str, after: str) -> Sql:
    """SQL text for the image's split between `before` and `after`, or '' without a split."""
    if export.split is None:
        return Sql("''")
    return compose(Sql("%s || ", [before]), export.split_of(), Sql(" || %s", [after]))


def image_objects(export: Export, row_prefix: str, every_pair: bool | None = None) -> Sql:
    """One JSON object per matching image with its passing pairs, as in the /v1/export shape.

    Each picture's validations are in label order, made two ways with the same bytes
    (`every_pair`, by default Export.reads_every_pair):

    - For an export of most pictures, every passing pair is rendered in one pass over the
      (image, label) index and aggregated per picture, then merged with the matching
      pictures by id: no sort at all, and pairs of pictures the query leaves out are
      rendered for nothing (few, here).
    - Otherwise the matching pictures are joined to their pairs, and the pairs rendered in
      a subquery ordered by picture and label, which one incremental sort over pictures
      already in id order satisfies (string_agg(… ORDER BY label) sorts each picture's
      pairs on its own: 0.25 s of 1.9 s at 1M pairs on PostgreSQL 15).

    Either way the aggregate takes the rows of a subquery with ORDER BY as they come: such
    a subquery is not flattened, and an aggregate without an ORDER BY of its own does not
    reorder its input.
    """
    if every_pair is None:
        every_pair = export.reads_every_pair
    return compose(
        label_cells(export),
        JSON_CELL_MAP,
        Sql(
            """SELECT %s || '{"uuid":"' || img.uuid || '","provider":"donation","width":'
                || img.width || ',"height":' || img.height || """,
            [row_prefix],
        ),
        _split_field(export, ',"split":"', '"'),
        """ || ',"annotations":[' || """,
        outline_objects(export),
        """ || '],"validations":[' || COALESCE(""",
        _validations_by_picture(export) if every_pair else _validations_of_matching(export),
    )


# A passing pair `p` as an object of an image's "validations" (needs cellmap).
VALIDATION = (
    CELL
    + """ || ',"num_yes":' || p.num_yes
                || ',"num_no":' || p.num_no || ',"probability":' || p.probability
                || ',"confidence":' || p.confidence || ',"status":"' || p.status || '"}'"""
)
# The columns of `img` an image object renders (the split reads uuid and similar_to_id).
IMAGE_COLUMNS = "img.id, img.uuid, img.width, img.height, img.similar_to_id"


def _validations_by_picture(export: Export) -> Sql:
    """The tail of image_objects that renders every passing pair, aggregated per picture."""
    return compose(
        """v.validations, '') || ']}'
        FROM donations_image img
        LEFT JOIN (
            SELECT p.image_id, string_agg(""",
        VALIDATION,
        """, ',') AS validations
            FROM (SELECT p.image_id, p.label_id, p.num_yes, p.num_no, p.probability,
                         p.confidence, p.status
                  FROM """,
        export.pairs,
        " p WHERE ",
        export.passing(),
        """ ORDER BY p.image_id, p.label_id) p
            GROUP BY p.image_id
        ) v ON v.image_id = img.id
        WHERE """,
        export.matching(),
        " ORDER BY img.id",
    )


def _validations_of_matching(export: Export) -> Sql:
    """The tail of image_objects that renders the matching pictures' pairs only."""
    return compose(
        """string_agg(img.validation, ','), '') || ']}'
        FROM (
            SELECT """,
        IMAGE_COLUMNS,
        ", ",
        VALIDATION,
        " AS validation ",
        export.pictures_and_pairs("LEFT JOIN"),
        f"""
            ORDER BY {IMAGE_COLUMNS}, p.label_id
        ) img
        GROUP BY {IMAGE_COLUMNS} ORDER BY img.id""",
    )


def outline_objects(export: Export) -> Sql:
    """SQL text of image `img`'s accepted outlines, as the original's export wrote them:
    `{"label":…,"sublabel":…,"type":"rect",…}` per shape, comma-separated (needs cellmap).

    Outlines are of the image's positive pairs, at the revision the crowd accepted (for a
    release, the one accepted when it was cut: Export.outline_join); their JSON was
    measured when the revision was drawn (annotations.geometry).
    """
    # Most pictures have no accepted outline: a semi-join says so for them, cheaper than
    # starting the aggregate over the joins and shapes below (0.3 s of 2.3 s of
    # PostgreSQL's CPU for the JSON of 1M pairs without outlines).
    return compose(
        "CASE WHEN ",
        export.has_outline(),
        " THEN COALESCE((SELECT string_agg(",
        cell_of("ap"),
        """ || ',' || s.shape, ',' ORDER BY r.annotation_id, s.n)
            FROM """,
        export.pairs,
        " ap ",
        export.outline_join("ap"),
        """
            CROSS JOIN LATERAL unnest(r.export_original) WITH ORDINALITY AS s(shape, n)
            WHERE ap.image_id = img.id AND """,
        export.positive("ap"),
        "), '') ELSE '' END",
    )


def coco_annotations(export: Export, image_ids: bytes) -> Sql:
    """COCO annotation entries, one per shape of each accepted outline of a positive pair
    of the pictures `image_ids` (the file's images: bit n of the bytes set for picture n,
    as _ImageEntries notes them): bbox, segmentation (one polygon) and area as measured
    when it was drawn (for a release, as frozen when it was cut: Export.outline_join).
    Ids are the outline's id × 128 + the shape's place in it (at most 100 shapes).

    The pictures come from the images section rather than from the query again: that
    would test each outline's picture against the query's terms, a look at its pairs per
    term, for every outline of it."""
    return compose(
        """SELECT ',{"id":' || (r.annotation_id * 128 + s.n) || ',"image_id":' || p.image_id
                || ',"category_id":' || p.label_id || ',"iscrowd":0,' || s.shape
            FROM """,
        export.pairs,
        " p ",
        export.outline_join("p"),
        """
            CROSS JOIN LATERAL unnest(r.export_coco) WITH ORDINALITY AS s(shape, n)
            WHERE """,
        export.positive(),
        Sql(
            " AND CASE WHEN p.image_id < %s THEN get_bit(%s, p.image_id) = 1 ELSE FALSE END",
            [len(image_ids) * 8, image_ids],
        ),
        " ORDER BY p.image_id, r.annotation_id, s.n",
    )


def pair_lines(export: Export, ordered: bool = True) -> Sql:
    """One CSV line (without its line break) per passing pair of every matching image."""
    url = export.image_url_prefix.replace('"', '""')
    url = "".join(char for char in url if char.isprintable())
    return compose(
        label_cells(export),
        CSV_CELL_MAP,
        """SELECT img.head || """,
        CELL,
        """ || ',' || p.num_yes || ',' || p.num_no || ',' || p.probability || ',' || p.confidence
            || ',' || p.status || img.tail
        FROM (""",
        # Each image's cells (uuid, URL, size; its split) are rendered once, not once per
        # pair. The subquery is ordered (which also keeps the planner from flattening it),
        # so images and pairs are still merge-joined in index order without a sort; and
        # grouped by the image's key, which tells the planner each image comes once, so the
        # merge join need not keep the images in a Materialize to read one again (0.08 s
        # of 1.5 s at 1M pairs).
        Sql(
            """SELECT img.id, img.uuid || ',' || %s || img.uuid || '",' || img.width || ','
                || img.height || ',' AS head, """,
            ['"' + url],
        ),
        _split_field(export, ",", ""),
        """ AS tail
            FROM donations_image img WHERE """,
        export.matching(),
        " GROUP BY img.id ORDER BY img.id) img" if ordered else " OFFSET 0) img",
        " JOIN ",
        export.pairs,
        """ p ON p.image_id = img.id AND """,
        export.passing(),
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
    `imagemonkey_labels`, which COCO tools ignore; it lists every passing pair of
    the image, which is what render_coco reads the categories from.
    """
    if export.annotations_only and export.release_id is None:
        return _outlined_coco_images(export)
    return compose(
        _coco_image_entry(
            export,
            compose(
                "string_agg(p.label_id::text, ',' ORDER BY p.label_id) FILTER (WHERE ",
                export.positive(),
                ")",
            ),
            compose(
                "string_agg(p.label_id::text, ',' ORDER BY p.label_id) FILTER (WHERE ",
                export.negative(),
                ")",
            ),
            "string_agg(" + COCO_IMAGE_LABEL + ", ',' ORDER BY p.label_id)",
        ),
        " ",
        export.pictures_and_pairs("LEFT JOIN"),
        " GROUP BY img.id ORDER BY img.id",
    )


# One pair of the image, in imagemonkey_labels.
COCO_IMAGE_LABEL = """'{"category_id":' || p.label_id
                    || ',"status":"' || p.status || '","num_yes":' || p.num_yes
                    || ',"num_no":' || p.num_no || ',"probability":' || p.probability
                    || ',"confidence":' || p.confidence || '}'"""


def _coco_image_entry(export: Export, positives: Sql, negatives: Sql, labels: str) -> Sql:
    """The SELECT list of a COCO image entry of `img`, given the SQL of its positives' and
    verified negatives' label ids and of its imagemonkey_labels (each NULL for none)."""
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
        """ || ',"pos_category_ids":[' || COALESCE(""",
        positives,
        """, '') || '],"neg_category_ids":[' || COALESCE(""",
        negatives,
        """, '') || '],"imagemonkey_labels":[' || COALESCE(""",
        labels,
        ", '') || ']}'",
    )


def _outlined_coco_images(export: Export) -> Sql:
    """coco_images for annotations_only: the same entries, read from the outlined pictures.

    Joining every matching picture to all its pairs and keeping the outlined ones makes
    the planner hash every pair and sort them on disk before the first entry leaves. Here
    the outlined pictures come from the accepted outlines (Export.outlined_image_ids) in
    id order, each looked up by its key, and each picture's pairs are read from the
    (image, label) index in label order: a subquery with ORDER BY is not flattened, so the
    aggregates take its rows in that order and need no sort of their own.
    """
    return compose(
        _coco_image_entry(export, Sql("agg.positives"), Sql("agg.negatives"), "agg.labels"),
        "\n            FROM (",
        export.outlined_image_ids(),
        """) outlined
            JOIN donations_image img ON img.id = outlined.image_id
            CROSS JOIN LATERAL (
                SELECT string_agg(p.label_id::text, ',') FILTER (WHERE """,
        export.positive(),
        """) AS positives,
                    string_agg(p.label_id::text, ',') FILTER (WHERE """,
        export.negative(),
        """) AS negatives,
                    string_agg(""",
        COCO_IMAGE_LABEL,
        """, ',') AS labels
                FROM (SELECT * FROM validation_imagelabel p WHERE p.image_id = img.id AND """,
        export.passing(),
        """ ORDER BY p.label_id) p
            ) agg
            WHERE """,
        # The rows are outlined pictures already: matching need not check that again.
        export.matching(outlined=True),
        " ORDER BY img.id",
    )


def used_labels(export: Export) -> Sql:
    """`SELECT DISTINCT label_id` of the export's passing pairs (live, or the release's)."""
    return compose("SELECT DISTINCT p.label_id ", export.pictures_and_pairs())


def coco_categories(export: Export, label_ids: list[int]) -> Sql:
    """The categories `label_ids` (those that occur in the export); a part's supercategory
    is its label, a label's is the first of its is-a categories."""
    if export.release_id is not None:
        return released_categories(export, label_ids)
    return Sql(
        """SELECT ',{"id":' || l.id
            || ',"name":' || to_json(COALESCE(parent.name || '/', '') || l.name)::text
            || ',"supercategory":' || to_json(COALESCE(parent.name, (
                SELECT category.name FROM labels_label_categories link
                JOIN labels_label category ON category.id = link.to_label_id
                WHERE link.from_label_id = l.id ORDER BY category.name LIMIT 1), ''))::text
            || '}'
        FROM labels_label l
        LEFT JOIN labels_label parent ON parent.id = l.parent_id
        WHERE l.id = ANY(%s)
        ORDER BY l.id""",
        [label_ids],
    )


def released_categories(export: Export, label_ids: list[int]) -> Sql:
    """coco_categories for a release: its labels' names as they were when it was cut."""
    return Sql(
        """SELECT ',{"id":' || l.label_id
            || ',"name":' || to_json(l.label || CASE l.sublabel WHEN '' THEN '' ELSE '/' || l.sublabel END)::text
            || ',"supercategory":' || to_json(l.supercategory)::text || '}'
        FROM exports_releaselabel l
        WHERE l.release_id = %s AND l.label_id = ANY(%s) ORDER BY l.label_id""",
        [export.release_id, label_ids],
    )


def tagged_pairs(export: Export) -> Sql:
    """The 2017 /v1/export?tags= shape: one JSON object per pair of the requested labels
    on every matching image, {uuid, label, sublabel, provider, probability, num_yes,
    num_no, annotations}."""
    return compose(
        label_cells(export),
        JSON_CELL_MAP,
        """SELECT ',{"uuid":"' || img.uuid || '",' || substr(""",
        CELL,
        """, 2) || ',"provider":"donation","probability":' || p.probability
            || ',"num_yes":' || p.num_yes || ',"num_no":' || p.num_no || ',"annotations":[]}'
        """,
        export.pictures_and_pairs(),
        Sql(" AND p.label_id = ANY(%s)", [export.query.requested_label_ids]),
        " ORDER BY p.image_id, p.label_id",
    )


def render_tagged_json(export: Export) -> Iterator[bytes]:
    yield b"["
    with snapshot_for(export) as snap:
        yield from _after_first(snap.copy_lines(tagged_pairs(export)))
    yield b"]\n"


# --- Formats -------------------------------------------------------------------------


def render_json(export: Export) -> Iterator[bytes]:
    yield b"["
    with snapshot_for(export) as snap:
        yield from _after_first(snap.copy_lines(image_objects(export, ",")))
    yield b"]\n"


def render_jsonl(export: Export) -> Iterator[bytes]:
    with snapshot_for(export) as snap:
        yield from snap.copy_lines(image_objects(export, ""))


def render_csv(export: Export) -> Iterator[bytes]:
    yield csv_header(export)
    with snapshot_for(export) as snap:
        yield from crlf(snap.copy_lines(pair_lines(export)))


# The start of an image entry, `{"id":12,"file_name":"…`, and a pair in its
# imagemonkey_labels, `{"category_id":7,"status":…`. Nothing else in an entry can look
# like either: JSON strings escape their quotes.
IMAGE_ID = re.compile(rb'\{"id":([0-9]+),"file_name":"')
CATEGORY_ID = re.compile(rb'"category_id":([0-9]+),')
# Longer than any match (22 bytes and a bigint's 19 digits).
_SEAM = 64


class _ImageEntries:
    """The pictures and the categories of a COCO file, read off its image entries as they
    stream by, for the sections that follow.

    Each entry lists every passing pair of its picture in imagemonkey_labels, so the ids
    there are the labels of the export's passing pairs: the categories, without a second
    pass over the pictures and their pairs (which costs as much as the images section).
    The pictures are kept as one bit per picture id (a million pictures: 125 kB), for
    coco_annotations.
    """

    def __init__(self):
        self.categories: set[bytes] = set()
        self.images = bytearray()
        self._tail = b""

    def reading(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            # An entry's start or a pair split between two chunks is whole in the seam.
            seam = self._tail + chunk[:_SEAM]
            self._note(seam)
            self._note(chunk)
            self._tail = (self._tail + chunk[-_SEAM:])[-_SEAM:]  # chunks may be short
            yield chunk

    def _note(self, text: bytes) -> None:
        self.categories.update(CATEGORY_ID.findall(text))
        images = self.images
        for found in IMAGE_ID.findall(text):
            image_id = int(found)
            byte = image_id >> 3
            if byte >= len(images):
                images.extend(bytes(byte + 1 - len(images)))
            # get_bit's order: bit n is bit n % 8 (least significant first) of byte n / 8.
            images[byte] |= 1 << (image_id & 7)

    def category_ids(self) -> list[int]:
        return sorted(int(value) for value in self.categories)


COCO_LICENSE = {
    "id": 1,
    "name": "CC0 1.0",
    "url": "https://creativecommons.org/publicdomain/zero/1.0/",
}


def render_coco(export: Export) -> Iterator[bytes]:
    """COCO layout; the image-level labels are on the images (coco_images says how)."""
    with snapshot_for(export) as snap:
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
                "annotations hold the outlines the crowd accepted, one entry per shape"
            ),
        }
        if export.release_id is not None:
            info["release"] = export.release_slug
        head = {"info": info, "licenses": [COCO_LICENSE]}
        yield json.dumps(head)[:-1].encode() + b', "images": [\n'
        entries = _ImageEntries()
        yield from entries.reading(_after_first(snap.copy_lines(coco_images(export))))
        yield b'], "categories": [\n'
        yield from _after_first(snap.copy_lines(coco_categories(export, entries.category_ids())))
        yield b'], "annotations": [\n'
        annotations = coco_annotations(export, bytes(entries.images))
        yield from _after_first(snap.copy_lines(annotations))
        yield b"]}\n"
