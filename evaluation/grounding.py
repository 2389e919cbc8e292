"""Visual grounding (paper Table VII, DIOR-RSVG test), as the DIOR-RSVG reference code defines it.

Per question, the IoU of the predicted box with the true one, continuous (no "+1" term), both in the
records' frame (normalised on the padded square). Pr@k: percent of questions with IoU strictly greater
than k, k in 0.5 .. 0.9 (an IoU of exactly 0.5 does not count at Pr@0.5). mIoU: mean IoU. cIoU: sum of
intersections / sum of unions over the split. A question without a parsable box scores IoU 0,
intersection 0 and the true box's area as its union.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.iou import hbb_intersection_union

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
METRICS = (*(f"Pr@{k}" for k in THRESHOLDS), "mIoU", "cIoU")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class GroundingScore:
    metrics: dict[str, float]  # Pr@0.5 .. Pr@0.9, mIoU, cIoU, in percent
    ious: tuple[float, ...]  # per question, in the given order
    samples: int


def score_grounding(truths: Sequence[Box], predictions: Sequence[Box | None]) -> GroundingScore:
    """truths: one (x1, y1, x2, y2) per question; predictions: the predicted box, or None (missing or
    unparsable answer). Both normalised in the same frame."""
    if len(truths) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} questions")
    if not truths:
        raise ValueError("no questions to score")
    ious, intersections, unions = [], 0.0, 0.0
    for truth, box in zip(truths, predictions, strict=True):
        if box is None:
            inter, union = 0.0, max(0.0, truth[2] - truth[0]) * max(0.0, truth[3] - truth[1])
        else:
            inter, union = hbb_intersection_union(box, truth)
        ious.append(inter / union if union > 0 else 0.0)
        intersections += inter
        unions += union
    n = len(ious)
    metrics = {f"Pr@{k}": 100.0 * sum(iou > k for iou in ious) / n for k in THRESHOLDS}
    metrics["mIoU"] = 100.0 * sum(ious) / n
    metrics["cIoU"] = 100.0 * intersections / unions if unions > 0 else 0.0
    return GroundingScore(metrics, tuple(ious), n)
