"""Intersection over union of HBB and OBB, continuous (no "+1" pixel term), in whatever frame both boxes
share (MMRS records: normalised on the padded square; IoU does not change under that scaling).

The "+1" of pixel-grid evaluators (area = (x2 - x1 + 1) * (y2 - y1 + 1)) is a trap on normalised
coordinates: it adds a whole unit to every side and turns almost any pair of boxes into IoU ~ 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

Box = Sequence[float]


def hbb_intersection_union(a: Box, b: Box) -> tuple[float, float]:
    """(intersection area, union area) of two (x1, y1, x2, y2) boxes; union = area(a) + area(b) - inter."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    return inter, area_a + area_b - inter


def hbb_iou_matrix(detections: Sequence[Box], truths: Sequence[Box]) -> np.ndarray:
    """(D, G) IoU of every detection with every truth, (x1, y1, x2, y2) boxes: pycocotools' bbox IoU
    (union = detection area + truth area - intersection) on corner boxes instead of (x, y, w, h)."""
    d = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(truths, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0])
    ih = np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    union = area_d[:, None] + area_g[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def obb_polygons(boxes: Sequence[Box]) -> np.ndarray:
    """8-number boxes -> shapely polygons: the convex hull of the four points (any point order)."""
    points = [shapely.MultiPoint(list(zip(b[0::2], b[1::2], strict=True))) for b in boxes]
    return shapely.convex_hull(np.asarray(points, dtype=object)) if points else np.empty(0, dtype=object)


def obb_iou_matrix(detections: Sequence[Box], truths: Sequence[Box]) -> np.ndarray:
    """(D, G) exact polygon IoU (shapely) of every detection with every truth, (x1, y1, ..., x4, y4) boxes."""
    d, g = obb_polygons(detections), obb_polygons(truths)
    if not len(d) or not len(g):
        return np.zeros((len(d), len(g)))
    inter = shapely.area(shapely.intersection(d[:, None], g[None, :]))
    union = shapely.area(d)[:, None] + shapely.area(g)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)
