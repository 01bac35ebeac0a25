"""annotations.shapes: strict checking of outlines, and their area, box and IoU."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotations import shapes
from annotations.shapes import ShapeError, clean_shapes

W, H = 640, 480


def rect(left=10, top=20, width=100, height=50, **more):
    return {"type": "rect", "left": left, "top": top, "width": width, "height": height, **more}


def ellipse(left=100, top=100, rx=40, ry=20, **more):
    return {"type": "ellipse", "left": left, "top": top, "rx": rx, "ry": ry, **more}


def poly(*points, **more):
    return {"type": "polygon", "points": [{"x": x, "y": y} for x, y in points], **more}


SQUARE = poly((10, 10), (110, 10), (110, 110), (10, 110))
BOW_TIE = poly((10, 10), (110, 110), (110, 10), (10, 110))


def refusal(raw, width=W, height=H) -> ShapeError:
    with pytest.raises(ShapeError) as caught:
        clean_shapes(raw, width, height)
    return caught.value


def test_it_keeps_good_shapes_in_canonical_form():
    cleaned = clean_shapes([rect(stroke={"width": 3}), ellipse(), SQUARE], W, H)
    assert cleaned[0] == {
        "type": "rect",
        "left": 10.0,
        "top": 20.0,
        "width": 100.0,
        "height": 50.0,
        "angle": 0.0,
    }
    assert cleaned[1]["rx"] == 40.0 and cleaned[1]["angle"] == 0.0
    assert cleaned[2]["points"][0] == {"x": 10.0, "y": 10.0}
    assert cleaned[2]["angle"] == 0.0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (rect(left=float("nan")), "left must be a finite number"),
        (rect(width=float("inf")), "width must be a finite number"),
        (rect(top="12"), "top must be a number"),
        (rect(top=True), "top must be a number"),
        (rect(left=10**30), "left is too large"),
        (rect(width=1e300), "width is too large"),
        (rect(width=0), "width must be greater than 0"),
        (ellipse(ry=-3), "ry must be greater than 0"),
        (rect(height=None), "height is missing"),
        ({"type": "circle"}, "type is rect, ellipse or polygon"),
        ("rect", "a shape is an object with a type"),
        (BOW_TIE, "the polygon crosses itself"),
        (poly((1, 1), (2, 2)), "at least 3 points"),
        (poly(*[(i % 600, i // 600) for i in range(501)]), "at most 500 points"),
        (poly((1, 1), (5, 1), (9, 1)), "crosses itself"),
        (poly((1, 1), (1, 1), (2, 2)), "at least 3 distinct points"),
        ({"type": "polygon", "points": [{"x": 1}, {"x": 2, "y": 2}, {"x": 3, "y": 1}]}, "no y"),
        ({"type": "polygon", "points": "1,2,3"}, "a polygon has points"),
        (rect(left=700), "reaches outside the 640×480 picture"),
        (rect(left=-50), "reaches outside"),
        (ellipse(left=600, rx=40), "reaches outside"),
        (rect(angle=float("-inf")), "angle must be a finite number"),
        (rect(left=-10, width=5), "covers less than one pixel"),  # all in the overhang
        (rect(left=-5, width=5), "covers less than one pixel"),
        (rect(left=641, width=5), "covers less than one pixel"),
        (ellipse(left=-12, rx=5), "covers less than one pixel"),
        (rect(width=1e-300, height=1e-300), "covers less than one pixel"),
        (ellipse(rx=1e-300, ry=1e-300), "covers less than one pixel"),
        (poly((1, 1), (500, 1), (500, 1.000001)), "covers less than one pixel"),
    ],
)
def test_it_refuses_a_bad_shape_naming_it_and_the_reason(bad, reason):
    error = refusal([rect(), bad])
    assert error.index == 1
    assert str(error).startswith("shape 1: ")
    assert reason in str(error)


def test_it_refuses_what_is_not_a_list_of_1_to_100_shapes():
    assert "list of shapes" in str(refusal({"type": "rect"}))
    assert "at least one shape" in str(refusal([]))
    assert "at most 100 shapes" in str(refusal([rect()] * 101))
    assert clean_shapes([rect()] * 100, W, H)


def test_it_refuses_too_many_points_in_all():
    many = poly(*[(300 + 200 * math.cos(a / 80), 240 + 200 * math.sin(a / 80)) for a in range(500)])
    assert "polygon points per annotation" in str(refusal([many] * 11))


def test_it_clips_what_overhangs_a_little():
    [cleaned] = clean_shapes([rect(left=-5, top=470, width=100, height=15)], W, H)
    assert (cleaned["left"], cleaned["top"], cleaned["width"], cleaned["height"]) == (
        0.0,
        470.0,
        95.0,
        10.0,
    )
    [square] = clean_shapes([poly((-3, -3), (50, -3), (50, 50), (-3, 50))], W, H)
    assert square["points"][0] == {"x": 0.0, "y": 0.0}
    # An ellipse cannot be cut and stay an ellipse: it is kept, and measured inside only.
    [round_] = clean_shapes([ellipse(left=-5, top=100, rx=20, ry=20)], W, H)
    assert round_["left"] == -5.0
    assert shapes.area(round_, (W, H)) < math.pi * 400
    assert shapes.bounding_box(round_, (W, H))[0] == 0.0


def test_a_polygon_with_a_closing_point_and_repeats_is_cleaned():
    [cleaned] = clean_shapes([poly((10, 10), (10, 10), (50, 10), (50, 50), (10, 10))], W, H)
    assert len(cleaned["points"]) == 3


def test_a_polygon_that_folds_back_on_itself_is_refused():
    # The third edge runs back along the second.
    error = refusal([poly((10, 10), (50, 10), (90, 10), (70, 10), (70, 50))])
    assert "crosses itself" in str(error)


def test_a_turned_polygon_is_stored_turned():
    [cleaned] = clean_shapes([poly((100, 100), (200, 100), (200, 200), angle=90)], W, H)
    xs = sorted(round(p["x"]) for p in cleaned["points"])
    ys = sorted(round(p["y"]) for p in cleaned["points"])
    assert (xs, ys) == ([0, 100, 100], [100, 200, 200])
    assert cleaned["angle"] == 0.0


def test_areas_and_boxes():
    assert shapes.area(clean_shapes([rect()], W, H)[0]) == 5000
    assert shapes.area(clean_shapes([SQUARE], W, H)[0]) == 10000
    round_ = clean_shapes([ellipse()], W, H)[0]
    assert shapes.area(round_) == pytest.approx(math.pi * 40 * 20, rel=0.01)
    assert shapes.bounding_box(round_) == pytest.approx((100, 100, 180, 140))
    turned = clean_shapes([rect(left=100, top=100, width=100, height=50, angle=90)], W, H)[0]
    assert shapes.bounding_box(turned) == pytest.approx((50, 100, 100, 200))
    assert shapes.area(turned) == pytest.approx(5000)


def test_ellipse_points_lie_on_the_ellipse():
    round_ = clean_shapes([ellipse(left=100, top=100, rx=40, ry=20)], W, H)[0]
    for x, y in shapes.ellipse_points(round_, 16):
        assert ((x - 140) / 40) ** 2 + ((y - 120) / 20) ** 2 == pytest.approx(1)


def test_iou_of_overlapping_rectangles_is_exact_enough():
    a = [rect(left=0, top=0, width=100, height=100)]
    b = [rect(left=50, top=0, width=100, height=100)]
    assert shapes.iou(a, b) == pytest.approx(1 / 3, abs=0.005)
    assert shapes.iou(a, a) == pytest.approx(1)
    assert shapes.iou(a, [rect(left=300, top=300, width=10, height=10)]) == 0


def test_iou_counts_an_outline_as_the_union_of_its_shapes():
    halves = [rect(left=0, top=0, width=50, height=100), rect(left=50, top=0, width=50, height=100)]
    whole = [rect(left=0, top=0, width=100, height=100)]
    assert shapes.iou(halves, whole) == pytest.approx(1, abs=0.005)


def test_matched_iou_matches_shapes_one_to_one():
    dogs = [
        rect(left=0, top=0, width=100, height=100),
        rect(left=200, top=0, width=100, height=100),
    ]
    same_in_other_order = list(reversed(dogs))
    assert shapes.matched_iou(dogs, same_in_other_order) == pytest.approx(1, abs=0.01)
    assert shapes.matched_iou(dogs, dogs[:1]) == pytest.approx(0.5, abs=0.01)
    assert shapes.matched_iou(dogs, []) == 0


def test_coverage_is_the_share_of_the_picture():
    assert shapes.coverage([rect(left=0, top=0, width=320, height=480)], W, H) == pytest.approx(
        0.5, abs=0.005
    )


def test_segments_meet_at_a_touching_end():
    assert shapes.segments_meet((0, 0), (2, 0), (1, 0), (1, 5))
    assert not shapes.segments_meet((0, 0), (2, 0), (0, 1), (2, 1))


number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
)
hostile_shape = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["rect", "ellipse", "polygon", "circle", 7]),
            "left": number,
            "top": number,
            "width": number,
            "height": number,
            "rx": number,
            "ry": number,
            "angle": number,
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("polygon"),
            "points": st.lists(
                st.one_of(st.fixed_dictionaries({"x": number, "y": number}), number),
                max_size=12,
            ),
        }
    ),
    number,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(hostile_shape, max_size=5))
def test_hostile_shapes_are_cleaned_or_refused_never_crash(raw):
    try:
        cleaned = clean_shapes(raw, W, H)
    except ShapeError as error:
        assert str(error)
        return
    margin_w, margin_h = W * shapes.OVERHANG, H * shapes.OVERHANG
    for shape in cleaned:
        left, top, right, bottom = shapes.bounding_box(shape)
        assert -margin_w <= left and right <= W + margin_w
        assert -margin_h <= top and bottom <= H + margin_h
        assert all(math.isfinite(v) for v in (left, top, right, bottom))
        assert shapes.MIN_AREA <= shapes.area(shape, (W, H)) <= W * H
        assert all(shape.get(size, 1) > 0 for size in ("width", "height", "rx", "ry"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=3, max_size=9))
def test_a_polygon_kept_never_crosses_itself(points):
    try:
        [cleaned] = clean_shapes([poly(*points)], W, H)
    except ShapeError:
        return
    kept = [(p["x"], p["y"]) for p in cleaned["points"]]
    n = len(kept)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            a, b = kept[i], kept[(i + 1) % n]
            c, d = kept[j], kept[(j + 1) % n]
            assert not shapes.segments_meet(a, b, c, d), (i, j, kept)


def cross_section(points, y):
    """The x intervals a polygon covers on the line at y (even–odd), edge by edge."""
    xs = sorted(
        x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True)
        if (y1 <= y < y2) or (y2 <= y < y1)
    )
    return [(xs[k], xs[k + 1]) for k in range(0, len(xs) - 1, 2)]


def test_the_rows_a_shape_spans_are_cut_as_a_line_across_every_edge_would_cut_them():
    import random

    from annotations.shapes import _sections

    chance = random.Random(19)
    for _ in range(200):
        polygons = [
            [
                (chance.uniform(0, 300), chance.choice([chance.uniform(0, 200), 50.0]))
                for _ in range(chance.randint(3, 12))
            ]
            for _ in range(chance.randint(1, 4))
        ]
        top, rows = chance.uniform(-5, 20), chance.randint(1, 64)
        step = chance.uniform(0.5, 8)
        found = _sections(polygons, top, step, rows)
        for k in range(rows):
            y = top + (k + 0.5) * step
            assert sorted(found[k]) == sorted(
                iv for poly in polygons for iv in cross_section(poly, y)
            )


def comb(top: float, teeth: int = 60) -> dict:
    """A polygon that does not cross itself, with `teeth` long teeth side by side: the
    worst case for the sweep that looks for crossings (60 teeth, 242 points: about
    25,000 edge pairs to compare)."""
    points = [(10, top)]
    for k in range(teeth):
        y = top + 6 * k
        points += [(3900, y), (3900, y + 3), (20, y + 3), (20, y + 6)]
    points.append((10, top + 6 * teeth))
    return {"type": "polygon", "points": [{"x": x, "y": y} for x, y in points], "angle": 0}


def test_polygons_too_intricate_to_check_in_a_request_are_refused_with_the_reason():
    clean_shapes([comb(10)], 4000, 3000)  # one is fine
    with pytest.raises(ShapeError) as refused:
        clean_shapes([comb(10 + 400 * k) for k in range(3)], 4000, 3000)
    assert "too intricate to check" in str(refused.value)
    assert "shape 1" in str(refused.value) or "shape 2" in str(refused.value)


def test_a_long_jagged_outline_is_not_too_intricate():
    chance = random.Random(7)
    radii = [900 + chance.uniform(-90, 90) for _ in range(500)]  # around the centre: simple
    points = [
        {
            "x": 2000 + radius * math.cos(2 * math.pi * k / 500),
            "y": 1500 + radius * math.sin(2 * math.pi * k / 500),
        }
        for k, radius in enumerate(radii)
    ]
    (cleaned,) = clean_shapes([{"type": "polygon", "points": points}], 4000, 3000)
    assert len(cleaned["points"]) == 500
