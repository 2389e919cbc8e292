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

import re
from dataclasses import dataclass
from typing import Any

from mmrs import templates
from mmrs.geometry import (
    clip_hbb,
    clip_polygon,
    format_box,
    is_degenerate_hbb,
    normalize_points,
    order_obb,
    polygon_hbb,
)
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import display_name
from mmrs.tiling import box_corners

IMAGE_TOKEN = "<image>\n"


@dataclass(frozen=True)
class PreparedObject:
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
        turns.append({"from": "human", "value": (IMAGE_TOKEN if i == 0 else "") + question})
        turns.append({"from": "gpt", "value": answer})
    return turns


def _noun(spec: SourceSpec, label: str) -> str:
    return display_name(label, spec.options.get("display_names"))


def prepare_objects(raw: RawSample, spec: SourceSpec, width: int, height: int,
                    quarantine: Quarantine) -> list[PreparedObject]:
    """Clip, drop degenerate and ignored boxes (counted), order OBB points, normalise; reading order."""
    ignored = set(spec.options.get("ignore_labels", ()))
    nouns: dict[str, str] = {}  # class wording, once per class and image (regexes per object cost much)
    out = []
    for box in raw.objects:
        if box.label in ignored:
            quarantine.fix("ignored class dropped")
            continue
        corners = box_corners(box)
        hbb = box.hbb or polygon_hbb(corners)
        clipped = clip_hbb(hbb, width, height)
        visible = clip_polygon(corners, 0, 0, width, height)
        if is_degenerate_hbb(clipped) or visible is None:
            quarantine.skip(raw.image, "degenerate box", {"label": box.label, "hbb": list(hbb)})
            continue
        if clipped != tuple(hbb):
            quarantine.fix("box clipped to image")
        obb = tuple(c for p in order_obb(visible) for c in p)
        hbb_norm, obb_norm = normalize_points(clipped, width, height), normalize_points(obb, width, height)
        noun = nouns.get(box.label) or nouns.setdefault(box.label, _noun(spec, box.label))
        out.append(PreparedObject(box.label, noun, clipped, obb,
                                  tuple(round(c, 4) for c in hbb_norm), tuple(round(c, 4) for c in obb_norm),
                                  format_box(hbb_norm), format_box(obb_norm), box.difficult))
    out.sort(key=lambda o: (o.hbb_text.split(",")[1], o.hbb_text.split(",")[0], o.label))  # reading order
    return out


def _detection(objects: list[PreparedObject], oriented: bool) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    by_class: dict[str, list[PreparedObject]] = {}
    for obj in objects:
        by_class.setdefault(obj.noun, []).append(obj)
    nouns = sorted(by_class)

    def boxes(group: list[PreparedObject]) -> str:
        return "[" + ";".join(o.obb_text if oriented else o.hbb_text for o in group) + "]"

    groups = [(noun, boxes(by_class[noun])) for noun in nouns]
    rounds = [(templates.detection_prompt(oriented), templates.detection_answer(groups))]
    rounds += [(templates.category_detection_prompt(templates.plural(noun), oriented),
                templates.category_detection_answer(noun, text)) for noun, text in groups]
    target = {
        "labels": [o.label for o in objects],
        "boxes": [list(o.obb if oriented else o.hbb) for o in objects],
        "boxes_norm": [list(o.obb_norm if oriented else o.hbb_norm) for o in objects],
        "difficult": [o.difficult for o in objects],
    }
    return rounds, target


def _dedupe(captions: list[str], quarantine: Quarantine) -> list[str]:
    seen, out = set(), []
    for caption in captions:
        fold = re.sub(r"\s+", " ", caption.strip().lower()).rstrip(" .")
        if fold in seen:
            quarantine.fix("duplicate caption removed")
            continue
        seen.add(fold)
        out.append(caption.strip())
    return out


def to_records(raw: RawSample, spec: SourceSpec, width: int, height: int,
               quarantine: Quarantine) -> list[dict[str, Any]]:
    """Every record `spec.tasks` asks for from one image (none when it has nothing for a task)."""
    made: list[tuple[str, list[tuple[str, str]], dict[str, Any]]] = []
    objects = (prepare_objects(raw, spec, width, height, quarantine)
               if {"detection_hbb", "detection_obb"} & set(spec.tasks) else [])
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
            rounds, target = _detection(objects, oriented=task == "detection_obb")
            made.append((task, rounds, target))
        elif task in ("grounding", "region_caption") and raw.referrals:
            referrals = []
            for ref in raw.referrals:
                box = clip_hbb(ref.hbb, width, height)
                if is_degenerate_hbb(box):
                    quarantine.skip(raw.image, "degenerate box", {"text": ref.text, "hbb": list(ref.hbb)})
                    continue
                referrals.append((ref, box, f"[{format_box(normalize_points(box, width, height))}]"))
            if not referrals:
                continue
            if task == "grounding":
                rounds = [(templates.grounding_prompt(ref.text), text) for ref, _, text in referrals]
            else:
                rounds = [(templates.region_caption_prompt(text), ref.text.strip()) for ref, _, text in referrals]
            made.append((task, rounds, {"referrals": [
                {"text": ref.text, "label": ref.label, "box": list(box),
                 "box_norm": [round(c, 4) for c in normalize_points(box, width, height)]}
                for ref, box, _ in referrals]}))
    return [
        {"id": f"{raw.source}/{raw.split}/{raw.key}/{task}", "source": raw.source, "split": raw.split,
         "task": task, "modality": raw.modality, "image": raw.image, "width": width, "height": height,
         "conversations": _conversation(rounds), "target": target}
        for task, rounds, target in made
    ]
