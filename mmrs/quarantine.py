"""Bad input never stops a dataset: each skipped file or record lands here with its reason.

`Quarantine` streams entries to `quarantine.jsonl` (path, record, reason) and counts them by reason; the
counts go into manifests and asset metadata. Geometry fixes that keep the record (clamping) are counted
too, without an entry per box.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import IO, Any


class Quarantine:
    def __init__(self, source: str, sink: IO[str] | None = None):
        self.source = source
        self.sink = sink
        self.skipped: Counter[str] = Counter()  # reason -> skipped files / records / boxes
        self.fixed: Counter[str] = Counter()  # reason -> records kept after a fix (e.g. box clamped)

    def skip(self, path: str, reason: str, record: Any = None) -> None:
        """Record that `record` (or the whole file at `path`) was skipped because of `reason`."""
        self.skipped[reason] += 1
        if self.sink is not None:
            entry = {"source": self.source, "path": path, "reason": reason, "record": _jsonable(record)}
            self.sink.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def fix(self, reason: str, n: int = 1) -> None:
        self.fixed[reason] += n

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> dict[str, dict[str, int]]:
        return {"skipped": dict(sorted(self.skipped.items())), "fixed": dict(sorted(self.fixed.items()))}


def _jsonable(record: Any) -> Any:
    if record is None or isinstance(record, str | int | float | bool | list | dict):
        return record
    return repr(record)[:2000]

