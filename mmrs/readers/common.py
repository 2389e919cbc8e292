"""Small parsing helpers shared by readers (datasets.md section 1)."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.storage import SourceRoot

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
HIDDEN = (".DS_Store", "Thumbs.db")


def is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def parse_number(text: str | None) -> float:
    """'123', ' 123.0 ', '1.2e+02' -> float. Raises ValueError on anything else (callers quarantine)."""
    if text is None:
        raise ValueError("missing number")
    return float(text.strip())


class ClassMap:
    """A dataset's class names: exact match first, then a case-/space-insensitive fallback.

    aliases map variant spellings (typos, other packagings) to the canonical name. Unknown names give None.
    """

    def __init__(self, names: Iterable[str], aliases: Mapping[str, str] | None = None):
        self.names = tuple(names)
        self._exact = {n: n for n in self.names} | dict(aliases or {})
        self._loose = {self._fold(k): v for k, v in self._exact.items()}

    @staticmethod
    def _fold(name: str) -> str:
        return re.sub(r"[\s_\-]+", " ", name.strip().lower())

    def resolve(self, name: str) -> str | None:
        return self._exact.get(name) or self._loose.get(self._fold(name))


def display_name(label: str, names: Mapping[str, str] | None = None) -> str:
    """Natural wording of a class for instructions: 'small-vehicle' -> 'small vehicle',
    'OtherVehicle' -> 'other vehicle', 'storagetank' via the dataset's `names` table -> 'storage tank'."""
    if names and label in names:
        return names[label]
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    return re.sub(r"[\s_\-]+", " ", spaced).strip().lower()


def hash_split(key: str, fractions: Mapping[str, float]) -> str:
    """Deterministic split for datasets without an official one: the key's SHA-1 picks a point in [0, 1)
    and `fractions` (in their order) cut that interval, e.g. {"train": 0.2, "test": 0.8} (the paper's
    classification protocol). The same key always lands in the same split, whatever else is in the set."""
    point = int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name, fraction in fractions.items():
        edge += fraction
        if point < edge:
            return name
    return next(reversed(fractions))


def stem(filename: str) -> str:
    return posixpath.splitext(posixpath.basename(filename))[0]


def first_existing(root: SourceRoot, candidates: Sequence[str]) -> str:
    """The first candidate folder that exists, else the first one (the converter reports missing images)."""
    return next((c for c in candidates if root.isdir(c)), candidates[0])


def load_json(root: SourceRoot, rel: str, quarantine: Quarantine) -> Any:
    """Parsed JSON, or None (quarantined as "invalid json") when it does not parse."""
    try:
        return json.loads(root.read_text(rel))
    except ValueError as error:
        quarantine.skip(rel, "invalid json", str(error))
        return None


def read_line_boxes(root: SourceRoot, path: str, parse: Callable[[str], Any], quarantine: Quarantine) -> list[Any]:
    """Parse a one-object-per-line label file: blank lines ignored, `parse(line)` returns the object or the
    reason (a str) to quarantine the line; objects in file order."""
    boxes = []
    for raw in root.read_text(path).split("\n"):
        line = raw.strip()
        if not line:
            continue
        box = parse(line)
        if isinstance(box, str):
            quarantine.skip(path, box, line)
        else:
            boxes.append(box)
    return boxes


def load_json_object(root: SourceRoot, rel: str, quarantine: Quarantine, lists: Sequence[str] = ()
                     ) -> dict[str, Any] | None:
    """A JSON file whose top level is an object holding a list under each key of `lists`; None when it is
    not (quarantined as "invalid json" or "malformed file")."""
    document = load_json(root, rel, quarantine)
    if document is None:
        return None
    if not isinstance(document, dict):
        quarantine.skip(rel, "malformed file", "top level is not an object")
        return None
    missing = [key for key in lists if not isinstance(document.get(key), list)]
    if missing:
        quarantine.skip(rel, "malformed file", f"no {', '.join(repr(k) for k in missing)} list")
        return None
    return document

