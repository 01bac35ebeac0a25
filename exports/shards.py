"""The formats for training code: parquet, hf (a Hugging Face `datasets` folder) and webdataset.

All three carry the image bytes (the chosen `size`) with their labels, read from one
snapshot in image order, with flat memory:

- **parquet**: one Parquet file, streamed as it is written: rows are gathered into a
  row group of at most ROW_GROUP_BYTES of images, which pyarrow writes and the
  response sends before the next one is read; the footer comes last. Columns: uuid,
  image ({bytes, path}, the `datasets` Image form), split (when asked for), and
  label (layout=single: the class index) or labels, negatives and target
  (layout=multi: multi-hot over the classes, null when not known). The features
  are described in the schema's `huggingface` metadata, so `datasets` reads the
  image and class columns as Image and ClassLabel.
- **hf**: a tar of one folder that `datasets.load_dataset(folder)` loads: Parquet
  shards of the same columns in `data/<split>-NNNNN.parquet` (one shard set per
  split: train, validation, test; train alone without a split), a dataset card
  README.md (licence CC0, the query, the counts, the quality summary), QUALITY.md,
  quality.json, skipped.csv (layout=single) and a MANIFEST of sha256s.
- **webdataset**: a tar of one folder with tar shards `[<split>/]shard-NNNNNN.tar`
  that `webdataset.WebDataset` reads: per image `<uuid>.jpg|png`, `<uuid>.json`
  (labels, negatives, target) and, for layout=single, `<uuid>.cls` (the class
  index into classes.txt); plus the same report, skipped.csv and MANIFEST.

A tar must say a member's size before its bytes. A webdataset shard's size is known
in advance (the files' sizes, the small .json and .cls files, the headers), so its
samples are planned and the shard streams as it is read. A Parquet shard's size is
known only once written, so each hf shard is written to a temporary file (disk, not
memory) and sent when it reaches EXPORT_SHARD_BYTES. No shard is larger than that,
unless a single image is.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings

from donations.storage import public_storage

from . import quality
from .bundles import (
    FILE_CHUNK_BYTES,
    Picture,
    Spool,
    TarCounts,
    TarStream,
    archive_folder,
    class_names,
    csv_line,
    hashed,
    manifest_member,
    open_rendition,
    parameter_lines,
    pictures,
    quality_members,
    rendition_name,
)
from .export import Export, ExportError, Layout, snapshot_for

# Image bytes gathered before a Parquet row group is written: memory per export.
ROW_GROUP_BYTES = 32 * 1024 * 1024
ROW_GROUP_ROWS = 1000
# Hugging Face's names for our splits; without a split everything is "train".
HF_SPLITS = {"train": "train", "val": "validation", "test": "test", None: "train"}
LICENSE = "CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/)"


class _Columns:
    """The Parquet columns of an export: their schema, and a row group being gathered."""

    def __init__(self, export: Export, names: dict[int, str], classes: list[int], split: bool):
        self.single = export.layout == Layout.SINGLE
        self.classes = classes
        self.names = names
        self.index = {label_id: n for n, label_id in enumerate(classes)}
        self.split = split
        text, image = pa.string(), pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        fields = [("uuid", text), ("image", image)]
        features: dict = {"uuid": _value("string"), "image": {"_type": "Image"}}
        if split:
            fields.append(("split", text))
            features["split"] = _value("string")
        if self.single:
            fields.append(("label", pa.int64()))
            features["label"] = {"names": self.class_names, "_type": "ClassLabel"}
        else:
            fields += [
                ("labels", pa.list_(text)),
                ("negatives", pa.list_(text)),
                ("target", pa.list_(pa.int8())),
            ]
            features["labels"] = features["negatives"] = _list_of("string")
            features["target"] = _list_of("int8")
        metadata = {"huggingface": json.dumps({"info": {"features": features}})}
        self.schema = pa.schema(fields, metadata=metadata)
        # The pictures are JPEG or PNG already: stored as they are, with no dictionary (it
        # would hash every picture), no compression and no min/max statistics (a copy of
        # the largest and smallest picture in every page); the small columns get all three.
        lists = {"labels", "negatives", "target"}
        small = [
            "image.path" if name == "image" else f"{name}.list.element" if name in lists else name
            for name, _ in fields
        ]
        self.options = {
            "use_dictionary": small,
            "write_statistics": small,
            "compression": {**dict.fromkeys(small, "snappy"), "image.bytes": "none"},
        }
        self.limit = min(ROW_GROUP_BYTES, settings.EXPORT_SHARD_BYTES)
        self._clear()

    @property
    def class_names(self) -> list[str]:
        return [self.names[label_id] for label_id in self.classes]

    def _clear(self) -> None:
        self.rows = {name: [] for name in self.schema.names}
        self.bytes = 0

    def add(self, picture: Picture, content: bytes) -> None:
        rows = self.rows
        rows["uuid"].append(str(picture.uuid))
        rows["image"].append({"bytes": content, "path": f"{picture.uuid}.{picture.extension}"})
        if self.split:
            rows["split"].append(picture.split)
        if self.single:
            rows["label"].append(self.index[picture.label_id])
        else:
            rows["labels"].append([self.names[label_id] for label_id in picture.positives])
            rows["negatives"].append([self.names[label_id] for label_id in picture.negatives])
            rows["target"].append(picture.targets(self.classes))
        self.bytes += len(content)

    @property
    def full(self) -> bool:
        return self.bytes >= self.limit or len(self.rows["uuid"]) >= ROW_GROUP_ROWS

    def __len__(self) -> int:
        return len(self.rows["uuid"])

    def take(self) -> pa.Table:
        table = pa.table(self.rows, schema=self.schema)
        self._clear()
        return table


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


def _list_of(dtype: str) -> dict:
    return {"feature": _value(dtype), "_type": "List"}


class _Drain:
    """A write-only file for pyarrow whose bytes the response takes as they come."""

    closed = False

    def __init__(self):
        self.buffer = bytearray()
        self.position = 0

    def write(self, data) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class _Discard:
    """skipped.csv for the one-file parquet, which has nowhere to list skipped images."""

    def write(self, line: bytes) -> None:
        pass


def _contents(export: Export, snap, names, classes, skipped, counts) -> Iterator:
    """(picture, its image file open) for each image whose file exists; missing ones counted."""
    for picture in pictures(export, snap, names, classes, skipped, counts):
        handle = open_rendition(export, picture)
        if handle is None:
            counts.missing += 1
            continue
        with handle:
            yield picture, handle
        counts.files += 1


def render_parquet(export: Export) -> Iterator[bytes]:
    """One Parquet file with a split column (when split), streamed row group by row group.

    With layout=single the images without exactly one positive class are left out; the
    footer's `imagemonkey` metadata counts them, and holds the query and the snapshot.
    """
    with snapshot_for(export) as snap:
        names, classes = class_names(export, snap)
        columns = _Columns(export, names, classes, split=export.split is not None)
        drain, counts = _Drain(), TarCounts()
        writer = pq.ParquetWriter(drain, columns.schema, **columns.options)
        for picture, handle in _contents(export, snap, names, classes, _Discard(), counts):
            columns.add(picture, handle.read())
            if columns.full:
                writer.write_table(columns.take())
                yield drain.take()
        if len(columns):
            writer.write_table(columns.take())
        about = {
            "query": str(export.query),
            "snapshot": snap.taken.isoformat(),
            "release": export.release_slug,
            "license": LICENSE,
            "images": counts.images,
            "rows": counts.files,
            "skipped": counts.skipped,
            "missing": counts.missing,
        }
        writer.add_key_value_metadata({"imagemonkey": json.dumps(about)})
        writer.close()
        yield drain.take()


class _Shards:
    """The shards of one split, written to temporary files and sent when full."""

    def __init__(self, files: ExitStack, pattern: str):
        self.files = files
        self.pattern = pattern  # e.g. "data/train-{:05d}.parquet"
        self.number = 0
        self.file = None

    def open(self):
        # Closed by send(), or with the export's ExitStack when the download stops early.
        self.file = self.files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
        return self.file

    def send(self, archive: TarStream, folder: str, hashes) -> Iterator[bytes]:
        """The shard written so far as a member of the archive; the next one starts empty."""
        name = self.pattern.format(self.number)
        size = self.file.tell()
        self.file.seek(0)
        digest = hashlib.sha256()
        chunks = hashed(iter(partial(self.file.read, FILE_CHUNK_BYTES), b""), digest)
        yield from archive.member(f"{folder}/{name}", size, chunks)
        hashes.write(f"{digest.hexdigest()}  {name}\n".encode())
        self.file.close()
        self.file = None
        self.number += 1


class _ParquetShards(_Shards):
    def __init__(self, files, pattern, columns: _Columns):
        super().__init__(files, pattern)
        self.columns = columns
        self.writer = None

    def write(self, table: pa.Table, archive, folder, hashes) -> Iterator[bytes]:
        """Write a row group; first send the shard if the row group would take it past
        EXPORT_SHARD_BYTES."""
        rows_bytes = table.nbytes
        if self.writer is not None and self.file.tell() + rows_bytes > settings.EXPORT_SHARD_BYTES:
            yield from self.close(archive, folder, hashes)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.open(), self.columns.schema, **self.columns.options)
        self.writer.write_table(table)

    def close(self, archive, folder, hashes) -> Iterator[bytes]:
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        yield from self.send(archive, folder, hashes)


def render_hf(export: Export) -> Iterator[bytes]:
    """The `datasets` folder: data/<split>-NNNNN.parquet shards, then the dataset card, the
    quality report, skipped.csv and the MANIFEST."""
    with snapshot_for(export) as snap, tempfile.TemporaryFile() as hashes, ExitStack() as files:
        archive = TarStream(snap.taken.timestamp())
        folder = archive_folder(export, snap.taken)
        names, classes = class_names(export, snap)
        counts = TarCounts()
        skipped = _skipped(files)
        split_names = dict.fromkeys(HF_SPLITS.values())  # train, validation, test in order
        columns = {name: _Columns(export, names, classes, split=False) for name in split_names}
        shards = {
            name: _ParquetShards(files, f"data/{name}-{{:05d}}.parquet", columns[name])
            for name in split_names
        }
        images = dict.fromkeys(split_names, 0)
        for picture, handle in _contents(export, snap, names, classes, skipped, counts):
            name = HF_SPLITS[picture.split]
            columns[name].add(picture, handle.read())
            images[name] += 1
            if columns[name].full:
                yield from shards[name].write(columns[name].take(), archive, folder, hashes)
        for name in split_names:
            if len(columns[name]):
                yield from shards[name].write(columns[name].take(), archive, folder, hashes)
            yield from shards[name].close(archive, folder, hashes)
        report = quality.of_export(export, snap)
        sent = [name for name in split_names if shards[name].number]
        card = _dataset_card(export, snap.taken, counts, images, sent, columns["train"], report)
        yield from archive.member(f"{folder}/README.md", len(card), iter([card]))
        hashes.write(f"{hashlib.sha256(card).hexdigest()}  README.md\n".encode())
        yield from _endings(export, snap, archive, folder, hashes, counts, skipped, "hf")


def _skipped(files: ExitStack) -> Spool:
    header = csv_line(["uuid", "reason", "labels"])
    return Spool("skipped.csv", files.enter_context(tempfile.TemporaryFile()), header)


def _dataset_card(export, taken, counts, images, splits, columns, report) -> bytes:
    """README.md: YAML that tells `datasets` the licence and the splits' files, then words."""
    title = f"ImageMonkey: {export.release_slug or export.query}"
    yaml = [
        "---",
        "license: cc0-1.0",
        f"pretty_name: {json.dumps(title)}",
        "task_categories:",
        "- image-classification",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for name in splits:
        yaml += [f"  - split: {name}", f"    path: data/{name}-*.parquet"]
    yaml.append("---")
    kind = "one class per image (label)" if columns.single else "multi-hot (labels, target)"
    lines = [
        f"# {title}",
        "",
        "Photos donated to ImageMonkey and labelled by its crowd, under the licence "
        f"{LICENSE}: anyone may use them for anything, without asking.",
        "",
        "## What this is",
        "",
        *(f"- {line[2:]}" for line in parameter_lines(export, taken)),
        f"- classes: {', '.join(columns.class_names) or 'none'}; targets: {kind}",
        f"- images: {counts.files}"
        + "".join(f", {name} {images[name]}" for name in images if images[name]),
        f"- images left out: {counts.skipped} without exactly one class (skipped.csv), "
        f"{counts.missing} whose file is missing",
        "",
        "```python",
        "import datasets",
        'dataset = datasets.load_dataset("path/to/this/folder")',
        "```",
        "",
        "## Label quality",
        "",
        "Per label: the pairs in this dataset and the precision of validated pairs estimated "
        "from gold (known answers), with a 95 % interval. QUALITY.md and quality.json have "
        "the whole report.",
        "",
        "| label | pairs | validated | rejected | precision of validated |",
        "|---|---:|---:|---:|---|",
    ]
    for row in report.get("labels", []):
        name = f"{row['label']}/{row['sublabel']}" if row["sublabel"] else row["label"]
        lines.append(
            f"| {name.replace('|', chr(92) + '|')} | {row['pairs']} | {row['validated']} | "
            f"{row['rejected']} | {quality.share(row['validated_precision'])} |"
        )
    return ("\n".join(yaml + lines) + "\n").encode()


def _endings(export, snap, archive, folder, hashes, counts, skipped, kind) -> Iterator[bytes]:
    """The quality report, skipped.csv (layout=single) and the MANIFEST, then the tar's end."""
    yield from quality_members(export, snap, archive, folder, hashes)
    if export.layout == Layout.SINGLE:
        yield from skipped.member(archive, folder, hashes)
    head = [
        f"# ImageMonkey dataset export, format={kind}, layout={export.layout}",
        *parameter_lines(export, snap.taken),
        f"# images: {counts.images}",
        f"# images in the shards: {counts.files}",
        f"# images skipped, in skipped.csv: {counts.skipped}",
        f"# images whose file is missing: {counts.missing}",
        "# check every file, in this folder, with: grep -v '^#' MANIFEST | sha256sum -c",
    ]
    yield from manifest_member(archive, folder, ("\n".join(head) + "\n").encode(), hashes)
    yield archive.end()


class _Sample:
    """A webdataset sample planned into a shard: its files' names, sizes and contents."""

    def __init__(self, key: str, picture: Picture, image_size: int, meta: bytes, cls: bytes):
        self.picture = picture
        self.members = [(f"{key}.{picture.extension}", image_size, None)]
        self.members.append((f"{key}.json", len(meta), meta))
        if cls:
            self.members.append((f"{key}.cls", len(cls), cls))


class _TarShards:
    """The webdataset shards of one split, each streamed as a member of the archive.

    A shard's size must be known before its first byte, and every part of it is known
    before it is read: the files' sizes (from storage), the small .json and .cls files,
    and the tar headers. So samples are planned (rows and sizes, not bytes) until the next
    would take the shard past EXPORT_SHARD_BYTES, then the shard is streamed, files read
    as it goes; nothing waits on disk. A file that changes size meanwhile ends the download
    (ExportError), as in the tar.
    """

    def __init__(self, export: Export, pattern: str, mtime: float):
        self.export = export
        self.pattern = pattern  # e.g. "train/shard-{:06d}.tar"
        self.mtime = mtime
        self.number = 0
        self.planned: list[_Sample] = []
        self.size = 0

    def add(self, sample: _Sample, archive, folder, hashes) -> Iterator[bytes]:
        """Plan one sample; first send the shard if the sample would take it past the limit."""
        framing = TarStream(self.mtime)
        needed = sum(framing.member_bytes(name, size) for name, size, _ in sample.members)
        full = self.size + needed + TarStream.end_bytes(self.size + needed)
        if self.planned and full > settings.EXPORT_SHARD_BYTES:
            yield from self.close(archive, folder, hashes)
        self.planned.append(sample)
        self.size += needed

    def close(self, archive, folder, hashes) -> Iterator[bytes]:
        """Stream the planned samples as one shard."""
        if not self.planned:
            return
        name = self.pattern.format(self.number)
        size = self.size + TarStream.end_bytes(self.size)
        digest = hashlib.sha256()
        chunks = hashed(self._shard(), digest)
        yield from archive.member(f"{folder}/{name}", size, chunks)
        hashes.write(f"{digest.hexdigest()}  {name}\n".encode())
        self.planned, self.size = [], 0
        self.number += 1

    def _shard(self) -> Iterator[bytes]:
        inner = TarStream(self.mtime)
        storage = public_storage()
        for sample in self.planned:
            for name, size, content in sample.members:
                if content is not None:
                    yield from inner.member(name, size, iter([content]))
                    continue
                try:
                    handle = storage.open(rendition_name(self.export, sample.picture), "rb")
                except OSError:
                    raise ExportError(f"{name} went missing while it was being archived") from None
                with handle:
                    chunks = iter(partial(handle.read, FILE_CHUNK_BYTES), b"")
                    yield from inner.member(name, size, chunks)
        yield inner.end()


def render_webdataset(export: Export) -> Iterator[bytes]:
    """webdataset shards, then classes.txt, the quality report, skipped.csv and MANIFEST."""
    with snapshot_for(export) as snap, tempfile.TemporaryFile() as hashes, ExitStack() as files:
        archive = TarStream(snap.taken.timestamp())
        folder = archive_folder(export, snap.taken)
        names, classes = class_names(export, snap)
        index = {label_id: n for n, label_id in enumerate(classes)}
        counts = TarCounts()
        skipped = _skipped(files)
        storage = public_storage()
        shards: dict[str | None, _TarShards] = {}
        for picture in pictures(export, snap, names, classes, skipped, counts):
            try:
                image_size = storage.size(rendition_name(export, picture))
            except OSError:
                counts.missing += 1
                continue
            counts.files += 1
            split = picture.split
            if split not in shards:
                under = f"{split}/" if split else ""
                pattern = f"{under}shard-{{:06d}}.tar"
                shards[split] = _TarShards(export, pattern, snap.taken.timestamp())
            key = str(picture.uuid)
            entry = {
                "uuid": key,
                **({"split": split} if split else {}),
                "labels": [names[label_id] for label_id in picture.positives],
                "negatives": [names[label_id] for label_id in picture.negatives],
                "target": picture.targets(classes),
            }
            cls = b"" if picture.label_id is None else str(index[picture.label_id]).encode()
            sample = _Sample(key, picture, image_size, json.dumps(entry).encode(), cls)
            yield from shards[split].add(sample, archive, folder, hashes)
        for split in sorted(shards, key=lambda name: list(HF_SPLITS).index(name)):
            yield from shards[split].close(archive, folder, hashes)
        text = "".join(f"{names[label_id]}\n" for label_id in classes).encode()
        yield from archive.member(f"{folder}/classes.txt", len(text), iter([text]))
        hashes.write(f"{hashlib.sha256(text).hexdigest()}  classes.txt\n".encode())
        yield from _endings(export, snap, archive, folder, hashes, counts, skipped, "webdataset")
