"""The export formats by name: what /v1/export?format= and the /export page offer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .bundles import render_tar
from .detection import render_labelme, render_voc, render_yolo
from .export import IMAGE_FORMATS, Export
from .renderers import render_coco, render_csv, render_json, render_jsonl
from .shards import render_hf, render_parquet, render_webdataset


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    content_type: str
    extension: str
    render: Callable[[Export], Iterator[bytes]]

    @property
    def images(self) -> bool:
        """Whether the download holds the image files (and takes layout and size)."""
        return self.name in IMAGE_FORMATS


FORMATS = {
    f.name: f
    for f in [
        Format("json", "JSON", "application/json", "json", render_json),
        Format("jsonl", "JSON Lines", "application/x-ndjson", "jsonl", render_jsonl),
        Format("csv", "CSV", "text/csv; charset=utf-8; header=present", "csv", render_csv),
        Format("coco", "COCO JSON", "application/json", "coco.json", render_coco),
        Format("tar", "Images (tar)", "application/x-tar", "tar", render_tar),
        Format("parquet", "Parquet", "application/vnd.apache.parquet", "parquet", render_parquet),
        Format("hf", "Hugging Face datasets (tar)", "application/x-tar", "hf.tar", render_hf),
        Format("webdataset", "WebDataset (tar)", "application/x-tar", "wds.tar", render_webdataset),
        Format("yolo", "YOLO detection (tar)", "application/x-tar", "yolo.tar", render_yolo),
        Format("voc", "Pascal VOC (tar)", "application/x-tar", "voc.tar", render_voc),
        Format("labelme", "LabelMe JSON (tar)", "application/x-tar", "labelme.tar", render_labelme),
    ]
}
