"""Bad input never stops a dataset: each skipped file or record lands here with its reason.

`Quarantine` streams entries to `quarantine.jsonl` (path, record, reason) and counts them by reason; the
counts go into manifests and asset metadata. Geometry fixes that keep the record (clamping) are counted
too, without an entry per box.

Accounting (docs/reliability.md): every entry also says how many *annotation units* it removes (a class
label, a caption, a QA pair, an object, a referring expression; `mmrs.build.annotation_count`): `skip(...,
units=n)`, default 1 (one bad line, object, caption or QA pair); an image skipped with its annotations carries
their number; a file that cannot be read at all carries 0 (its units are unknown: the entry names the
file). `drop(reason, n)` counts units left out by a rule of the format or of the paper (DontCare regions,
duplicate captions) that are not errors; `fix(reason, n)` counts corrections that keep every unit. Units
are counted per phase ("reading" by the reader, "conversion" after it), so a source's manifest can show
that what the reader read is what the records hold plus what conversion removed.

`split_absent(split, missing)` records a split the release does not have (a DOTA copy without `val/`): the
reader converts the others, the manifest lists it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import IO, Any

from mmrs.shards import escape_line_separators


class Quarantine:
    def __init__(self, source: str, sink: IO[str] | None = None):
        self.source = source
        self.sink = sink
        self.skipped: Counter[str] = Counter()  # reason -> skipped files / records / boxes
        self.fixed: Counter[str] = Counter()  # reason -> records kept after a fix (e.g. box clamped)
        self.phase = "reading"  # "reading" (the reader's calls) or "conversion"
        self.skipped_units: Counter[str] = Counter()  # phase -> annotation units skipped
        self.dropped_units: Counter[str] = Counter()  # phase -> annotation units left out by rule
        self.absent: dict[str, str] = {}  # split -> what is missing for it

    def skip(self, path: str, reason: str, record: Any = None, units: int = 1) -> None:
        """Record that `record` (or the whole file at `path`) was skipped because of `reason`; it held `units`
        annotation units (see the module docstring)."""
        self.skipped[reason] += 1
        self.skipped_units[self.phase] += units
        if self.sink is not None:
            entry = {"source": self.source, "path": path, "reason": reason, "record": _jsonable(record)}
            if units != 1:
                entry["units"] = units
            self.sink.write(escape_line_separators(json.dumps(entry, ensure_ascii=False)) + "\n")

    def fix(self, reason: str, n: int = 1) -> None:
        self.fixed[reason] += n

    def drop(self, reason: str, n: int = 1) -> None:
        """`n` annotation units left out by a rule (counted with the fixes under `reason`)."""
        self.fixed[reason] += n
        self.dropped_units[self.phase] += n

    def split_absent(self, split: str, missing: str) -> None:
        """The release has no `split` (its folder or file `missing` is absent); the others are converted."""
        self.absent.setdefault(split, missing)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> dict[str, dict[str, int]]:
        return {"skipped": dict(sorted(self.skipped.items())), "fixed": dict(sorted(self.fixed.items()))}


def _jsonable(record: Any) -> Any:
    if record is None or isinstance(record, str | int | float | bool | list | dict):
        return record
    return repr(record)[:2000]

