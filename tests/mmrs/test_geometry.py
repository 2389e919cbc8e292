import math

import pytest
from shapely.geometry import Polygon

from evaluation.parsing import parse_boxes
from mmrs.geometry import clip_hbb, polygon_area, polygon_hbb, rotated_rect_corners, visible_box


def test_rotated_rect_corners_axis_aligned_heading_east():
    corners = rotated_rect_corners(10, 20, length=8, width=4, angle=0.0)
    # front-left, front-right, back-right, back-left; "right" of an east heading is +y (screen down)
    assert [c for xy in corners for c in xy] == pytest.approx([14, 18, 14, 22, 6, 22, 6, 18])


@pytest.mark.parametrize("angle", [0.3, -1.2, 2.5, math.pi])
def test_rotated_rect_matches_shapely_area_and_is_clockwise_on_screen(angle):
    corners = rotated_rect_corners(50, 40, length=30, width=12, angle=angle)
    assert polygon_area(corners) == pytest.approx(360.0)
    assert Polygon(corners).area == pytest.approx(360.0)
    # clockwise on screen (y down) == counter-clockwise in a y-up frame: shoelace sum > 0 with y down
    signed = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True))
    assert signed > 0


def test_polygon_hbb_and_clip():
    assert polygon_hbb([(3, 9), (-2, 4), (7, 1)]) == (-2, 1, 7, 9)
    assert clip_hbb((-2, 1, 7, 9), width=5, height=8) == (0, 1, 5, 8)


def test_points_in_convex_either_orientation_with_tolerance():
    import numpy as np

    from mmrs.geometry import points_in_convex

    square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    points = np.array([[5, 5], [10.5, 5], [12, 5]])
    assert points_in_convex(points, square, tol=1.0).tolist() == [True, True, False]
    assert points_in_convex(points, square[::-1], tol=1.0).tolist() == [True, True, False]
    assert points_in_convex(points, square).tolist() == [True, False, False]


def test_same_vertices_ignores_order():
    from mmrs.geometry import same_vertices

    assert same_vertices([(0, 0), (1, 0), (1, 1)], [(1, 1.05), (0, 0), (1, 0)], tol=0.1)
    assert not same_vertices([(0, 0), (2, 0)], [(0, 0), (1, 0)], tol=0.1)


@pytest.mark.parametrize(("written", "visible"), [
    ("0.42,0.54,0.42,0.54", "0.42,0.54,0.43,0.55"),  # a vehicle under 1 % of the side: one hundredth wide
    ("0.81,0.07,0.93,0.07", "0.81,0.07,0.93,0.08"),  # collapsed in y only
    ("1.00,0.10,1.00,0.20", "0.99,0.10,1.00,0.20"),  # at the border: widened inwards
    ("0.42,0.54,0.43,0.55", "0.42,0.54,0.43,0.55"),  # has an area: unchanged
    ("0.10,0.10,0.10,0.10,0.10,0.10,0.10,0.10", "0.10,0.10,0.11,0.10,0.11,0.11,0.10,0.11"),
    ("0.10,0.10,0.20,0.20,0.10,0.10,0.20,0.20", "0.10,0.10,0.20,0.10,0.20,0.20,0.10,0.20"),  # a line
    ("0.83,0.35,0.89,0.33,0.92,0.40,0.86,0.43", "0.83,0.35,0.89,0.33,0.92,0.40,0.86,0.43"),
])
def test_a_box_that_two_decimals_collapse_is_widened_to_one_hundredth(written, visible):
    assert visible_box(written) == visible
    parsed = parse_boxes(f"[{visible}]", oriented=len(visible.split(",")) == 8)
    assert parsed.ok and len(parsed.value) == 1  # evaluation keeps it (it drops zero-area boxes)
