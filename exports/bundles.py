"""The image tar: images, their labels and a MANIFEST of sha256s under one folder.

Layouts (single: one folder per class; multi: each image once with multi-hot
targets), sizes (the stored rendition) and splits (a first folder per split)
are chosen by the Export; the tar is framed by hand so it streams.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from uuid import UUID

from django.utils.text import slugify

from donations.models import Image
from donations.storage import file_name, public_storage

from . import quality
from .export import SIZES, Export, ExportError, Layout, Snapshot, snapshot_for
from .query import Sql, compose
from .renderers import crlf, csv_header, pair_lines, used_labels

FILE_CHUNK_BYTES = 1024 * 1024


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
        """), '{}') """,
        export.pictures_and_pairs("LEFT JOIN"),
        " GROUP BY img.id ORDER BY img.id",
    )


# --- The ImageFolder tar ----------------------------------------------------------------

TAR_BLOCK = tarfile.BLOCKSIZE
TAR_RECORD = tarfile.RECORDSIZE


class TarStream:
    """Tar framing written by hand, so members stream without a seekable file."""

    def __init__(self, mtime: float):
        self.mtime = int(mtime)
        self.written = 0

    def _out(self, data: bytes) -> bytes:
        self.written += len(data)
        return data

    def _header(self, name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8")

    def member_bytes(self, name: str, size: int) -> int:
        """How many bytes member(name, size, …) writes: its header, data and padding."""
        return len(self._header(name, size)) + size + (-size % TAR_BLOCK)

    @staticmethod
    def end_bytes(written: int) -> int:
        """How many bytes end() adds after `written` bytes of members."""
        trailer = 2 * TAR_BLOCK
        return trailer + (-(written + trailer) % TAR_RECORD)

    def member(self, name: str, size: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
        yield self._out(self._header(name, size))
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


def hashed(chunks: Iterator[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


@dataclass
class TarCounts:
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


class Spool:
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

    def member(self, archive: TarStream, folder: str, hashes) -> Iterator[bytes]:
        size = self.file.tell()
        self.file.seek(0)
        digest = hashlib.sha256()
        chunks = hashed(iter(partial(self.file.read, FILE_CHUNK_BYTES), b""), digest)
        yield from archive.member(f"{folder}/{self.name}", size, chunks)
        hashes.write(f"{digest.hexdigest()}  {self.name}\n".encode())


def csv_line(cells: list) -> bytes:
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
    with snapshot_for(export) as snap, tempfile.TemporaryFile() as hashes, ExitStack() as files:
        archive = TarStream(snap.taken.timestamp())
        folder = archive_folder(export, snap.taken)
        counts = TarCounts()
        names, classes = class_names(export, snap)
        if export.layout == Layout.MULTI:
            split = ["split"] if export.split else []
            header = ["file", "uuid", *split, *(names[label_id] for label_id in classes)]
            spools = [
                Spool(
                    "labels.csv", files.enter_context(tempfile.TemporaryFile()), csv_line(header)
                ),
                Spool("labels.jsonl", files.enter_context(tempfile.TemporaryFile())),
            ]
        else:
            header = ["uuid", "reason", "labels"]
            spools = [
                Spool(
                    "skipped.csv", files.enter_context(tempfile.TemporaryFile()), csv_line(header)
                )
            ]
        yield from _image_members(
            export, snap, archive, folder, names, classes, spools, counts, hashes
        )
        yield from _pairs_csv_member(export, snap, archive, folder, counts, hashes)
        for spool in spools:
            yield from spool.member(archive, folder, hashes)
        yield from quality_members(export, snap, archive, folder, hashes)
        yield from manifest_member(
            archive, folder, manifest_head(export, snap.taken, counts), hashes
        )
        yield archive.end()


def released_folders(snap: Snapshot, release_id: int) -> dict[int, str]:
    """folder_names as they were when the release was cut."""
    sql = Sql(
        "SELECT label_id, folder FROM exports_releaselabel WHERE release_id = %s", [release_id]
    )
    return dict(snap.rows(sql))


def used_classes(export: Export, snap: Snapshot) -> list[int]:
    """The labels of the export's passing pairs: the classes of a query that asks for none
    (`~cat`)."""
    sql = compose(used_labels(export), " ORDER BY label_id")
    return [label_id for (label_id,) in snap.rows(sql)]


@dataclass
class Picture:
    """One image of an image-bundling export (tar, parquet, hf, webdataset), from its row."""

    uuid: UUID
    extension: str
    master_sha256: str
    publication: str
    split: str | None
    positives: list[int]
    negatives: list[int]
    label_id: int | None = None  # layout=single: its one class

    def targets(self, classes: list[int]) -> list[int | None]:
        """Multi-hot over `classes`: 1 positive, 0 verified negative, None when not known."""
        positive, negative = set(self.positives), set(self.negatives)
        return [1 if c in positive else 0 if c in negative else None for c in classes]


def pictures(export, snap, names, classes, skipped: Spool | None, counts) -> Iterator[Picture]:
    """The export's images in image order, counted in `counts`. With layout=single only
    those with exactly one positive label among `classes` (their `label_id`); the others
    are written to `skipped` (skipped.csv) with the reason."""
    wanted = set(classes)
    for row in snap.rows(tar_images(export)):
        uuid, image_format, master_sha256, publication, split, positives, negatives = row
        counts.images += 1
        extension = "png" if image_format == Image.Format.PNG else "jpg"
        picture = Picture(uuid, extension, master_sha256, publication, split, positives, negatives)
        if export.layout == Layout.SINGLE:
            candidates = [label_id for label_id in positives if label_id in wanted]
            if len(candidates) != 1:
                reason = "no positive label" if not candidates else "several positive labels"
                labels = " ".join(names[label_id] for label_id in candidates)
                skipped.write(csv_line([str(uuid), reason, labels]))
                counts.skipped += 1
                continue
            picture.label_id = candidates[0]
        yield picture


def rendition_name(export: Export, picture: Picture) -> str:
    """The storage name of the picture's file in the export's chosen size."""
    return file_name(picture.uuid, SIZES[export.size], picture.extension, picture.publication)


def open_rendition(export: Export, picture: Picture):
    """The stored file of the picture's chosen size, open for reading; None when missing."""
    try:
        return public_storage().open(rendition_name(export, picture), "rb")
    except OSError:
        return None


def _image_members(
    export, snap, archive, folder, names, classes, spools, counts, hashes
) -> Iterator[bytes]:
    single = export.layout == Layout.SINGLE
    for picture in pictures(export, snap, names, classes, spools[0] if single else None, counts):
        uuid, extension, split = picture.uuid, picture.extension, picture.split
        under = f"{split}/" if split else ""  # a split is the first folder: train/dog/…
        if single:
            path = f"{under}{names[picture.label_id]}/{uuid}.{extension}"
        else:
            path = f"{under}images/{uuid}.{extension}"
        handle = open_rendition(export, picture)
        if handle is None:
            counts.missing += 1
            hashes.write(f"# missing, not in the archive: {path}\n".encode())
            continue
        digest = hashlib.sha256()
        with handle:
            chunks = iter(partial(handle.read, FILE_CHUNK_BYTES), b"")
            yield from archive.member(f"{folder}/{path}", handle.size, hashed(chunks, digest))
        hashes.write(f"{digest.hexdigest()}  {path}\n".encode())
        counts.files += 1
        if SIZES[export.size] == "master" and digest.hexdigest() != picture.master_sha256:
            counts.mismatched += 1
            hashes.write(f"# differs from the recorded master sha256: {path}\n".encode())
        if not single:
            _write_targets(spools, path, picture, names, classes)


def _write_targets(spools, path: str, picture: Picture, names, classes) -> None:
    """A multi-hot row: 1 positive, 0 verified negative, empty when not known."""
    targets = picture.targets(classes)
    split = picture.split
    labels_csv, labels_jsonl = spools
    cells = ["" if target is None else target for target in targets]
    labels_csv.write(csv_line([path, str(picture.uuid), *([split] if split else []), *cells]))
    entry = {
        "file": path,
        "uuid": str(picture.uuid),
        **({"split": split} if split else {}),
        "labels": [names[label_id] for label_id in picture.positives],
        "negatives": [names[label_id] for label_id in picture.negatives],
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
    chunks = itertools.chain([header], crlf(snap.copy_lines(pair_lines(export))))
    yield from archive.member(f"{folder}/pairs.csv", len(header) + size, hashed(chunks, digest))
    hashes.write(f"{digest.hexdigest()}  pairs.csv\n".encode())


def quality_members(export, snap, archive, folder, hashes) -> Iterator[bytes]:
    """QUALITY.md and quality.json: a release's as measured when it was cut, any other
    export's measured on its snapshot."""
    report = quality.of_export(export, snap)
    for name, content in quality.members(report) if report else []:
        yield from archive.member(f"{folder}/{name}", len(content), iter([content]))
        hashes.write(f"{hashlib.sha256(content).hexdigest()}  {name}\n".encode())


def parameter_lines(export: Export, taken: datetime) -> list[str]:
    """The MANIFEST's lines that say what was exported, and from which snapshot."""
    lines = [
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
    ]
    if export.release_id is not None:
        lines[0:0] = [
            f"# release: {export.release_slug} (minus the pictures revoked since, "
            "listed in /v1/revocations.jsonl)"
        ]
    return lines


def manifest_head(export: Export, taken: datetime, counts: TarCounts) -> bytes:
    layout = (
        "images/<uuid>.<ext>, multi-hot targets in labels.csv and labels.jsonl"
        if export.layout == Layout.MULTI
        else "<label>/<uuid>.<ext> (ImageFolder), other images in skipped.csv"
    )
    lines = [
        f"# ImageMonkey dataset export, layout={export.layout}: {layout}",
        *parameter_lines(export, taken),
        f"# images: {counts.images}",
        f"# image files: {counts.files}",
        f"# images skipped, in skipped.csv: {counts.skipped}",
        f"# pairs.csv rows: {counts.pairs}",
        f"# images whose file is missing: {counts.missing}",
        f"# files whose sha256 differs from the recorded master: {counts.mismatched}",
        CHECK_LINE,
    ]
    return ("\n".join(lines) + "\n").encode()


CHECK_LINE = "# check every file, in this folder, with: grep -v '^#' MANIFEST | sha256sum -c"


def manifest_member(archive: TarStream, folder: str, head: bytes, hashes) -> Iterator[bytes]:
    """The MANIFEST: `head`, then the sha256 lines gathered in the temporary file `hashes`."""
    body_size = hashes.tell()
    hashes.seek(0)
    body = iter(partial(hashes.read, FILE_CHUNK_BYTES), b"")
    yield from archive.member(
        f"{folder}/MANIFEST", len(head) + body_size, itertools.chain([head], body)
    )


def class_names(export: Export, snap: Snapshot) -> tuple[dict[int, str], list[int]]:
    """Every label's folder name (as it was when a release was cut), and the export's
    classes: the labels its query names, or for one that names none (`~cat`) those of
    its passing pairs."""
    if export.release_id is None:
        names = folder_names(snap)
    else:
        names = released_folders(snap, export.release_id)
    return names, export.query.requested_label_ids or used_classes(export, snap)
