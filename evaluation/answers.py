"""Answer normalisation shared by the classification and VQA scorers (`shared/evaluation.md`).

Strict comparisons are reported beside the normalised ones, so a reader sees what normalising bought.
"""

from __future__ import annotations

import re

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
