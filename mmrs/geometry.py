"""Box geometry shared by the sample-corpus generator, the readers and evaluation.

Conventions: pixel coordinates, origin at the top-left corner, x to the right, y down.
A polygon is a sequence of (x, y) vertices; an HBB is (x0, y0, x1, y1) with x0 <= x1, y0 <= y1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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


# --- MMRS-1M normalisation (datasets.md 1.6; DESIGN "Formatting conventions") ------------------------


def square_frame(width: float, height: float) -> tuple[float, float, float]:
    """(side, pad_x0, pad_y0) of the centred square the image is padded to: pad = int((side - size) / 2)."""
    side = max(width, height)
    return side, float(int((side - width) / 2)), float(int((side - height) / 2))


def normalize_points(coords: Sequence[float], width: float, height: float) -> list[float]:
    """Pixel (x, y, x, y, ...) -> [0, 1] coordinates on the padded square (not rounded)."""
    side, px, py = square_frame(width, height)
    return [(c + (px if i % 2 == 0 else py)) / side for i, c in enumerate(coords)]


def denormalize_points(coords: Sequence[float], width: float, height: float) -> list[float]:
    """Inverse of normalize_points: [0, 1] padded-square coordinates -> pixels of the image."""
    side, px, py = square_frame(width, height)
    return [c * side - (px if i % 2 == 0 else py) for i, c in enumerate(coords)]


def order_obb(points: Sequence[Point], origin: Point = (0.0, 0.0)) -> list[Point]:
    """The paper's OBB point order: first the corner closest to the origin, then the other three in
    ascending order of their angle about it (atan2 in image coordinates, y down). `origin`: where the origin
    of the written coordinates lies in these points' frame - for pixels of an image padded to a centred
    square, (-pad_x, -pad_y) (see square_frame), so that the first written corner is the one closest to the
    origin of the normalised numbers (angles do not change under the padding's shift and scale)."""
    ox, oy = origin
    first = min(points, key=lambda p: ((p[0] - ox) ** 2 + (p[1] - oy) ** 2, p[1], p[0]))
    fx, fy = first
    atan2 = math.atan2
    rest = sorted([(atan2(p[1] - fy, p[0] - fx), (p[0] - fx) ** 2, i, p)  # i: ties keep their order
                   for i, p in enumerate(points) if p is not first])
    return [first, *[entry[3] for entry in rest]]


def is_degenerate_hbb(box: HBB) -> bool:
    return box[2] - box[0] <= 0 or box[3] - box[1] <= 0


def clip_polygon(points: Sequence[Point], x0: float, y0: float, x1: float, y1: float) -> list[Point] | None:
    """Clip a quadrilateral to a rectangle. Inside: unchanged. Crossing: the minimum-area rectangle of the
    visible part (still four corners), its corners clamped to the rectangle (a rotated rectangle around a
    cut polygon can poke out by a little). Nothing visible or zero area: None."""
    if all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in points):
        return list(points)
    from shapely.geometry import Polygon, box  # only boxes crossing the border need it (import per call costs)

    visible = Polygon(points).buffer(0).intersection(box(x0, y0, x1, y1))
    if visible.is_empty or visible.area <= 0:
        return None
    rect = visible.minimum_rotated_rectangle
    return [(min(max(float(x), x0), x1), min(max(float(y), y0), y1)) for x, y in list(rect.exterior.coords)[:4]]


def format_box(coords: Sequence[float]) -> str:
    """Two decimals, comma-separated, no spaces: '0.12,0.33,0.45,0.67'."""
    return ",".join(["%.2f" % (0.0 if c < 0.0 else 1.0 if c > 1.0 else c) for c in coords])


def visible_box(text: str) -> str:
    """A written box (`format_box`: 4 HBB or 8 OBB numbers) that two decimals collapsed to no area, widened
    to one hundredth of the side where it collapsed (away from the border): an object under 1 % of the image
    still gets a box an answer can give and evaluation can score (the parser drops zero-area boxes). A
    collapsed OBB becomes the widened box around its points, in the paper's point order; others unchanged
    (and a box with a number that is not finite: no area can be told)."""
    values = [float(v) for v in text.split(",")]
    if not all(math.isfinite(v) for v in values):
        return text
    cents = [round(v * 100) for v in values]
    if len(cents) == 4:
        x0, y0, x1, y1 = cents
        if x0 != x1 and y0 != y1:
            return text
        (x0, x1), (y0, y1) = _widened(x0, x1), _widened(y0, y1)
        corners: tuple[int, ...] = (x0, y0, x1, y1)
    elif len(cents) == 8 and _quad_area2(cents) == 0:
        (x0, x1), (y0, y1) = _widened(min(cents[0::2]), max(cents[0::2])), _widened(min(cents[1::2]), max(cents[1::2]))
        corners = (x0, y0, x1, y0, x1, y1, x0, y1)
    else:
        return text
    return ",".join(f"{c // 100}.{c % 100:02d}" for c in corners)


def _widened(low: int, high: int) -> tuple[int, int]:
    """A span in hundredths at least one wide, inside [0, 100] (a span with a width is left as it is)."""
    if high != low:
        return low, high
    return (low, low + 1) if low < 100 else (99, 100)


def _quad_area2(c: Sequence[int]) -> int:
    """Twice the signed (shoelace) area of four points, flat."""
    return sum(c[2 * i] * c[(2 * i + 3) % 8] - c[(2 * i + 2) % 8] * c[2 * i + 1] for i in range(4))


def format_boxes(boxes: Sequence[Sequence[float]]) -> str:
    """'[x1,y1,x2,y2;x1,y1,x2,y2]' (HBB) or groups of eight (OBB)."""
    return "[" + ";".join(format_box(b) for b in boxes) + "]"


def hbb_iou(a: HBB, b: HBB) -> float:
    """Continuous IoU (no +1 pixel term)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = hbb_area(a) + hbb_area(b) - inter
    return inter / union if union > 0 else 0.0


def points_in_convex(points: np.ndarray, corners: Sequence[Point], tol: float = 0.0) -> np.ndarray:
    """(N, 2) points -> (N,) bool: within `tol` of the convex polygon `corners` (either orientation)."""
    poly = np.asarray(corners, float)
    centre = poly.mean(axis=0)
    inside = np.ones(len(points), bool)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        normal = np.array([b[1] - a[1], a[0] - b[0]]) / np.linalg.norm(b - a)
        if np.dot(centre - a, normal) > 0:
            normal = -normal
        inside &= (np.asarray(points, float) - a) @ normal <= tol
    return inside


def same_vertices(a: Sequence[Point], b: Sequence[Point], tol: float) -> bool:
    """Every vertex of `a` lies within `tol` of some vertex of `b` (order-free polygon comparison)."""
    return all(min(math.dist(p, q) for q in b) <= tol for p in a)

