"""Quality checks of a converted source, in one streaming pass over its shards.

- schema: the record contract of mmrs/record.py (fields and types, task, modality, turns, image token);
- coordinates: every normalised box in targets and every box written in answers lies in [0, 1];
- duplicates: record ids are unique;
- leakage: no image appears both in a training split and in an evaluation split;
- quarantine rate: skipped inputs / (annotation units read + skipped inputs).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from mmrs.record import schema_problem
from mmrs.shards import iter_records, join, read_json

_BOX_TEXT = re.compile(r"\[([-0-9.,;\s]+)\]")
_BOX_TASKS = {"detection_hbb", "detection_obb", "grounding", "region_caption"}


@dataclass
class Finding:
    """How many records show a problem, and the first few of them."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, item: str, limit: int = 5) -> None:
        self.count += 1
        if len(self.examples) < limit:
            self.examples.append(item)


@dataclass
class QualityReport:
    records: int = 0
    schema_errors: Finding = field(default_factory=Finding)
    out_of_range: Finding = field(default_factory=Finding)
    duplicate_ids: Finding = field(default_factory=Finding)
    leaked_images: Finding = field(default_factory=Finding)
    skipped_inputs: int = 0
    annotations_read: int = 0

    @property
    def quarantine_rate(self) -> float:
        total = self.annotations_read + self.skipped_inputs
        return self.skipped_inputs / total if total else 0.0


def _norm_boxes(record: dict[str, Any]) -> list[list[float]]:
    target = record["target"]
    boxes = list(target.get("boxes_norm", []))
    boxes += [r["box_norm"] for r in target.get("referrals", [])]
    if record["task"] in _BOX_TASKS:
        for turn in record["conversations"]:
            for group in _BOX_TEXT.findall(turn["value"]):
                boxes += [[float(v) for v in part.split(",") if v.strip()] for part in group.split(";")]
    return boxes


def check_source(out_url: str, source: str) -> QualityReport:
    """Stream a converted source's shards and report every problem (counts and first examples)."""
    manifest = read_json(join(out_url, source, "manifest.json"))
    train_splits = set(manifest["train_splits"])
    report = QualityReport(skipped_inputs=sum(manifest["quarantine"]["skipped"].values()),
                           annotations_read=manifest["annotations"])
    seen_ids: set[bytes] = set()
    images: dict[bool, set[str]] = {True: set(), False: set()}
    for shard in manifest["shards"]:
        for record in iter_records(join(out_url, source, shard["path"])):
            report.records += 1
            problem = schema_problem(record)
            if problem:
                report.schema_errors.add(f"{record.get('id')}: {problem}")
                continue
            digest = hashlib.blake2b(record["id"].encode(), digest_size=8).digest()
            if digest in seen_ids:
                report.duplicate_ids.add(record["id"])
            seen_ids.add(digest)
            if any(not 0.0 <= c <= 1.0 for box in _norm_boxes(record) for c in box):
                report.out_of_range.add(record["id"])
            images[record["split"] in train_splits].add(record["image"])
    for image in sorted(images[True] & images[False]):
        report.leaked_images.add(image)
    return report
