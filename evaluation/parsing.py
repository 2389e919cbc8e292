"""Generated text -> what a scorer compares: a class name, a short answer, a count, HBB or OBB lists.

Every parser returns a `Parsed` and never raises: a failure is a value (`Parsed.value` None) with a reason
from a small fixed set, so benchmark results count failures by reason (`shared/evaluation.md`, "Parsing
generated answers"). Normalisation (one function per concept):

- `normalise_label`: classification names, 'Parking_Lot.' -> 'parking lot' (lower-case, `_` and `-` to
  space, punctuation dropped, spaces collapsed). Never by removing spaces: 'parkinglot' is no class.
- `normalise_vqa`: short answers, lower-case, stripped, trailing punctuation dropped; for yes/no questions
  the first yes/no word. Never substring matching.

Boxes are read in every form the spec lists: `[x1,y1,x2,y2;x1,y1,x2,y2]` (HBB) or groups of eight numbers
(OBB), after a class phrase or wrapped as `<p>two ships</p>[...]`, numbers separated by commas and/or
spaces, stray words inside or around the brackets, a last bracket left open by a length-limited
generation. Without any bracket, a run of exactly 4 (8) numbers separated by commas or spaces is a box.
Each box is clamped to [0, 1]; HBB corners are put in order (x1 < x2, y1 < y2); zero-area boxes (HBB with
no width or height, OBB whose convex hull has no area) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from shapely import MultiPoint

from mmrs.templates import first_count

T = TypeVar("T")

# failure reasons (Parsed.failure) and notes (Parsed.notes); results count them by these exact strings
EMPTY = "empty answer"
NO_CLASS = "names no class"
NO_YES_NO = "no yes/no word"
NO_COUNT = "no count"
NO_BOX = "no box"
WRONG_COUNT = "wrong number of coordinates"  # a box with other than 4 (HBB) or 8 (OBB) numbers: dropped
ZERO_AREA = "zero-area box"  # dropped
CLAMPED = "clamped to [0, 1]"  # fixed, kept
REVERSED = "corners reversed"  # fixed, kept


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """value: what was read (None when nothing usable was); failure: why value is None.

    Box parsers also give `notes` (one per box fixed or dropped, e.g. "zero-area box") and `spans` (the
    character span of each kept box in the text, in order: the tokens a log-probability is taken over)."""

    value: T | None
    failure: str | None = None
    notes: tuple[str, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.failure is None


# --- names and short answers -------------------------------------------------------------------------------

_PUNCTUATION = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_YES_NO = re.compile(r"\b(yes|no)\b")


def normalise_label(text: str) -> str:
    """'Parking_Lot.' -> 'parking lot': lower-case, '_' and '-' to space, punctuation dropped, spaces collapsed."""
    text = text.lower().replace("_", " ").replace("-", " ")
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def normalise_vqa(text: str, yes_no: bool = False) -> str:
    """Lower-case, stripped, trailing punctuation dropped; for yes/no questions the first yes/no word."""
    text = text.strip().lower().rstrip(".!?,;:").strip()
    if yes_no:
        found = _YES_NO.search(text)
        return found.group(1) if found else text
    return text


def is_yes_no(answer: str) -> bool:
    return answer.strip().lower() in ("yes", "no")


def parse_class(text: str, classes: Iterable[str], aliases: Mapping[str, str] | None = None) -> Parsed[str]:
    """The class an answer names, as its normalised name. aliases: normalised synonym -> normalised class
    (plurals, known synonyms). Strict: the whole normalised answer must be a class (or an alias of one)."""
    name = normalise_label(text)
    if not name:
        return Parsed(None, EMPTY)
    name = (aliases or {}).get(name, name)
    return Parsed(name) if name in {normalise_label(c) for c in classes} else Parsed(None, NO_CLASS)


def parse_short_answer(text: str, yes_no: bool = False) -> Parsed[str]:
    """A VQA answer, normalised; a yes/no question's answer must hold a yes/no word."""
    answer = normalise_vqa(text, yes_no)
    if not answer:
        return Parsed(None, EMPTY)
    if yes_no and answer not in ("yes", "no"):
        return Parsed(None, NO_YES_NO)
    return Parsed(answer)


def parse_count(text: str) -> Parsed[int]:
    """The first count an answer gives, as digits or a word ('There are eight planes' -> 8, 'none' -> 0)."""
    if not text.strip():
        return Parsed(None, EMPTY)
    count = first_count(text)
    return Parsed(None, NO_COUNT) if count is None else Parsed(count)


# --- boxes ---------------------------------------------------------------------------------------------------

# a number not glued to a word or another number: the 1 of "x1" or "A10" is not a coordinate
_NUMBER = r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])"
_NUMBER_RE = re.compile(_NUMBER)
_BRACKET = re.compile(r"\[([^\[\]]*)(?:\]|$)")  # a last bracket may be left open (generation cut short)
_RUN = re.compile(_NUMBER + r"(?:\s*[,\s]\s*" + _NUMBER + "){3,}")  # four or more numbers in a row

Box = tuple[float, ...]


def parse_hbbs(text: str) -> Parsed[list[Box]]:
    """Horizontal boxes (x1, y1, x2, y2), normalised [0, 1], in the order written."""
    return parse_boxes(text, oriented=False)


def parse_obbs(text: str) -> Parsed[list[Box]]:
    """Oriented boxes (x1, y1, ..., x4, y4), normalised [0, 1], in the order written."""
    return parse_boxes(text, oriented=True)


def parse_boxes(text: str, oriented: bool) -> Parsed[list[Box]]:
    """Every box of an answer (see the module docstring). value: the kept boxes, or None with the reason
    when none is kept ("empty answer", "no box", or the reason the last box was dropped)."""
    if not text.strip():
        return Parsed(None, EMPTY)
    size = 8 if oriented else 4
    pieces = _box_pieces(text)
    if not pieces:
        return Parsed(None, NO_BOX)
    boxes: list[Box] = []
    spans: list[tuple[int, int]] = []
    notes: list[str] = []
    for start, end in pieces:
        numbers = [float(m.group()) for m in _NUMBER_RE.finditer(text, start, end)]
        if len(numbers) != size:
            notes.append(WRONG_COUNT)
            continue
        box, fixes = (_obb if oriented else _hbb)(numbers)
        notes += fixes
        if box is not None:
            boxes.append(box)
            spans.append((start, end))
    if not boxes:
        return Parsed(None, notes[-1], tuple(notes))
    return Parsed(boxes, None, tuple(notes), tuple(spans))


def _box_pieces(text: str) -> list[tuple[int, int]]:
    """Character spans holding one box each: the ';'-separated parts of bracket groups that hold a number
    (stripped of spaces), or, without any bracket, each run of four or more numbers separated by commas or
    spaces (a run of other than 4 (HBB) or 8 (OBB) numbers is then dropped as a wrong number of coordinates)."""
    pieces = []
    brackets = list(_BRACKET.finditer(text))
    for group in brackets:
        start = group.start(1)
        for part in group.group(1).split(";"):
            end = start + len(part)
            if _NUMBER_RE.search(text, start, end):
                left = start + len(part) - len(part.lstrip())
                pieces.append((left, start + len(part.rstrip())))
            start = end + 1
    if brackets:
        return pieces
    return [(m.start(), m.end()) for m in _RUN.finditer(text)]


def _clamp(values: list[float]) -> tuple[list[float], list[str]]:
    clamped = [min(max(v, 0.0), 1.0) for v in values]
    return clamped, [CLAMPED] if clamped != values else []


def _hbb(numbers: list[float]) -> tuple[Box | None, list[str]]:
    (x1, y1, x2, y2), notes = _clamp(numbers)
    if x1 > x2 or y1 > y2:
        notes.append(REVERSED)
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
    if x1 == x2 or y1 == y2:
        return None, [*notes, ZERO_AREA]
    return (x1, y1, x2, y2), notes


def _obb(numbers: list[float]) -> tuple[Box | None, list[str]]:
    values, notes = _clamp(numbers)
    hull = MultiPoint(list(zip(values[0::2], values[1::2], strict=True))).convex_hull
    if hull.area <= 0.0:
        return None, [*notes, ZERO_AREA]
    return tuple(values), notes
