"""The export formats by name: what /v1/export?format= and the /export page offer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .bundles import render_tar
from .detection import render_labelme, render_voc, render_yolo
from .export import Export
from .renderers import render_coco, render_csv, render_json, render_jsonl


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
        Format("yolo", "YOLO detection (tar)", "application/x-tar", "yolo.tar", render_yolo),
        Format("voc", "Pascal VOC (tar)", "application/x-tar", "voc.tar", render_voc),
        Format("labelme", "LabelMe JSON (tar)", "application/x-tar", "labelme.tar", render_labelme),
    ]
}
