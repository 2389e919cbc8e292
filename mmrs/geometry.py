"""Box geometry shared by the sample-corpus generator, the readers and evaluation.

Conventions: pixel coordinates, origin at the top-left corner, x to the right, y down.
A polygon is a sequence of (x, y) vertices; an HBB is (x0, y0, x1, y1) with x0 <= x1, y0 <= y1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]
HBB = tuple[float, float, float, float]


def rotated_rect_corners(cx: float, cy: float, length: float, width: float, angle: float) -> list[Point]:
    """Four corners of a rectangle centred at (cx, cy), `length` along the heading `angle`.

    `angle` is in radians, measured from the +x axis towards +y (clockwise on screen).
    Corners are returned clockwise on screen starting at the front-left corner (the DOTA habit of
    starting at the object's "head"): front-left, front-right, back-right, back-left.
    """
    ux, uy = math.cos(angle), math.sin(angle)  # heading (front)
    vx, vy = -uy, ux  # right-hand side on screen
    hl, hw = length / 2.0, width / 2.0
    front = (cx + ux * hl, cy + uy * hl)
    back = (cx - ux * hl, cy - uy * hl)
    return [
        (front[0] - vx * hw, front[1] - vy * hw),
        (front[0] + vx * hw, front[1] + vy * hw),
        (back[0] + vx * hw, back[1] + vy * hw),
        (back[0] - vx * hw, back[1] - vy * hw),
    ]


def polygon_hbb(points: Sequence[Point]) -> HBB:
    """Axis-aligned bounding box of a polygon."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def clip_hbb(box: HBB, width: float, height: float) -> HBB:
    """Clamp an HBB to the image rectangle [0, width] x [0, height]."""
    x0, y0, x1, y1 = box
    return (
        min(max(x0, 0.0), width),
        min(max(y0, 0.0), height),
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
    )


def hbb_area(box: HBB) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def polygon_area(points: Sequence[Point]) -> float:
    """Unsigned shoelace area."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True):
        total += x0 * y1 - x1 * y0
    return abs(total) / 2.0
