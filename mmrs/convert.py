"""The five instruction conversions of the paper (Sec. IV): RawSample -> MMRS-1M records.

- category-to-instruction: one round, the dataset's reference categories offered in the prompt;
- caption-to-instruction: duplicates removed, each caption one round of the same conversation;
- VQA-to-instruction: each question one round, with the short-answer suffix;
- detection-to-instruction (HBB and OBB): all objects grouped per class with counts, then one referring
  round per class;
- VG-to-instruction: grounding (expression -> box) and region captioning (box -> expression).

Boxes: clamped to the image (counted), degenerate ones dropped (counted in the quarantine), normalised
on the centred padded square with two decimals, OBB points in the paper's order. Wording: mmrs.templates.
Records as mmrs/record.py declares them.

This is the plain route, written for reading; mmrs/fastpath.py converts a chunk of images at once with the
same result (byte-identical shards, tested on the sample corpus).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from mmrs import templates
from mmrs.geometry import (
    HBB,
    clip_hbb,
    clip_polygon,
    format_box,
    is_degenerate_hbb,
    normalize_points,
    order_obb,
    polygon_hbb,
    square_frame,
    visible_box,
)
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample, Referral
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import display_name
from mmrs.record import make_record
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


def _noun(spec: SourceSpec, label: str) -> str:
    return display_name(label, spec.options.get("display_names"))


def object_geometry(box: Box, width: int, height: int) -> tuple[HBB, HBB, tuple[float, ...] | None]:
    """(hbb, hbb clipped to the image, visible outline in the paper's point order, flat) of a box; the
    outline is None when none of it is visible. The order is decided in the frame the numbers are written in:
    the padded square (order_obb's `origin`). An HBB alone gives its clipped corners clockwise from
    (x0, y0), which is order_obb's order (tested)."""
    corners = None if box.obb is None else box_corners(box)
    hbb = box.hbb or polygon_hbb(corners)
    clipped = clip_hbb(hbb, width, height)
    if corners is None:
        x0, y0, x1, y1 = clipped
        return hbb, clipped, (x0, y0, x1, y0, x1, y1, x0, y1)
    visible = clip_polygon(corners, 0, 0, width, height)
    if visible is None:
        return hbb, clipped, None
    _, pad_x, pad_y = square_frame(width, height)
    return hbb, clipped, tuple([c for p in order_obb(visible, (-pad_x, -pad_y)) for c in p])


Geometry = Callable[[Box, int, int], tuple[HBB, HBB, "tuple[float, ...] | None"]]
# label, noun, clipped hbb, ordered outline (flat), difficult
Kept = tuple[str, str, HBB, tuple[float, ...], bool]
# hbb_norm and obb_norm rounded to 4 decimals, hbb_text and obb_text with two
Numbers = tuple[tuple[float, ...], tuple[float, ...], str, str]


def kept_objects(raw: RawSample, spec: SourceSpec, width: int, height: int, quarantine: Quarantine,
                 geometry: Geometry = object_geometry) -> list[Kept]:
    """The image's objects clipped, with degenerate and ignored boxes dropped (counted), in file order."""
    ignored = set(spec.options.get("ignore_labels", ()))
    nouns: dict[str, str] = {}  # class wording, once per class and image (regexes per object cost much)
    kept = []
    for box in raw.objects:
        label = box.label
        if label in ignored:
            quarantine.drop("ignored class dropped")
            continue
        hbb, clipped, outline = geometry(box, width, height)
        if is_degenerate_hbb(clipped) or outline is None:
            quarantine.skip(raw.image, "degenerate box", {"label": label, "hbb": list(hbb)})
            continue
        if clipped != tuple(hbb):
            quarantine.fix("box clipped to image")
        noun = nouns.get(label) or nouns.setdefault(label, _noun(spec, label))
        kept.append((label, noun, clipped, outline, box.difficult))
    return kept


def normalised_numbers(clipped: HBB, outline: tuple[float, ...], width: int, height: int) -> Numbers:
    """The object's boxes on the padded square: rounded to 4 decimals (targets) and as answers write them."""
    hbb, obb = normalize_points(clipped, width, height), normalize_points(outline, width, height)
    return (tuple(round(c, 4) for c in hbb), tuple(round(c, 4) for c in obb), visible_box(format_box(hbb)),
            visible_box(format_box(obb)))


def reading_order(kept: list[Kept], numbers: list[Numbers]) -> list[PreparedObject]:
    """PreparedObjects sorted by y, then x as written (two decimals), then class; stable."""
    keyed = []
    for i, ((label, noun, clipped, obb, difficult), (hbb_norm, obb_norm, hbb_text, obb_text)) in enumerate(
            zip(kept, numbers, strict=True)):
        x_text, y_text, _ = hbb_text.split(",", 2)
        keyed.append((y_text, x_text, label, i,
                      PreparedObject(label, noun, clipped, obb, hbb_norm, obb_norm, hbb_text, obb_text, difficult)))
    keyed.sort()
    return [entry[-1] for entry in keyed]


def prepare_objects(raw: RawSample, spec: SourceSpec, width: int, height: int,
                    quarantine: Quarantine) -> list[PreparedObject]:
    """Clip, drop degenerate and ignored boxes (counted), order OBB points, normalise; reading order."""
    kept = kept_objects(raw, spec, width, height, quarantine)
    return reading_order(kept, [normalised_numbers(k[2], k[3], width, height) for k in kept])


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
            quarantine.drop("duplicate caption removed")
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
    return ref, box, f"[{visible_box(format_box(norm))}]", [round(c, 4) for c in norm]


def _has_detection(spec: SourceSpec) -> bool:
    return "detection_hbb" in spec.tasks or "detection_obb" in spec.tasks


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
            prompt = templates.caption_prompt(spec.options.get("natural_images", False))
            made.append((task, [(prompt, c) for c in captions], {"captions": captions}))
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
            if regions is None:  # clipped, written and normalised once for both tasks; dropped ones reported once
                regions = [_region(ref, width, height) for ref in raw.referrals]
                for ref, box, _, _ in regions:
                    if box is None:
                        quarantine.skip(raw.image, "degenerate box", {"text": ref.text, "hbb": list(ref.hbb)})
            referrals = [region for region in regions if region[1] is not None]
            if not referrals:
                continue
            if task == "grounding":
                rounds = [(templates.grounding_prompt(ref.text), text) for ref, _, text, _ in referrals]
            else:
                rounds = [(templates.region_caption_prompt(text), ref.text.strip()) for ref, _, text, _ in referrals]
            made.append((task, rounds, {"referrals": [
                {"text": ref.text, "label": ref.label, "box": list(box), "box_norm": box_norm}
                for ref, box, _, box_norm in referrals]}))
    return [make_record(source=raw.source, split=raw.split, key=raw.key, task=task, modality=raw.modality,
                        image=raw.image, width=width, height=height, rounds=rounds, target=target)
            for task, rounds, target in made]
