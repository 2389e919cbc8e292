"""MMRS-1M geometry conventions and answer wording."""

import pytest

from mmrs import templates
from mmrs.geometry import (
    clip_polygon,
    denormalize_points,
    format_boxes,
    hbb_iou,
    normalize_points,
    order_obb,
    square_frame,
)


def test_pad_to_square_rule_of_the_released_data():
    # H > W: pad_x0 = int((H - W) / 2), W := H (datasets.md 1.6)
    assert square_frame(100, 151) == (151, 25.0, 0.0)
    assert normalize_points([0, 0, 100, 151], 100, 151) == pytest.approx([25 / 151, 0, 125 / 151, 1])
    assert normalize_points([10, 20], 300, 200) == pytest.approx([10 / 300, 70 / 300])


def test_normalise_round_trip():
    coords = [12.5, 40.0, 250.0, 199.0]
    assert denormalize_points(normalize_points(coords, 320, 200), 320, 200) == pytest.approx(coords)


def test_obb_order_matches_the_paper_example():
    # Fig. 3: [0.14,0.65,0.46,0.55,0.47,0.60,0.15,0.69] — any rotation of the vertex list gives this order
    points = [(0.46, 0.55), (0.47, 0.60), (0.15, 0.69), (0.14, 0.65)]
    assert order_obb(points) == [(0.14, 0.65), (0.46, 0.55), (0.47, 0.60), (0.15, 0.69)]
    assert order_obb(points[::-1]) == order_obb(points)


def test_two_decimals_clamped_and_grouped():
    assert format_boxes([[0.144, 0.555, 1.02, 0.69], [-0.01, 0.5, 0.6, 0.7]]) == \
        "[0.14,0.56,1.00,0.69;0.00,0.50,0.60,0.70]"


def test_clip_polygon_keeps_inside_boxes_and_shrinks_crossing_ones():
    inside = [(1, 1), (5, 1), (5, 4), (1, 4)]
    assert clip_polygon(inside, 0, 0, 10, 10) == inside
    crossing = clip_polygon([(-4, 2), (4, 2), (4, 6), (-4, 6)], 0, 0, 10, 10)
    xs, ys = [p[0] for p in crossing], [p[1] for p in crossing]
    assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((0, 4, 2, 6))
    assert clip_polygon([(-4, 2), (-1, 2), (-1, 6), (-4, 6)], 0, 0, 10, 10) is None


def test_iou_is_continuous_without_the_plus_one_term():
    assert hbb_iou((0, 0, 0.1, 0.1), (0.05, 0, 0.15, 0.1)) == pytest.approx(1 / 3)
    assert hbb_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_answer_wording():
    assert templates.number_text(8) == "eight" and templates.number_text(13) == "13"
    assert templates.plural("storage tank") == "storage tanks" and templates.plural("bus") == "buses"
    assert templates.plural("person") == "people" and templates.plural("ferry") == "ferries"
    assert templates.detection_answer([("ship", "[0.10,0.10,0.20,0.20]")]) == \
        "There is one object shown in the image, including one ship [0.10,0.10,0.20,0.20]."
    assert templates.detection_answer([]) == "There are no objects shown in the image."
    assert templates.category_detection_answer("tennis court", "[0,0,1,1;0,0,1,1]") == \
        "There are two tennis courts [0,0,1,1;0,0,1,1] in the image."
    assert templates.vqa_prompt("Is there a ship? ") == \
        "Is there a ship? Answer the question using a single word or phrase."
