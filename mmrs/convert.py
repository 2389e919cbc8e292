"""The five instruction conversions of the paper (Sec. IV): RawSample -> MMRS-1M records.

- category-to-instruction: one round, the dataset's reference categories offered in the prompt;
- caption-to-instruction: duplicates removed, each caption one round of the same conversation;
- VQA-to-instruction: each question one round, with the short-answer suffix;
- detection-to-instruction (HBB and OBB): all objects grouped per class with counts, then one referring
  round per class;
- VG-to-instruction: grounding (expression -> box) and region captioning (box -> expression).

Boxes: clamped to the image (counted), degenerate ones dropped (counted in the quarantine), normalised
on the centred padded square with two decimals, OBB points in the paper's order. Wording: mmrs.templates.
Record ids: "<source>/<split>/<key>/<task>", stable for the same raw input.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from mmrs import templates
from mmrs.geometry import (
    HBB,
    clip_hbb,
    clip_polygon,
    format_box,
    is_degenerate_hbb,
    normalize_points,
    order_obb,
    order_quad,
    polygon_hbb,
    square_frame,
)
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample, Referral
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import display_name
from mmrs.tiling import box_corners


class PreparedObject(NamedTuple):
    """An object ready for instructions: pixels clipped to the image, normalised boxes unrounded."""

    label: str
    noun: str  # natural wording of the class
    hbb: tuple[float, float, float, float]
    obb: tuple[float, ...]  # 8 numbers, paper point order
    hbb_norm: tuple[float, ...]  # rounded to 4 decimals (targets)
    obb_norm: tuple[float, ...]
    hbb_text: str  # two decimals, as answers write it
    obb_text: str
    difficult: bool


def _conversation(rounds: list[tuple[str, str]]) -> list[dict[str, str]]:
    turns = []
    for i, (question, answer) in enumerate(rounds):
        turns.append({"from": "human", "value": templates.with_image(question) if i == 0 else question})
        turns.append({"from": "gpt", "value": answer})
    return turns


def _noun(spec: SourceSpec, label: str) -> str:
    return display_name(label, spec.options.get("display_names"))


def _box_text(coords: tuple[float, ...]) -> str:
    """format_box of normalised coordinates, in one formatting operation."""
    if not (min(coords) >= 0.0 and max(coords) <= 1.0):  # clamp (never needed for clipped boxes; NaN stays)
        coords = tuple([0.0 if c < 0.0 else 1.0 if c > 1.0 else c for c in coords])
    return _box_format(len(coords)) % coords


@functools.cache
def _box_format(n: int) -> str:
    return ",".join(["%.2f"] * n)


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


def _normalised(boxes: list[tuple[float, ...]], frames: list[tuple[float, float, float]]
                ) -> list[tuple[tuple[float, ...], tuple[float, ...], str, str]]:
    """Per 12 numbers (clipped HBB, then the 8 OBB numbers) of objects, each with the (side, pad_x, pad_y)
    of its image's square_frame: (hbb_norm rounded to 4 decimals, obb_norm rounded, hbb_text, obb_text)
    exactly as normalize_points, round(c, 4) and format_box give them, computed for all objects at once
    (numpy); a number whose rounding is not certain that way (near a half, outside [0, 1], NaN, -0.0) takes
    the scalar route. Callers pass the objects of many images: numpy's cost per call is that of ~10 objects."""
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
    cent = _CENTS.__getitem__
    out = []
    for i, (row, cent_row) in enumerate(zip(rounded, cent_rows, strict=True)):
        if i in texts:
            hbb_text, obb_text = _box_text(tuple(values[i][:4])), _box_text(tuple(values[i][4:]))
        else:
            hbb_text, obb_text = ",".join(map(cent, cent_row[:4])), ",".join(map(cent, cent_row[4:]))
        out.append((tuple(row[:4]), tuple(row[4:]), hbb_text, obb_text))
    return out


def _geometry(box: Box, width: int, height: int) -> tuple[HBB, HBB, tuple[float, ...] | None]:
    """(hbb, hbb clipped to the image, visible outline in the paper's point order, flat) of a box; the
    outline is None when none of it is visible."""
    quad = box.obb
    if quad is not None and len(quad) == 8:
        x1, y1, x2, y2, x3, y3, x4, y4 = quad
        if (0 <= x1 <= width and 0 <= x2 <= width and 0 <= x3 <= width and 0 <= x4 <= width
                and 0 <= y1 <= height and 0 <= y2 <= height and 0 <= y3 <= height and 0 <= y4 <= height):
            # inside the image (NaN is not): clip_polygon would keep it as it is; most boxes go this way
            hbb = box.hbb or (min(x1, x2, x3, x4), min(y1, y2, y3, y4), max(x1, x2, x3, x4), max(y1, y2, y3, y4))
            return hbb, clip_hbb(hbb, width, height), order_quad(quad)
    corners = None if quad is None else box_corners(box)
    hbb = box.hbb or polygon_hbb(corners)
    clipped = clip_hbb(hbb, width, height)
    if corners is None:  # an HBB alone: its clipped corners from (x0, y0) clockwise are order_obb's order (tested)
        x0, y0, x1, y1 = clipped
        return hbb, clipped, (x0, y0, x1, y0, x1, y1, x0, y1)
    visible = clip_polygon(corners, 0, 0, width, height)
    return hbb, clipped, None if visible is None else tuple([c for p in order_obb(visible) for c in p])


# label, noun, clipped hbb, ordered outline (flat), difficult
_Kept = tuple[str, str, HBB, tuple[float, ...], bool]


def _kept_objects(raw: RawSample, spec: SourceSpec, width: int, height: int,
                  quarantine: Quarantine | HeldQuarantine) -> list[_Kept]:
    """The image's objects clipped, with degenerate and ignored boxes dropped (counted), in file order."""
    ignored = set(spec.options.get("ignore_labels", ()))
    nouns: dict[str, str] = {}  # class wording, once per class and image (regexes per object cost much)
    kept = []
    for box in raw.objects:
        label = box.label
        if label in ignored:
            quarantine.fix("ignored class dropped")
            continue
        hbb, clipped, outline = _geometry(box, width, height)
        if is_degenerate_hbb(clipped) or outline is None:
            quarantine.skip(raw.image, "degenerate box", {"label": label, "hbb": list(hbb)})
            continue
        if clipped != tuple(hbb):
            quarantine.fix("box clipped to image")
        noun = nouns.get(label) or nouns.setdefault(label, _noun(spec, label))
        kept.append((label, noun, clipped, outline, box.difficult))
    return kept


def _in_reading_order(kept: list[_Kept], numbers: list[tuple[tuple[float, ...], tuple[float, ...], str, str]]
                      ) -> list[PreparedObject]:
    """PreparedObjects sorted by y, then x as written (two decimals), then class; stable."""
    keyed = []
    for i, ((label, noun, clipped, obb, difficult), (hbb_norm, obb_norm, hbb_text, obb_text)) in enumerate(
            zip(kept, numbers, strict=True)):
        x_text, y_text, _ = hbb_text.split(",", 2)
        keyed.append((y_text, x_text, label, i,
                      PreparedObject(label, noun, clipped, obb, hbb_norm, obb_norm, hbb_text, obb_text, difficult)))
    keyed.sort()
    return [entry[-1] for entry in keyed]


def prepare_objects_batch(images: Sequence[tuple[RawSample, int, int]], spec: SourceSpec,
                          quarantines: Sequence[Quarantine | HeldQuarantine]) -> list[list[PreparedObject]]:
    """prepare_objects of several (raw, width, height) images, each with its quarantine (the same one may
    repeat), with one vectorised normalisation for all of them."""
    kept = [_kept_objects(raw, spec, width, height, q)
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
        else:  # no objects, or an outline that is not four points: the scalar route
            numbers = []
            for _, _, clipped, obb, _ in objects:
                hbb_norm, obb_norm = normalize_points(clipped, width, height), normalize_points(obb, width, height)
                numbers.append((tuple(round(c, 4) for c in hbb_norm), tuple(round(c, 4) for c in obb_norm),
                                format_box(hbb_norm), format_box(obb_norm)))
        prepared.append(_in_reading_order(objects, numbers))
    return prepared


class HeldQuarantine:
    """Quarantine calls held back and replayed later, in order: a batch's box checks run for all images
    first, and each image's entries still come next to those of its other tasks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def skip(self, *args: Any) -> None:
        self.calls.append(("skip", args))

    def fix(self, *args: Any) -> None:
        self.calls.append(("fix", args))

    def replay(self, quarantine: Quarantine) -> None:
        for method, args in self.calls:
            getattr(quarantine, method)(*args)


def prepare_objects(raw: RawSample, spec: SourceSpec, width: int, height: int,
                    quarantine: Quarantine) -> list[PreparedObject]:
    """Clip, drop degenerate and ignored boxes (counted), order OBB points, normalise; reading order."""
    return prepare_objects_batch([(raw, width, height)], spec, [quarantine])[0]


def _by_class(objects: list[PreparedObject]) -> list[tuple[str, list[PreparedObject]]]:
    """Objects grouped by class wording, classes in sorted order (objects in reading order)."""
    by_class: dict[str, list[PreparedObject]] = {}
    for obj in objects:
        by_class.setdefault(obj.noun, []).append(obj)
    return sorted(by_class.items())


def _detection(objects: list[PreparedObject], classes: list[tuple[str, list[PreparedObject]]],
               oriented: bool) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    groups = [(noun, "[" + ";".join([o.obb_text if oriented else o.hbb_text for o in group]) + "]")
              for noun, group in classes]
    rounds = [(templates.detection_prompt(oriented), templates.detection_answer(groups))]
    rounds += [(templates.category_detection_prompt(templates.plural(noun), oriented),
                templates.category_detection_answer(noun, text)) for noun, text in groups]
    target = {
        "labels": [o.label for o in objects],
        "boxes": [list(o.obb) for o in objects] if oriented else [list(o.hbb) for o in objects],
        "boxes_norm": [list(o.obb_norm) for o in objects] if oriented else [list(o.hbb_norm) for o in objects],
        "difficult": [o.difficult for o in objects],
    }
    return rounds, target


def _dedupe(captions: list[str], quarantine: Quarantine) -> list[str]:
    seen, out = set(), []
    for caption in captions:
        fold = " ".join(caption.lower().split()).rstrip(" .")  # whitespace runs as one space, ends stripped
        if fold in seen:
            quarantine.fix("duplicate caption removed")
            continue
        seen.add(fold)
        out.append(caption.strip())
    return out


def _region(ref: Referral, width: int, height: int) -> tuple[Referral, Any, str | None, list[float] | None]:
    """(referral, clipped box, its text, normalised box rounded); box None when it is degenerate."""
    box = clip_hbb(ref.hbb, width, height)
    if is_degenerate_hbb(box):
        return ref, None, None, None
    norm = normalize_points(box, width, height)
    return ref, box, f"[{format_box(norm)}]", [round(c, 4) for c in norm]


def _has_detection(spec: SourceSpec) -> bool:
    return "detection_hbb" in spec.tasks or "detection_obb" in spec.tasks


def to_records_batch(images: Sequence[tuple[RawSample, int, int]], spec: SourceSpec,
                     quarantine: Quarantine) -> list[list[dict[str, Any]]]:
    """to_records of several (raw, width, height) images: the same records and quarantine entries in the
    same order, with the box normalisation vectorised over all their objects (a 12-object image alone pays
    numpy's per-call cost ~10 times)."""
    if not _has_detection(spec):
        return [to_records(raw, spec, width, height, quarantine) for raw, width, height in images]
    held = [HeldQuarantine() for _ in images]
    objects = prepare_objects_batch(images, spec, held)
    records = []
    for (raw, width, height), prepared, entries in zip(images, objects, held, strict=True):
        entries.replay(quarantine)
        records.append(to_records(raw, spec, width, height, quarantine, objects=prepared))
    return records


def to_records(raw: RawSample, spec: SourceSpec, width: int, height: int, quarantine: Quarantine,
               objects: list[PreparedObject] | None = None) -> list[dict[str, Any]]:
    """Every record `spec.tasks` asks for from one image (none when it has nothing for a task). `objects`:
    its prepare_objects, when the caller has them already."""
    made: list[tuple[str, list[tuple[str, str]], dict[str, Any]]] = []
    if objects is None:
        objects = prepare_objects(raw, spec, width, height, quarantine) if _has_detection(spec) else []
    regions = classes = None
    for task in spec.tasks:
        if task == "classification" and raw.label is not None:
            if not spec.categories:
                raise ValueError(f"{spec.name}: classification needs SourceSpec.categories")
            answer = _noun(spec, raw.label)
            made.append((task, [(templates.classification_prompt([_noun(spec, c) for c in spec.categories]),
                                 answer)], {"label": raw.label, "answer": answer}))
        elif task == "captioning" and raw.captions:
            captions = _dedupe(raw.captions, quarantine)
            made.append((task, [(templates.CAPTION_PROMPT, c) for c in captions], {"captions": captions}))
        elif task == "vqa" and raw.qa:
            made.append((task, [(templates.vqa_prompt(qa.question), qa.answer) for qa in raw.qa],
                         {"qa": [{"question": qa.question, "answer": qa.answer, "type": qa.qtype}
                                 for qa in raw.qa]}))
        elif task in ("detection_hbb", "detection_obb"):
            if classes is None:
                classes = _by_class(objects)
            rounds, target = _detection(objects, classes, oriented=task == "detection_obb")
            made.append((task, rounds, target))
        elif task in ("grounding", "region_caption") and raw.referrals:
            if regions is None:  # clipped, written and normalised once for both tasks
                regions = [_region(ref, width, height) for ref in raw.referrals]
            referrals = []
            for ref, box, text, box_norm in regions:
                if box is None:  # reported by each task, as each task drops it
                    quarantine.skip(raw.image, "degenerate box", {"text": ref.text, "hbb": list(ref.hbb)})
                    continue
                referrals.append((ref, box, text, box_norm))
            if not referrals:
                continue
            if task == "grounding":
                rounds = [(templates.grounding_prompt(ref.text), text) for ref, _, text, _ in referrals]
            else:
                rounds = [(templates.region_caption_prompt(text), ref.text.strip()) for ref, _, text, _ in referrals]
            made.append((task, rounds, {"referrals": [
                {"text": ref.text, "label": ref.label, "box": list(box), "box_norm": box_norm}
                for ref, box, _, box_norm in referrals]}))
    return [
        {"id": f"{raw.source}/{raw.split}/{raw.key}/{task}", "source": raw.source, "split": raw.split,
         "task": task, "modality": raw.modality, "image": raw.image, "width": width, "height": height,
         "conversations": _conversation(rounds), "target": target}
        for task, rounds, target in made
    ]
