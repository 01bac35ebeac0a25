"""Outlines drawn in SVG on the server, in the master's pixels: the SVG's viewBox maps
them onto the display rendition whatever its size, so no coordinate is scaled here."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from annotations.shapes import bounding_box

register = template.Library()

CROP_MARGIN = 0.15  # of the outline's larger side, around it in a crop
CROP_MIN_SIDE = 48  # master pixels: a tiny outline is shown with some of its surroundings


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _turn(shape: dict) -> str:
    """The shape's clockwise turn about its box's top-left corner, as SVG says it."""
    if not shape.get("angle"):
        return ""
    return format_html(
        ' transform="rotate({} {} {})"',
        _number(shape["angle"]),
        _number(shape["left"]),
        _number(shape["top"]),
    )


def _element(shape: dict) -> SafeString:
    if shape["type"] == "rect":
        return format_html(
            '<rect x="{}" y="{}" width="{}" height="{}"{}/>',
            *(_number(shape[k]) for k in ("left", "top", "width", "height")),
            _turn(shape),
        )
    if shape["type"] == "ellipse":
        return format_html(
            '<ellipse cx="{}" cy="{}" rx="{}" ry="{}"{}/>',
            _number(shape["left"] + shape["rx"]),
            _number(shape["top"] + shape["ry"]),
            _number(shape["rx"]),
            _number(shape["ry"]),
            _turn(shape),
        )
    points = " ".join(f"{_number(p['x'])},{_number(p['y'])}" for p in shape["points"])
    return format_html('<polygon points="{}"/>', points)


@register.simple_tag
def outline_shapes(shapes: list[dict]) -> SafeString:
    """The SVG elements of clean shapes (annotations.shapes), in master pixels."""
    return format_html_join("", "{}", ((_element(shape),) for shape in shapes))


@register.simple_tag
def crop_view_box(shapes: list[dict], width: int, height: int) -> str:
    """A viewBox around the shapes with a margin, inside a width × height picture."""
    boxes = [bounding_box(shape, clip_to=(width, height)) for shape in shapes]
    left = min(box[0] for box in boxes)
    top = min(box[1] for box in boxes)
    right = max(box[2] for box in boxes)
    bottom = max(box[3] for box in boxes)
    side = max(right - left, bottom - top, CROP_MIN_SIDE)
    margin = side * CROP_MARGIN
    cx, cy = (left + right) / 2, (top + bottom) / 2
    w = min(width, max(right - left, CROP_MIN_SIDE) + 2 * margin)
    h = min(height, max(bottom - top, CROP_MIN_SIDE) + 2 * margin)
    x = min(max(cx - w / 2, 0), width - w)
    y = min(max(cy - h / 2, 0), height - h)
    return " ".join(_number(v) for v in (x, y, w, h))
