"""Conversion's speed-ups, in one place, each equal to the plain route it stands in for.

mmrs/convert.py is the reference, written for reading; what runs at scale is here:

- `to_records_batch`: a chunk of images converted together, the box normalisation vectorised over all their
  objects (a 12-object image alone pays numpy's per-call cost ~10 times) - equals `convert.to_records` per
  image, quarantine entries in the same order;
- `fast_geometry`: four-point outlines inside the image skip clipping (no point lists, no `clip_polygon`)
  - equals `convert.object_geometry`;
- `order_quad`: `geometry.order_obb` on flat numbers;
- `_decimals`: rounding of normalised coordinates to 4 and 2 decimals exactly as round() and "%.2f" round
  the exact decimal value;
- `rare_gc_pauses`: the cyclic garbage collector 70x less often during conversion.

Image sizes come from one small read of each header (mmrs/image_header.py, tested against imagesize and PIL).

tests/mmrs/test_fastpath.py compares each with its plain counterpart, and the whole sample corpus converts
to byte-identical shards either way (`convert_source(..., fast=False)`). Measured by bench/convert.py.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mmrs.convert import (
    Numbers,
    PreparedObject,
    kept_objects,
    normalised_numbers,
    object_geometry,
    reading_order,
    to_records,
)
from mmrs.geometry import HBB, clip_hbb, square_frame, visible_box
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec


# --- records of a chunk of images --------------------------------------------------------------------------
class HeldQuarantine(Quarantine):
    """Quarantine calls held back and replayed later, in order: a batch's box checks run for all images
    first, and each image's entries still come next to those of its other tasks."""

    def __init__(self) -> None:
        super().__init__("held")
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def skip(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("skip", args, kwargs))

    def fix(self, *args: Any) -> None:
        self.calls.append(("fix", args, {}))

    def drop(self, *args: Any) -> None:
        self.calls.append(("drop", args, {}))

    def replay(self, quarantine: Quarantine) -> None:
        for method, args, kwargs in self.calls:
            getattr(quarantine, method)(*args, **kwargs)


def to_records_batch(images: Sequence[tuple[RawSample, int, int]], spec: SourceSpec,
                     quarantine: Quarantine) -> list[list[dict[str, Any]]]:
    """`to_records` of several (raw, width, height) images: the same records and quarantine entries in the
    same order, with the box normalisation vectorised over all their objects."""
    if "detection_hbb" not in spec.tasks and "detection_obb" not in spec.tasks:
        return [to_records(raw, spec, width, height, quarantine) for raw, width, height in images]
    held = [HeldQuarantine() for _ in images]
    objects = prepare_objects_batch(images, spec, held)
    records = []
    for (raw, width, height), prepared, entries in zip(images, objects, held, strict=True):
        entries.replay(quarantine)
        records.append(to_records(raw, spec, width, height, quarantine, objects=prepared))
    return records


def prepare_objects_batch(images: Sequence[tuple[RawSample, int, int]], spec: SourceSpec,
                          quarantines: Sequence[Quarantine]) -> list[list[PreparedObject]]:
    """`convert.prepare_objects` of several (raw, width, height) images, each with its quarantine (the same one
    may repeat), with one vectorised normalisation for all of them."""
    kept = [kept_objects(raw, spec, width, height, q, geometry=fast_geometry)
            for (raw, width, height), q in zip(images, quarantines, strict=True)]
    quads = [bool(objects) and all(len(obj[3]) == 8 for obj in objects) for objects in kept]
    boxes, frames = [], []
    for (_, width, height), objects, quad in zip(images, kept, quads, strict=True):
        if quad:
            boxes += [obj[2] + obj[3] for obj in objects]
            frames += [square_frame(width, height)] * len(objects)
    vectorised = iter(_normalised(boxes, frames) if boxes else ())
    prepared = []
    for (_, width, height), objects, quad in zip(images, kept, quads, strict=True):
        if quad:
            numbers = [next(vectorised) for _ in objects]
        else:  # no objects, or an outline that is not four points: the plain route
            numbers = [normalised_numbers(obj[2], obj[3], width, height) for obj in objects]
        prepared.append(reading_order(objects, numbers))
    return prepared


def fast_geometry(box: Box, width: int, height: int) -> tuple[HBB, HBB, tuple[float, ...] | None]:
    """`convert.object_geometry`, with four-point outlines inside the image (most boxes) taken without
    clipping: clip_polygon would keep them as they are."""
    quad = box.obb
    if quad is not None and len(quad) == 8:
        x1, y1, x2, y2, x3, y3, x4, y4 = quad
        if (0 <= x1 <= width and 0 <= x2 <= width and 0 <= x3 <= width and 0 <= x4 <= width
                and 0 <= y1 <= height and 0 <= y2 <= height and 0 <= y3 <= height and 0 <= y4 <= height):
            hbb = box.hbb or (min(x1, x2, x3, x4), min(y1, y2, y3, y4), max(x1, x2, x3, x4), max(y1, y2, y3, y4))
            _, pad_x, pad_y = square_frame(width, height)
            return hbb, clip_hbb(hbb, width, height), order_quad(quad, (-pad_x, -pad_y))
    return object_geometry(box, width, height)


def order_quad(quad: Sequence[float], origin: tuple[float, float] = (0.0, 0.0)) -> tuple[float, ...]:
    """order_obb of four vertices given flat, (x1, y1, ..., x4, y4) -> the same order, flat. The same keys
    and ties as order_obb, without building point lists: it runs for every object."""
    x1, y1, x2, y2, x3, y3, x4, y4 = quad
    ox, oy = origin
    points = ((x1, y1), (x2, y2), (x3, y3), (x4, y4))
    first = min(((x1 - ox) ** 2 + (y1 - oy) ** 2, y1, x1, 0), ((x2 - ox) ** 2 + (y2 - oy) ** 2, y2, x2, 1),
                ((x3 - ox) ** 2 + (y3 - oy) ** 2, y3, x3, 2), ((x4 - ox) ** 2 + (y4 - oy) ** 2, y4, x4, 3))[3]
    fx, fy = points[first]
    atan2 = math.atan2
    rest = sorted([(atan2(y - fy, x - fx), (x - fx) ** 2, i) for i, (x, y) in enumerate(points) if i != first])
    (ax, ay), (bx, by), (cx, cy) = points[rest[0][2]], points[rest[1][2]], points[rest[2][2]]
    return fx, fy, ax, ay, bx, by, cx, cy


# --- vectorised normalisation --------------------------------------------------------------------------------
_CENTS = tuple(f"{i // 100}.{i % 100:02d}" for i in range(101))  # "%.2f" of k / 100 in [0, 1]


def _decimals(values: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(values * scale rounded half-to-even as the exact product would be, where that is not certain).

    round(x, 4) and "%.2f" round the exact decimal value of x; values * scale is rounded once more. Where the
    product lands exactly on a half, the exact remainder of the product (Dekker's two-product, with `scale`
    small enough to need no split) tells the side; within 1e-6 of a half otherwise the answer is not
    certain (the product's error is ~1e-12), nor for NaN or infinities: the caller takes the scalar route."""
    with np.errstate(all="ignore"):  # huge or non-finite numbers end up unsure, no warning needed
        scaled = values * scale
        nearest = np.rint(scaled)
        split = values * 134217729.0  # 2**27 + 1: high part with 26 bits, so high * scale is exact
        high = split - (split - values)
        remainder = (high * scale - scaled) + (values - high) * scale  # values * scale == scaled + remainder
        offset = scaled - nearest
        tie = np.abs(offset) == 0.5
        nearest = np.where(tie & (remainder > 0), np.ceil(scaled),
                           np.where(tie & (remainder < 0), np.floor(scaled), nearest))
        return nearest, ~(np.abs(np.abs(offset) - 0.5) >= 1e-6) & ~tie


def _box_text(coords: tuple[float, ...]) -> str:
    """format_box of normalised coordinates, in one formatting operation."""
    if not (min(coords) >= 0.0 and max(coords) <= 1.0):  # clamp (never needed for clipped boxes; NaN stays)
        coords = tuple([0.0 if c < 0.0 else 1.0 if c > 1.0 else c for c in coords])
    return _box_format(len(coords)) % coords


@functools.cache
def _box_format(n: int) -> str:
    return ",".join(["%.2f"] * n)


def _normalised(boxes: list[tuple[float, ...]], frames: list[tuple[float, float, float]]) -> list[Numbers]:
    """`convert.normalised_numbers` of many objects at once: per 12 numbers (clipped HBB, then the 8 OBB
    numbers), each with the (side, pad_x, pad_y) of its image's square_frame. A number whose rounding is not
    certain that way (near a half, outside [0, 1], NaN, -0.0) takes the scalar route."""
    frame = np.asarray(frames, dtype=np.float64)
    norm = (np.asarray(boxes, dtype=np.float64) + frame[:, [1, 2] * 6]) / frame[:, :1]
    fours, unsure4 = _decimals(norm, 1e4)
    cents, unsure2 = _decimals(norm, 1e2)
    unsure2 |= ~((norm >= 0.0) & (norm <= 1.0)) | np.signbit(norm)
    values, rounded = norm.tolist(), (fours / 1e4).tolist()
    cent_rows = np.where(unsure2, 0, cents).astype(np.int64).tolist()
    for i, j in zip(*np.nonzero(unsure4), strict=True):
        rounded[i][j] = round(values[i][j], 4)
    texts = {int(i) for i in np.nonzero(unsure2.any(axis=1))[0]}
    collapsed = set(np.nonzero(_collapsed(cents))[0].tolist())  # visible_box widens these (the others: as written)
    cent = _CENTS.__getitem__
    out = []
    for i, (row, cent_row) in enumerate(zip(rounded, cent_rows, strict=True)):
        if i in texts:
            hbb_text = visible_box(_box_text(tuple(values[i][:4])))
            obb_text = visible_box(_box_text(tuple(values[i][4:])))
        else:
            hbb_text, obb_text = ",".join(map(cent, cent_row[:4])), ",".join(map(cent, cent_row[4:]))
            if i in collapsed:
                hbb_text, obb_text = visible_box(hbb_text), visible_box(obb_text)
        out.append((tuple(row[:4]), tuple(row[4:]), hbb_text, obb_text))
    return out


def _collapsed(cents: np.ndarray) -> np.ndarray:
    """Rows (12 numbers in hundredths: HBB, then OBB) whose written HBB has no width or height or whose OBB has
    no area: the rows `visible_box` changes."""
    x, y = cents[:, 4::2], cents[:, 5::2]
    twice_area = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    return (cents[:, 0] == cents[:, 2]) | (cents[:, 1] == cents[:, 3]) | (twice_area == 0)


# --- process and file-system settings ------------------------------------------------------------------------
@contextlib.contextmanager
def rare_gc_pauses(gen0_threshold: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector 70x less often (gen-0 threshold 700 -> 50,000) inside the block.

    Reading and converting allocate millions of short-lived containers but almost no reference cycles: on
    the bench corpus, 36-40 full collections per run found 5-6 objects, and cost 14-15 % of the time. Peak
    memory does not change. The previous thresholds come back on exit."""
    previous = gc.get_threshold()
    gc.set_threshold(gen0_threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
