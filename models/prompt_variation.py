"""Prompt variation for the tiny preset: a training record's instructions asked in other words.

A tiny model trained on one wording per task keys on the exact string: a classification prompt with a class
list it has not seen (zero-shot CLRS, NaSC-TG2) or without the answer-format sentence gets an answer of
another task. With variation on, half of the records keep the paper's wording; the others' instructions take
one of the training paraphrases of `mmrs.templates`, and a classification prompt lists its reference
categories in the record's own order and subset (always with the answer). Never a held-out wording: those
stay for evaluation.

The choice is a pure function of (seed, record id), so a record encodes to the same tokens whenever it is
read (the epoch plan stores token counts; a stored position stays valid). The paper preset never varies.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from mmrs import templates

MIN_CATEGORIES = 4  # a varied class list keeps at least this many categories (or all, when fewer)
KEEP_SHARE = 0.5  # the share of records that keep the paper's wording (it stays the most common one)


def vary_record(record: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The record with its human turns reworded (classification, captioning, VQA; other tasks unchanged)."""
    task = record.get("task")
    if task not in ("classification", "captioning", "vqa"):
        return dict(record)
    rng = random.Random(f"prompt-variation/{seed}/{record['id']}")
    if rng.random() < KEEP_SHARE:
        return dict(record)
    turns = [dict(t) for t in record["conversations"]]
    for human, gpt in zip(turns[0::2], turns[1::2], strict=False):
        question = templates.without_image(human["value"])
        if task == "classification":
            reworded = _classification(question, gpt["value"], rng)
        elif task == "captioning":
            reworded = rng.choice(templates.CAPTION_PARAPHRASES) if question == templates.CAPTION_PROMPT else question
        else:
            reworded = _vqa(question, rng)
        human["value"] = templates.with_image(reworded) if templates.IMAGE_TOKEN in human["value"] else reworded
    return {**record, "conversations": turns}


def _classification(question: str, answer: str, rng: random.Random) -> str:
    categories = templates.reference_categories(question)
    if not categories:
        return question
    if answer.strip() in categories:
        others = [c for c in categories if c != answer.strip()]
        keep = rng.randint(min(MIN_CATEGORIES - 1, len(others)), len(others))
        categories = [answer.strip(), *rng.sample(others, keep)]
    rng.shuffle(categories)
    return rng.choice(templates.classification_paraphrases(categories))


def _vqa(question: str, rng: random.Random) -> str:
    stem = question.removesuffix(templates.SHORT_ANSWER).strip()
    if stem == question:  # not a templated VQA question: leave it
        return question
    return f"{stem} {rng.choice(templates.VQA_SUFFIXES)}"

