"""What an outline's revision looks like in the exports, measured once when it is drawn.

A revision's shapes never change, nor does its picture's size, so everything the
exports need of its geometry is computed here, in Python (annotations.shapes has
the measurements), and stored with the revision: the exports' SQL only joins text
(exports.renderers), which keeps them streaming at COPY's pace.

- `original`: per shape, its JSON object as the original ImageMonkey exported it, less
  the opening brace, so SQL can put the label and sublabel in front:
  `"type":"rect","left":…,"top":…,"width":…,"height":…,"angle":…}`.
- `coco`: per shape, the tail of a COCO annotation: its bounding box `[x, y, w, h]`, its
  outline as one polygon (an ellipse as ELLIPSE_POINTS points, a turned rectangle turned),
  and its area, all cut to the picture: `"bbox":[…],"segmentation":[[…]],"area":…}`.
- `coverage`: the share of the picture the union of the shapes covers (0–1), for the
  query language's `annotation.coverage`.
"""

from __future__ import annotations

import json

from . import shapes as geometry

DECIMALS = 2  # hundredths of a pixel: more than any reader or model can use


def _number(value: float) -> float | int:
    rounded = round(float(value), DECIMALS)
    return int(rounded) if rounded.is_integer() else rounded


def original_object(shape: dict) -> dict:
    """The shape in the original's export form: its type and its fields, rounded."""
    out: dict = {"type": shape["type"]}
    for key, value in shape.items():
        if key == "type":
            continue
        if key == "points":
            out["points"] = [{"x": _number(p["x"]), "y": _number(p["y"])} for p in value]
        elif isinstance(value, int | float):
            out[key] = _number(value)
    return out


def coco_object(shape: dict, width: int, height: int) -> dict:
    """bbox, segmentation and area of the part of the shape inside the picture."""
    points = geometry.polygon(shape, (width, height))
    left, top, right, bottom = geometry.bounding_box(shape, (width, height))
    return {
        "bbox": [_number(left), _number(top), _number(right - left), _number(bottom - top)],
        "segmentation": [[_number(c) for point in points for c in point]],
        "area": _number(geometry.area(shape, (width, height))),
    }


def _tail(item: dict) -> str:
    return json.dumps(item, separators=(",", ":"), allow_nan=False)[1:]


def measured(shapes: list[dict], width: int, height: int) -> dict:
    """The fields of an AnnotationRevision derived from its clean `shapes`."""
    return {
        "export_original": [_tail(original_object(shape)) for shape in shapes],
        "export_coco": [_tail(coco_object(shape, width, height)) for shape in shapes],
        "coverage": geometry.coverage(shapes, width, height) if shapes else 0.0,
    }
