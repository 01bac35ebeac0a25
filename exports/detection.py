"""Detection datasets: the pictures with accepted outlines, as YOLO, Pascal VOC or LabelMe.

Each is a tar under one top-level folder, streamed as `bundles` streams the image tar:
the picture (in the export's size), then its label file, and a MANIFEST of sha256s
last. Only pictures with at least one accepted outline of a positive pair are in it
(a picture without outlines is not known to be free of objects). Boxes and polygons
come from the geometry measured when each outline was drawn (annotations.geometry),
scaled to the rendition the export carries.

- yolo: `images/[split/]<uuid>.<ext>`, `labels/[split/]<uuid>.txt` with one
  `class cx cy w h` line per shape (normalised to 0–1), and `data.yaml` naming the
  classes in order (Ultralytics' layout).
- voc: `JPEGImages/<uuid>.<ext>` and `Annotations/<uuid>.xml`, one `<object>` with its
  `<bndbox>` per shape (whole pixels, 1-based as VOC counts them: a box from the picture's
  first column has xmin 1); `ImageSets/Main/<split>.txt` lists each split's pictures.
- labelme: `images/<uuid>.<ext>` and `annotations/<uuid>.json` (LabelMe's JSON: a
  `rectangle` for an unturned rectangle, a `polygon` for every other shape).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
from collections.abc import Iterator
from functools import partial
from xml.sax.saxutils import escape

from donations.models import Image
from donations.storage import file_name, public_storage

from .bundles import FILE_CHUNK_BYTES, TarStream, archive_folder, hashed
from .export import SIZES, Export, snapshot_for
from .query import Sql, compose

KINDS = ("yolo", "voc", "labelme")


def outlined_images(export: Export) -> Sql:
    """Per picture with accepted outlines, in image order: (uuid, format, publication,
    width, height, split, label ids, COCO tails, original tails), one entry per shape.
    A release's are the outlines it froze (Export.outline_join)."""
    order = "ORDER BY r.annotation_id, s.n"
    return compose(
        "SELECT img.uuid, img.format, img.publication, img.width, img.height, ",
        export.split_of() if export.split else "NULL",
        f""", array_agg(p.label_id {order}), array_agg(s.coco {order}),
            array_agg(s.original {order})
        FROM donations_image img
        JOIN """,
        export.pairs,
        " p ON p.image_id = img.id AND ",
        export.positive(),
        "\n        ",
        export.outline_join("p"),
        """
        CROSS JOIN LATERAL unnest(r.export_coco, r.export_original)
            WITH ORDINALITY AS s(coco, original, n)
        WHERE """,
        export.matching(),
        " GROUP BY img.id ORDER BY img.id",
    )


def class_names(snap, export: Export) -> dict[int, str]:
    """The outlined labels in label order, each with its name (a part as dog/eye; a
    release's as it was when it was cut)."""
    sql = compose(
        "SELECT DISTINCT p.label_id FROM donations_image img JOIN ",
        export.pairs,
        " p ON p.image_id = img.id AND ",
        export.positive(),
        " ",
        export.outline_join("p", geometry=False),
        " WHERE ",
        export.matching(),
    )
    ids = sorted(label_id for (label_id,) in snap.rows(sql))
    if not ids:
        return {}
    if export.release_id is None:
        names_sql = Sql(
            "SELECT l.id, COALESCE(parent.name || '/', '') || l.name FROM labels_label l "
            "LEFT JOIN labels_label parent ON parent.id = l.parent_id WHERE l.id = ANY(%s)",
            [ids],
        )
    else:
        names_sql = Sql(
            "SELECT label_id, label || CASE sublabel WHEN '' THEN '' ELSE '/' || sublabel END "
            "FROM exports_releaselabel WHERE release_id = %s AND label_id = ANY(%s)",
            [export.release_id, ids],
        )
    names = dict(snap.rows(names_sql))
    return {label_id: names[label_id] for label_id in ids}


class _Shape:
    """One exported shape, in the rendition's pixels."""

    def __init__(self, label: str, coco: str, original: str, sx: float, sy: float):
        self.label = label
        measured = json.loads("{" + coco)
        x, y, w, h = measured["bbox"]
        self.box = (x * sx, y * sy, (x + w) * sx, (y + h) * sy)
        flat = measured["segmentation"][0]
        self.points = [
            [_round(a * sx), _round(b * sy)] for a, b in zip(flat[0::2], flat[1::2], strict=True)
        ]
        shape = json.loads("{" + original)
        self.unturned_rect = shape["type"] == "rect" and not shape.get("angle")


def _round(value: float) -> float | int:
    rounded = round(value, 2)
    return int(rounded) if float(rounded).is_integer() else rounded


def _yolo_lines(shapes: list[_Shape], classes: dict[str, int], width: int, height: int) -> bytes:
    lines = []
    for shape in shapes:
        left, top, right, bottom = shape.box
        cx, cy = (left + right) / 2 / width, (top + bottom) / 2 / height
        w, h = (right - left) / width, (bottom - top) / height
        lines.append(f"{classes[shape.label]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines).encode()


def _voc_xml(name: str, shapes: list[_Shape], width: int, height: int) -> bytes:
    objects = "".join(
        f"<object><name>{escape(shape.label)}</name><pose>Unspecified</pose>"
        "<truncated>0</truncated><difficult>0</difficult><bndbox>"
        f"<xmin>{round(shape.box[0]) + 1}</xmin><ymin>{round(shape.box[1]) + 1}</ymin>"
        f"<xmax>{round(shape.box[2])}</xmax><ymax>{round(shape.box[3])}</ymax>"
        "</bndbox></object>"
        for shape in shapes
    )
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{escape(name)}</filename>"
        f"<source><database>ImageMonkey</database></source><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>"
        f"{objects}</annotation>\n"
    ).encode()


def _labelme_json(name: str, shapes: list[_Shape], width: int, height: int) -> bytes:
    entries = []
    for shape in shapes:
        if shape.unturned_rect:
            left, top, right, bottom = (_round(v) for v in shape.box)
            points, kind = [[left, top], [right, bottom]], "rectangle"
        else:
            points, kind = shape.points, "polygon"
        entries.append(
            {
                "label": shape.label,
                "points": points,
                "group_id": None,
                "shape_type": kind,
                "flags": {},
            }  # fmt: skip
        )
    document = {
        "version": "5.4.1",
        "flags": {},
        "shapes": entries,
        "imagePath": f"../images/{name}",
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
    return (json.dumps(document, indent=1) + "\n").encode()


def _paths(kind: str, uuid, extension: str, split: str | None) -> tuple[str, str]:
    under = f"{split}/" if split else ""
    if kind == "yolo":
        return f"images/{under}{uuid}.{extension}", f"labels/{under}{uuid}.txt"
    if kind == "voc":
        return f"JPEGImages/{uuid}.{extension}", f"Annotations/{uuid}.xml"
    return f"images/{under}{uuid}.{extension}", f"annotations/{under}{uuid}.json"


def render_detection(export: Export, kind: str) -> Iterator[bytes]:
    rendition = SIZES[export.size]
    storage = public_storage()
    with snapshot_for(export) as snap, tempfile.TemporaryFile() as hashes:
        archive = TarStream(snap.taken.timestamp())
        folder = archive_folder(export, snap.taken)
        names = class_names(snap, export)
        classes = {name: index for index, name in enumerate(names.values())}
        splits: dict[str, list[str]] = {}
        images = missing = objects = 0

        def member(path: str, content: bytes) -> Iterator[bytes]:
            yield from archive.member(f"{folder}/{path}", len(content), iter([content]))
            hashes.write(f"{hashlib.sha256(content).hexdigest()}  {path}\n".encode())

        for row in snap.rows(outlined_images(export)):
            uuid, image_format, publication, width, height, split, labels, cocos, originals = row
            extension = "png" if image_format == Image.Format.PNG else "jpg"
            shown_width, shown_height = Image(width=width, height=height).rendition_size(rendition)
            sx, sy = shown_width / width, shown_height / height
            shapes = [
                _Shape(names[label], coco, original, sx, sy)
                for label, coco, original in zip(labels, cocos, originals, strict=True)
            ]
            image_path, label_path = _paths(kind, uuid, extension, split)
            try:
                handle = storage.open(file_name(uuid, rendition, extension, publication), "rb")
            except OSError:
                missing += 1
                hashes.write(f"# missing, not in the archive: {image_path}\n".encode())
                continue
            digest = hashlib.sha256()
            with handle:
                chunks = hashed(iter(partial(handle.read, FILE_CHUNK_BYTES), b""), digest)
                yield from archive.member(f"{folder}/{image_path}", handle.size, chunks)
            hashes.write(f"{digest.hexdigest()}  {image_path}\n".encode())
            images += 1
            objects += len(shapes)
            image_name = image_path.rsplit("/", 1)[-1]
            if kind == "yolo":
                content = _yolo_lines(shapes, classes, shown_width, shown_height)
            elif kind == "voc":
                content = _voc_xml(image_name, shapes, shown_width, shown_height)
            else:
                content = _labelme_json(image_name, shapes, shown_width, shown_height)
            yield from member(label_path, content)
            splits.setdefault(split or "", []).append(str(uuid))

        if kind == "yolo":
            yield from member("data.yaml", _data_yaml(list(classes), splits))
        elif kind == "voc":
            for split, uuids in splits.items():
                yield from member(f"ImageSets/Main/{split or 'all'}.txt", _lines(uuids))
            yield from member("labels.txt", _lines(list(classes)))
        else:
            yield from member("labels.txt", _lines(list(classes)))
        release_line = (
            f"# release: {export.release_slug} (its outlines as accepted when it was cut, "
            "minus the pictures revoked since)\n"
            if export.release_id is not None
            else ""
        )
        head = (
            f"# ImageMonkey detection export, format={kind}\n"
            + release_line
            + f"# query: {json.dumps(str(export.query))}\n"
            f"# size: {export.size} ({rendition} rendition)\n"
            f"# snapshot: {snap.taken.isoformat()}\n"
            f"# images: {images}\n# shapes (one per box or polygon): {objects}\n"
            f"# images whose file is missing: {missing}\n"
            "# check every file, in this folder, with: grep -v '^#' MANIFEST | sha256sum -c\n"
        ).encode()
        size = hashes.tell()
        hashes.seek(0)
        body = iter(partial(hashes.read, FILE_CHUNK_BYTES), b"")
        yield from archive.member(
            f"{folder}/MANIFEST", len(head) + size, itertools.chain([head], body)
        )
        yield archive.end()


def _lines(values: list[str]) -> bytes:
    return "".join(f"{value}\n" for value in values).encode()


def _data_yaml(names: list[str], splits: dict[str, list[str]]) -> bytes:
    """Ultralytics' data.yaml: the folders of the splits and the class names, in order."""
    if set(splits) - {""}:
        folders = {s: f"images/{s}" for s in ("train", "val", "test") if s in splits}
    else:
        folders = {"train": "images", "val": "images"}
    lines = ["# ImageMonkey detection export (Ultralytics YOLO layout)", "path: ."]
    lines += [f"{split}: {folder}" for split, folder in folders.items()]
    lines.append(f"nc: {len(names)}")
    lines.append("names: " + json.dumps(names))  # a JSON list is a YAML list
    return ("\n".join(lines) + "\n").encode()


def render_yolo(export: Export) -> Iterator[bytes]:
    return render_detection(export, "yolo")


def render_voc(export: Export) -> Iterator[bytes]:
    return render_detection(export, "voc")


def render_labelme(export: Export) -> Iterator[bytes]:
    return render_detection(export, "labelme")
