"""Grounding metrics on hand-computed cases (Table VII's definitions, DIOR-RSVG reference code)."""

import pytest

from evaluation.grounding import score_grounding
from evaluation.parsing import parse_hbbs

TRUTH = (0.0, 0.0, 0.5, 0.5)  # area 0.25


def test_an_iou_of_exactly_one_half_is_not_counted_at_pr_0_5():
    half = (0.0, 0.0, 0.25, 0.5)  # inside the truth, half its area: IoU 0.125 / 0.25 = 0.5 exactly
    score = score_grounding([TRUTH], [half])
    assert score.ious == (0.5,)
    assert score.metrics["Pr@0.5"] == 0.0 and score.metrics["mIoU"] == 50.0 and score.metrics["cIoU"] == 50.0


def test_hand_computed_split_with_unparsable_and_zero_area_answers():
    answers = [
        "[0.00,0.00,0.50,0.50]",  # exact: IoU 1, inter 0.25, union 0.25
        "[0.25,0.00,0.75,0.50]",  # shifted by half: inter 0.125, union 0.375, IoU 1/3
        "I cannot find it.",  # unparsable: IoU 0, union = the truth's area
        "[0.10,0.10,0.10,0.40]",  # zero area: dropped by the parser, scored as no box
        "[0.00,0.00,0.40,0.50]",  # inside: inter 0.2, union 0.25, IoU 0.8 (not > 0.8)
    ]
    parsed = [parse_hbbs(a) for a in answers]
    assert [p.failure for p in parsed] == [None, None, "no box", "zero-area box", None]
    score = score_grounding([TRUTH] * 5, [p.value[0] if p.ok else None for p in parsed])
    assert score.ious == pytest.approx((1.0, 1 / 3, 0.0, 0.0, 0.8))
    assert score.metrics["Pr@0.5"] == pytest.approx(40.0)  # 1.0 and 0.8
    assert score.metrics["Pr@0.7"] == pytest.approx(40.0)
    assert score.metrics["Pr@0.8"] == pytest.approx(20.0)  # 0.8 is not > 0.8
    assert score.metrics["Pr@0.9"] == pytest.approx(20.0)
    assert score.metrics["mIoU"] == pytest.approx(100 * (1 + 1 / 3 + 0.8) / 5)
    # cIoU: (0.25 + 0.125 + 0 + 0 + 0.2) / (0.25 + 0.375 + 0.25 + 0.25 + 0.25)
    assert score.metrics["cIoU"] == pytest.approx(100 * 0.575 / 1.375)


def test_iou_has_no_plus_one_pixel_term():
    # the trap: with +1 on normalised coordinates these disjoint-ish boxes would score IoU ~ 1
    score = score_grounding([(0.1, 0.1, 0.2, 0.2)], [(0.15, 0.15, 0.3, 0.3)])
    inter, union = 0.05 * 0.05, 0.01 + 0.0225 - 0.05 * 0.05
    assert score.ious[0] == pytest.approx(inter / union)
    assert score.metrics["Pr@0.5"] == 0.0


def test_lengths_must_match():
    with pytest.raises(ValueError, match="predictions"):
        score_grounding([TRUTH], [])
    with pytest.raises(ValueError, match="no questions"):
        score_grounding([], [])
