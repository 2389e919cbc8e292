"""The MMRS-1M record: one declaration of its fields, used by the conversion that writes records and by the
quality checks that read them (DESIGN, "The data contract").

    {"id": "<source>/<split>/<key>/<task>", "source", "split", "task", "modality", "image", "width", "height",
     "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": "..."}, ...],
     "target": {the structured ground truth evaluation scores against}}
"""

from __future__ import annotations

from typing import Any

from mmrs import templates
from mmrs.raw import MODALITIES, TASKS

FIELDS: dict[str, type] = {"id": str, "source": str, "split": str, "task": str, "modality": str, "image": str,
                           "width": int, "height": int, "conversations": list, "target": dict}


def record_id(source: str, split: str, key: str, task: str) -> str:
    """Stable and unique: the same raw input always gives the same id."""
    return f"{source}/{split}/{key}/{task}"


def conversation(rounds: list[tuple[str, str]]) -> list[dict[str, str]]:
    """(question, answer) rounds -> alternating human/gpt turns, the image token before the first question."""
    turns = []
    for i, (question, answer) in enumerate(rounds):
        turns.append({"from": "human", "value": templates.with_image(question) if i == 0 else question})
        turns.append({"from": "gpt", "value": answer})
    return turns


def make_record(*, source: str, split: str, key: str, task: str, modality: str, image: str, width: int,
                height: int, rounds: list[tuple[str, str]], target: dict[str, Any]) -> dict[str, Any]:
    """A record with every field of FIELDS, in that order."""
    return {"id": record_id(source, split, key, task), "source": source, "split": split, "task": task,
            "modality": modality, "image": image, "width": width, "height": height,
            "conversations": conversation(rounds), "target": target}


def schema_problem(record: dict[str, Any]) -> str | None:
    """Why a record breaks the contract, or None."""
    for key, kind in FIELDS.items():
        if not isinstance(record.get(key), kind) or (kind is int and isinstance(record.get(key), bool)):
            return f"{key} missing or not {kind.__name__}"
    extra = sorted(set(record) - set(FIELDS))
    if extra:
        return f"unknown field(s) {', '.join(extra)}"
    if record["task"] not in TASKS:
        return f"unknown task {record['task']!r}"
    if record["modality"] not in MODALITIES:
        return f"unknown modality {record['modality']!r}"
    turns = record["conversations"]
    if not turns or len(turns) % 2:
        return "conversations must hold whole rounds"
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") != ("human" if i % 2 == 0 else "gpt") \
                or not isinstance(turn.get("value"), str):
            return f"turn {i} is not a {'human' if i % 2 == 0 else 'gpt'} turn with a text value"
    if not turns[0]["value"].startswith(templates.with_image("")):
        return "the first human turn must start with the image token"
    return None
