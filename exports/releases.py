"""Cutting a release, revoking a picture, and the changes between two releases.

A release is cut in one transaction that reads one snapshot (REPEATABLE READ
when the cut owns its transaction): the export's rows are copied into
exports_releaseentry with one INSERT … SELECT — the same join the JSON export
renders, so an image matched with no passing pair keeps a row without a label —
then its labels' names and folders, its counts and its difference from the
previous release are derived from those rows, never from the live tables again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

from django.db import IntegrityError, connection, transaction

from donations.models import Image
from donations.storage import file_name, public_storage

from . import quality
from .bundles import folder_names
from .export import Export, PairFilter, ReleasedQuery, Snapshot
from .models import (
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
    Release,
    ReleaseLabel,
    Revocation,
    RevocationReason,
)
from .query import LabelQuery, Sql, compose


class ReleaseError(ValueError):
    """A release that cannot be cut, with the reason."""


ENTRIES_SQL = """
INSERT INTO exports_releaseentry (release_id, image_id, image_uuid, label_id, num_yes, num_no,
                                  probability, confidence, status, master_sha256)
SELECT %s, img.id, img.uuid, p.label_id, p.num_yes, p.num_no, p.probability, p.confidence,
       COALESCE(p.status, ''), img.master_sha256
FROM donations_image img LEFT JOIN validation_imagelabel p ON p.image_id = img.id AND """


def entries_sql(export: Export, release_id: int, chosen_by: Export | None = None) -> Sql:
    """INSERT … SELECT of the live export's rows (image_objects' join) into the release:
    the images `chosen_by` matches (default: `export`), with every pair `export` passes."""
    images = (chosen_by or export).matching()
    return compose(Sql(ENTRIES_SQL, [release_id]), export.passing(), " WHERE ", images)


LABELS_SQL = """
INSERT INTO exports_releaselabel (release_id, label_id, label, sublabel, supercategory, folder, pairs)
SELECT %s, l.id, COALESCE(parent.name, l.name),
       CASE WHEN parent.id IS NULL THEN '' ELSE l.name END,
       COALESCE(parent.name, (
           SELECT category.name FROM labels_label_categories link
           JOIN labels_label category ON category.id = link.to_label_id
           WHERE link.from_label_id = l.id ORDER BY category.name LIMIT 1), ''),
       '', used.pairs
FROM (SELECT label_id, count(*) AS pairs FROM exports_releaseentry
      WHERE release_id = %s AND label_id IS NOT NULL GROUP BY label_id) AS used
JOIN labels_label l ON l.id = used.label_id
LEFT JOIN labels_label parent ON parent.id = l.parent_id
"""

# The accepted outlines of each released pair, at the revision accepted now, with what the
# exports write of them: the live pair `p` joined as every live export joins its outlines
# (Export.outline_join). A revision without measured shapes draws nothing in any export
# and is not frozen.
OUTLINES_SQL = """
INSERT INTO exports_releaseoutline (entry_id, annotation_id, revision, export_original,
                                    export_coco, coverage)
SELECT e.id, r.annotation_id, r.number, r.export_original, r.export_coco, r.coverage
FROM exports_releaseentry e
JOIN validation_imagelabel p ON p.image_id = e.image_id AND p.label_id = e.label_id
"""


def outlines_sql(live: Export, release_id: int) -> Sql:
    """INSERT … SELECT of the accepted outlines of the release's pairs, as `live` reads them."""
    return compose(
        OUTLINES_SQL,
        live.outline_join("p"),
        Sql(" WHERE e.release_id = %s AND cardinality(r.export_coco) > 0", [release_id]),
    )


# Frozen outlines keyed by their outline in two releases; one whose revision or shapes
# differ is "changed". Revoked pictures are left out when the changes are listed.
OUTLINE_DIFFERENCE = """
WITH old AS (
    SELECT e.image_uuid, e.label_id, o.annotation_id, o.revision, o.export_coco
    FROM exports_releaseoutline o JOIN exports_releaseentry e ON e.id = o.entry_id
    WHERE e.release_id = %s
), new AS (
    SELECT e.image_uuid, e.label_id, o.annotation_id, o.revision, o.export_coco
    FROM exports_releaseoutline o JOIN exports_releaseentry e ON e.id = o.entry_id
    WHERE e.release_id = %s
), joined AS (
    SELECT COALESCE(new.image_uuid, old.image_uuid) AS uuid,
           COALESCE(new.label_id, old.label_id) AS label_id,
           COALESCE(new.annotation_id, old.annotation_id) AS annotation_id,
           CASE WHEN old.annotation_id IS NULL THEN 'added'
                WHEN new.annotation_id IS NULL THEN 'removed'
                ELSE 'changed' END AS change,
           old, new
    FROM old FULL JOIN new ON new.annotation_id = old.annotation_id
    WHERE old.annotation_id IS NULL OR new.annotation_id IS NULL
       OR (old.revision, old.export_coco) IS DISTINCT FROM (new.revision, new.export_coco)
)
"""

# Pairs keyed by (image, label) in two releases; a pair whose counts or status differ
# is "changed". Revoked pictures are left out on both sides, as from every download.
DIFFERENCE = """
WITH old AS (SELECT * FROM exports_releaseentry WHERE release_id = %s AND label_id IS NOT NULL),
new AS (SELECT * FROM exports_releaseentry WHERE release_id = %s AND label_id IS NOT NULL),
joined AS (
    SELECT COALESCE(new.image_uuid, old.image_uuid) AS uuid,
           COALESCE(new.label_id, old.label_id) AS label_id,
           CASE WHEN old.image_id IS NULL THEN 'added'
                WHEN new.image_id IS NULL THEN 'removed'
                ELSE 'changed' END AS change,
           old, new
    FROM old FULL JOIN new ON new.image_id = old.image_id AND new.label_id = old.label_id
    WHERE old.image_id IS NULL OR new.image_id IS NULL
       OR (old.num_yes, old.num_no, old.probability, old.confidence, old.status)
          IS DISTINCT FROM (new.num_yes, new.num_no, new.probability, new.confidence, new.status)
)
"""
COUNT_CHANGES = "SELECT change, count(*) FROM joined GROUP BY change"

# The end of both change listings: the label's name as of the release the row comes from
# (the old one for a removal), and no picture revoked since.
_CHANGES_FROM = """
FROM joined
LEFT JOIN exports_releaselabel names
    ON names.label_id = joined.label_id
   AND names.release_id = CASE WHEN joined.change = 'removed' THEN %s ELSE %s END
WHERE NOT EXISTS (SELECT 1 FROM exports_revocation r WHERE r.image_uuid = joined.uuid)
"""


CHANGE_LINES = (
    """
SELECT json_build_object(
    'kind', 'pair', 'change', joined.change, 'uuid', joined.uuid, 'label', names.label, 'sublabel', names.sublabel,
    'before', CASE WHEN joined.change = 'added' THEN NULL ELSE json_build_object(
        'num_yes', (joined.old).num_yes, 'num_no', (joined.old).num_no,
        'probability', (joined.old).probability, 'confidence', (joined.old).confidence,
        'status', (joined.old).status) END,
    'after', CASE WHEN joined.change = 'removed' THEN NULL ELSE json_build_object(
        'num_yes', (joined.new).num_yes, 'num_no', (joined.new).num_no,
        'probability', (joined.new).probability, 'confidence', (joined.new).confidence,
        'status', (joined.new).status) END
)::text"""
    + _CHANGES_FROM
    + "ORDER BY joined.uuid, joined.label_id"
)


OUTLINE_CHANGE_LINES = (
    """
SELECT json_build_object(
    'kind', 'outline', 'change', joined.change, 'uuid', joined.uuid,
    'label', names.label, 'sublabel', names.sublabel, 'outline', joined.annotation_id,
    'before', CASE WHEN joined.change = 'added' THEN NULL ELSE json_build_object(
        'revision', (joined.old).revision, 'shapes', cardinality((joined.old).export_coco)) END,
    'after', CASE WHEN joined.change = 'removed' THEN NULL ELSE json_build_object(
        'revision', (joined.new).revision, 'shapes', cardinality((joined.new).export_coco)) END
)::text"""
    + _CHANGES_FROM
    + "ORDER BY joined.uuid, joined.label_id, joined.annotation_id"
)


def _change_counts(difference: str, old_id: int, new_id: int, cursor) -> dict[str, int]:
    sql = compose(Sql(difference, [old_id, new_id]), COUNT_CHANGES)
    cursor.execute(sql.text, sql.params)
    return {"added": 0, "removed": 0, "changed": 0, **dict(cursor.fetchall())}


def difference_counts(old_id: int, new_id: int, *, cursor) -> dict[str, int]:
    """Pairs added, removed and changed, as the release was cut (revocations come later)."""
    return _change_counts(DIFFERENCE, old_id, new_id, cursor)


def outline_difference_counts(old_id: int, new_id: int, *, cursor) -> dict[str, int]:
    """Outlines added, removed and changed, as the release was cut."""
    return _change_counts(OUTLINE_DIFFERENCE, old_id, new_id, cursor)


def changes_sql(old: Release | None, new: Release) -> list[Sql]:
    """The changes from `old` to `new` (from nothing when `old` is None: everything is
    added), one JSON object per line: each pair added, removed or changed, then each
    outline added, removed or changed (a new revision, or other shapes)."""
    old_id = old.pk if old is not None else None  # release_id = NULL matches no row
    return [
        compose(Sql(DIFFERENCE, [old_id, new.pk]), Sql(CHANGE_LINES, [old_id, new.pk])),
        compose(
            Sql(OUTLINE_DIFFERENCE, [old_id, new.pk]),
            Sql(OUTLINE_CHANGE_LINES, [old_id, new.pk]),
        ),
    ]


@transaction.atomic
def cut_release(
    slug: str,
    query: LabelQuery,
    *,
    min_probability: float = 0.0,
    min_confidence: float = 0.0,
    status: str = PairFilter.VALIDATED,
    notes: str = "",
) -> Release:
    """Freeze what `/v1/export?query=…` returns now as the release `slug`.

    ReleaseError when the id is unsafe or taken, or nothing matches.
    """
    if status not in (PairFilter.VALIDATED, PairFilter.ANY):
        raise ReleaseError(
            f"a release chooses its images by validated or any pairs, not {status!r}"
        )
    if len(slug) > SLUG_MAX_LENGTH or not re.fullmatch(SLUG_PATTERN, slug):
        raise ReleaseError(
            f"{slug!r} cannot be a release id: lower-case letters and digits joined by single "
            f"hyphens or dots, at most {SLUG_MAX_LENGTH} characters (e.g. 2027-01)"
        )
    with connection.cursor() as cursor:
        if len(connection.atomic_blocks) == 1:  # our own transaction: one snapshot for it all
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT now()")
        (taken,) = cursor.fetchone()
        if Release.objects.filter(slug=slug).exists():
            raise ReleaseError(f"a release {slug} exists already; releases are never replaced")
        previous = Release.objects.order_by("-created", "-id").first()
        try:
            release = Release.objects.create(
                slug=slug,
                snapshot=taken,
                query=str(query),
                min_probability=min_probability,
                min_confidence=min_confidence,
                status=status,
                named_label_ids=query.named_label_ids,
                notes=notes,
                previous=previous,
            )
        except IntegrityError:  # cut a moment ago by someone else; this cut rolls back
            raise ReleaseError(f"a release {slug} exists already") from None
        # The images: those the query matches by their `status` pairs (settled ones by
        # default, as every export chooses). Each is frozen with every pair past the
        # thresholds, open ones too, with its status: downloads of it then choose.
        thresholds = {"min_probability": min_probability, "min_confidence": min_confidence}
        export = Export(query=query, status=PairFilter.ANY, **thresholds)
        chosen_by = Export(query=query, status=status, **thresholds)
        sql = entries_sql(export, release.pk, chosen_by)
        cursor.execute(sql.text, sql.params)
        cursor.execute(LABELS_SQL, [release.pk, release.pk])
        cursor.execute(
            "SELECT count(DISTINCT image_id), count(label_id) FROM exports_releaseentry "
            "WHERE release_id = %s",
            [release.pk],
        )
        release.images, release.pairs = cursor.fetchone()
        if not release.images:
            raise ReleaseError("the query matches no public image; a release needs one")
        sql = outlines_sql(export, release.pk)
        cursor.execute(sql.text, sql.params)
        release.outlines = cursor.rowcount
        # The folders the tar used at this moment, from the same snapshot.
        folders = folder_names(Snapshot(connection.connection, taken))
        labels = list(release.labels.all())
        for label in labels:
            label.folder = folders[label.label_id]
        ReleaseLabel.objects.bulk_update(labels, ["folder"])
        about = {"release": release.slug, "snapshot": taken.isoformat()}
        release.quality = quality.measure(
            quality.release_pairs(release.pk), cursor, about, quality.release_outlines(release.pk)
        )
        if previous is not None:
            counts = difference_counts(previous.pk, release.pk, cursor=cursor)
            release.added, release.removed, release.changed = (
                counts["added"],
                counts["removed"],
                counts["changed"],
            )
            counts = outline_difference_counts(previous.pk, release.pk, cursor=cursor)
            release.outlines_added, release.outlines_removed, release.outlines_changed = (
                counts["added"],
                counts["removed"],
                counts["changed"],
            )
    release.master_bytes, release.missing_files = _master_sizes(release)
    release.save()
    return release


def _master_sizes(release: Release) -> tuple[int, int]:
    """The master files' sizes added up (and how many are missing), read from storage."""
    storage = public_storage()
    total = missing = 0
    images = (
        Image.objects.filter(pk__in=release.entries.values("image_id"))
        .values_list("uuid", "format", "publication")
        .order_by("pk")
    )
    for uuid, image_format, publication in images.iterator(chunk_size=2000):
        extension = "png" if image_format == Image.Format.PNG else "jpg"
        try:
            total += storage.size(file_name(uuid, "master", extension, publication))
        except OSError:
            missing += 1
    return total, missing


def release_export(release: Release, image_url_prefix: str, **packaging) -> Export:
    """The export that serves a release's frozen rows, packaged as asked (status, negatives,
    layout, size, split: see Export)."""
    return Export(
        query=ReleasedQuery(release.query, list(release.named_label_ids)),
        min_probability=release.min_probability,
        min_confidence=release.min_confidence,
        image_url_prefix=image_url_prefix,
        release_id=release.pk,
        release_slug=release.slug,
        **packaging,
    )


# --- Revocations ----------------------------------------------------------------------

REMOVING = {"reject", "quarantine", "hide"}


def reason_for(image: Image, action: str) -> str:
    """The reason class of a takedown: a copyright report wins, then reports, then moderation.

    No path of the site lets a donor withdraw a picture yet, so `withdrawal` is
    never chosen here; the class exists for the day one does.
    """
    if image.reports.filter(reason="copyright").exists():
        return RevocationReason.COPYRIGHT
    if action == "hide":
        return RevocationReason.REPORTS
    return RevocationReason.MODERATION


def _file_sha256(name: str) -> str:
    digest = hashlib.sha256()
    try:
        with public_storage().open(name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def revoke(image: Image, action: str) -> Revocation | None:
    """Record that a public picture was taken down (once; a revocation is never lifted).

    Runs inside the moderation decision, before its files leave the public store,
    so the display and thumbnail copies can still be hashed; the master's hash is
    the one stored at ingestion.
    """
    if action not in REMOVING:
        return None
    existing = Revocation.objects.filter(image_uuid=image.uuid).first()
    if existing is not None:
        return existing
    return Revocation.objects.create(
        image_uuid=image.uuid,
        image_id=image.pk,
        master_sha256=image.master_sha256,
        display_sha256=_file_sha256(image.file_name("display", public=True)),
        thumb_sha256=_file_sha256(image.file_name("thumb", public=True)),
        reason=reason_for(image, action),
    )


def revocation_lines() -> Iterator[bytes]:
    """revocations.jsonl: one JSON object per line, oldest first, in batches."""
    for revocation in Revocation.objects.order_by("id").iterator(chunk_size=2000):
        yield (json.dumps(revocation.as_json()) + "\n").encode()


def revoked_hashes() -> set[str]:
    hashes: set[str] = set()
    for revocation in Revocation.objects.iterator(chunk_size=2000):
        hashes.update(revocation.hashes.values())
    return hashes
