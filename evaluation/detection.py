"""Object detection AP (paper Tables VIII HBB and IX OBB, MAR20 test, zero-shot): AP@40 and AP@50.

One definition for both box kinds, pycocotools' COCOeval (`evaluateImg` + `accumulate`) for one area
range (all) and no cap on detections per image, with IoU thresholds 0.4 and 0.5; only the IoU differs:
HBB by the box formula, OBB by exact polygon IoU (shapely, convex hull of the four points). On
axis-aligned boxes the two give the same numbers (tested), and the HBB numbers equal COCOeval's
precision array read at those thresholds (tested; `summarize()` assumes other thresholds).

- Match rule (COCOeval's): per image and class, detections in descending score take the unmatched truth
  of highest IoU with IoU >= threshold (ties of IoU: the later truth); each truth matches once.
- Ranking: all detections of a class in descending score; equal scores keep the order of their images
  (ascending image key) and, within an image, the order given (`kind="mergesort"` as COCOeval).
- Interpolation: COCO's 101 recall points (0, 0.01, .., 1); precision made monotone from the right,
  taken at the first rank whose recall reaches each point, 0 beyond the last recall.
- AP: the mean over classes with ground truth of the mean over the 101 points, x100. Detections of a
  class without ground truth are not scored (COCOeval's category list comes from the ground truth).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.iou import hbb_iou_matrix, obb_iou_matrix

THRESHOLDS = (0.4, 0.5)
# exactly COCOeval's Params.recThrs (the same float values: recall is compared with them)
RECALL_POINTS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)


def metric_name(threshold: float) -> str:
    """0.4 -> 'AP@40', as the paper names them."""
    return f"AP@{round(threshold * 100)}"


@dataclass(frozen=True)
class TruthBox:
    image: int  # image key; ties of score are ranked in ascending image key
    label: str
    box: tuple[float, ...]  # (x1, y1, x2, y2) or (x1, y1, ..., x4, y4)


@dataclass(frozen=True)
class DetectedBox:
    image: int
    label: str
    box: tuple[float, ...]
    score: float  # higher is more confident


@dataclass(frozen=True)
class DetectionScore:
    ap: dict[str, float]  # 'AP@40', 'AP@50': percent, mean over classes with ground truth
    per_class: dict[str, dict[str, float]]  # 'AP@40' -> class -> percent
    recall: dict[str, dict[str, float]]  # 'AP@40' -> class -> percent of truths found (all detections)
    precision: dict[str, dict[str, list[float]]]  # 'AP@40' -> class -> precision at the 101 recall points
    classes: tuple[str, ...]  # classes with ground truth, sorted
    truths: int
    detections: int


def average_precision(truths: Sequence[TruthBox], detections: Sequence[DetectedBox],
                      thresholds: Sequence[float] = THRESHOLDS, oriented: bool = False) -> DetectionScore:
    """COCO-style AP at each IoU threshold (module docstring). oriented: boxes are 8-number polygons."""
    iou = obb_iou_matrix if oriented else hbb_iou_matrix
    thresholds = np.asarray(thresholds, dtype=np.float64)
    classes = tuple(sorted({t.label for t in truths}))
    gts: dict[tuple[int, str], list[TruthBox]] = defaultdict(list)
    dts: dict[tuple[int, str], list[DetectedBox]] = defaultdict(list)
    for t in truths:
        gts[t.image, t.label].append(t)
    for d in detections:
        dts[d.image, d.label].append(d)
    images = sorted({t.image for t in truths} | {d.image for d in detections})
    names = [metric_name(t) for t in thresholds]
    precision = -np.ones((len(thresholds), len(RECALL_POINTS), len(classes)))
    recall = -np.ones((len(thresholds), len(classes)))
    for k, label in enumerate(classes):
        scores, matched, n_truths = [], [], 0
        for image in images:
            gt, dt = gts.get((image, label), []), dts.get((image, label), [])
            order = np.argsort([-d.score for d in dt], kind="mergesort")
            dt = [dt[i] for i in order]
            matched.append(_match(iou([d.box for d in dt], [g.box for g in gt]) if gt and dt else None,
                                  thresholds, len(dt), len(gt)))
            scores += [d.score for d in dt]
            n_truths += len(gt)
        _accumulate(np.asarray(scores, dtype=np.float64), np.concatenate(matched, axis=1), n_truths,
                    precision[:, :, k], recall[:, k])
    return DetectionScore(
        ap={n: 100.0 * _mean_valid(precision[t]) for t, n in enumerate(names)},
        per_class={n: {c: 100.0 * float(np.mean(precision[t, :, k])) for k, c in enumerate(classes)}
                   for t, n in enumerate(names)},
        recall={n: {c: 100.0 * float(recall[t, k]) for k, c in enumerate(classes)} for t, n in enumerate(names)},
        precision={n: {c: precision[t, :, k].tolist() for k, c in enumerate(classes)} for t, n in enumerate(names)},
        classes=classes, truths=len(truths), detections=sum(d.label in classes for d in detections))


def _match(ious: np.ndarray | None, thresholds: np.ndarray, n_dt: int, n_gt: int) -> np.ndarray:
    """(T, D) bool: whether each detection (in score order) matched a truth at each threshold."""
    dtm = np.zeros((len(thresholds), n_dt), dtype=bool)
    if ious is None:
        return dtm
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(n_gt, dtype=bool)
        for d in range(n_dt):
            best, m = min(threshold, 1 - 1e-10), -1
            for g in range(n_gt):
                if taken[g] or ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m >= 0:
                taken[m] = dtm[t, d] = True
    return dtm


def _accumulate(scores: np.ndarray, dtm: np.ndarray, n_truths: int, precision: np.ndarray,
                recall: np.ndarray) -> None:
    """COCOeval.accumulate for one class: fills precision (T, R) and recall (T,) in place."""
    if n_truths == 0:
        return
    order = np.argsort(-scores, kind="mergesort")
    tps = dtm[:, order]
    tp_sum = np.cumsum(tps, axis=1).astype(float)
    fp_sum = np.cumsum(~tps, axis=1).astype(float)
    for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum, strict=True)):
        rc = tp / n_truths
        pr = (tp / (fp + tp + np.spacing(1))).tolist()
        recall[t] = rc[-1] if len(tp) else 0.0
        for i in range(len(pr) - 1, 0, -1):  # monotone from the right
            pr[i - 1] = max(pr[i - 1], pr[i])
        q = np.zeros(len(RECALL_POINTS))
        for r, i in enumerate(np.searchsorted(rc, RECALL_POINTS, side="left")):
            if i >= len(pr):
                break  # recall never reaches this point: precision 0 from here on
            q[r] = pr[i]
        precision[t] = q


def _mean_valid(values: np.ndarray) -> float:
    """COCOeval.summarize's mean over entries > -1 (classes with ground truth), flattened as it does."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else 0.0
