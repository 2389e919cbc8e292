"""Predictions and references as files: what `earthgpt predict` writes and `earthgpt score` reads.

PRED (JSON Lines), one answer per line: `{"id": "<record id>#<question>", "answer": "..."}`, optionally
`"box_scores": [..]` (detection: one confidence per box the answer's parse keeps, in order; written by
`earthgpt predict` as the generating model's mean token log-probability of each box). Question ids are
defined in `evaluation.benchmarks` (`question_ids`).

REF: a converted MMRS shard (record format, `target` holds the ground truth), one record per line.

Bad input is an `EvaluationInputError` whose message is one line naming the file and line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec


class EvaluationInputError(ValueError):
    """References or predictions that cannot be scored as given (one-line message)."""


@dataclass(frozen=True)
class Prediction:
    id: str
    answer: str
    box_scores: tuple[float, ...] | None = None  # detection: one confidence per parsed box

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "answer": self.answer}
        if self.box_scores is not None:
            row["box_scores"] = list(self.box_scores)
        return row


def _lines(url: str) -> Iterable[tuple[int, str]]:
    """(line number, line) of a UTF-8 JSON-lines file; a leading byte-order mark (Windows tools, Excel and
    PowerShell write one) is dropped."""
    try:
        with fsspec.open(url, "rt", encoding="utf-8-sig") as f:
            yield from enumerate(f, start=1)
    except FileNotFoundError:
        raise EvaluationInputError(f"{url}: no such file") from None
    except UnicodeDecodeError as error:
        raise EvaluationInputError(f"{url}: not UTF-8 text ({error.reason})") from None


def _object(url: str, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise EvaluationInputError(f"{url}:{number}: not JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise EvaluationInputError(f"{url}:{number}: not a JSON object")
    return row


def parse_prediction(row: Mapping[str, Any], where: str) -> Prediction:
    """One PRED object -> Prediction; `where` ("file:line") prefixes the error message."""
    unknown = set(row) - {"id", "answer", "box_scores"}
    if unknown:
        raise EvaluationInputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise EvaluationInputError(f"{where}: \"id\" must be a non-empty string")
    if not isinstance(row.get("answer"), str):
        raise EvaluationInputError(f"{where}: \"answer\" must be a string")
    scores = row.get("box_scores")
    if scores is not None and not (isinstance(scores, list) and all(
            isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s) for s in scores)):
        raise EvaluationInputError(f"{where}: \"box_scores\" must be a list of finite numbers")
    return Prediction(row["id"], row["answer"], None if scores is None else tuple(float(s) for s in scores))


def read_predictions(url: str, resume: bool = False) -> dict[str, Prediction]:
    """id -> Prediction of a PRED file. Malformed lines and duplicate ids are errors; with resume=True a
    malformed last line (a write cut short) is left out instead, so generation can go on after it."""
    rows = [(n, line) for n, line in _lines(url) if line.strip()]
    predictions: dict[str, Prediction] = {}
    for i, (number, line) in enumerate(rows):
        where = f"{url}:{number}"
        try:
            prediction = parse_prediction(_object(url, number, line), where)
        except EvaluationInputError:
            if resume and i == len(rows) - 1:
                break
            raise
        if prediction.id in predictions:
            raise EvaluationInputError(f"{where}: duplicate id {prediction.id!r}")
        predictions[prediction.id] = prediction
    return predictions


def prediction_lines(predictions: Iterable[Prediction]) -> str:
    """PRED text of predictions, one JSON object per line."""
    return "".join(json.dumps(p.to_json(), ensure_ascii=False) + "\n" for p in predictions)


def read_references(url: str) -> list[dict[str, Any]]:
    """Records of a REF shard, in file order; each must have an id, task, image and target, ids unique."""
    records, seen = [], set()
    for number, line in _lines(url):
        if not line.strip():
            continue
        record = _object(url, number, line)
        missing = [k for k in ("id", "task", "image", "target") if k not in record]
        if missing:
            raise EvaluationInputError(f"{url}:{number}: not an MMRS record (no {', '.join(missing)})")
        if record["id"] in seen:
            raise EvaluationInputError(f"{url}:{number}: duplicate record id {record['id']!r}")
        seen.add(record["id"])
        records.append(record)
    return records
