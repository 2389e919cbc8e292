"""Scene classification (paper Tables II and III): strict Top-1 over normalised class names.

An answer counts when, normalised (`evaluation.parsing.normalise_label`) and mapped through the dataset's
alias table (plurals, known synonyms), it is the label's normalised name. Answers naming no class are
counted as parse failures ("names no class"), never matched by removing spaces or by substrings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evaluation.parsing import normalise_label, parse_class


@dataclass(frozen=True)
class ClassificationScore:
    top1: float  # percent of samples whose normalised answer equals the normalised label
    unmatched: float  # percent of answers that name no class of the dataset (parse failures)
    samples: int
    majority_baseline: float  # percent: always answering the most common label of the evaluated split
    confusions: tuple[tuple[str, str, int], ...]  # the most frequent (label, answer) mistakes
    failures: dict[str, int]  # parse failure reason -> answers
    classes: tuple[str, ...]  # normalised class names, the rows and first columns of `matrix`
    matrix: tuple[tuple[int, ...], ...]  # [label][answer] counts; the last column: answers naming no class


def score_classification(predictions: Sequence[str], labels: Sequence[str], classes: Sequence[str],
                         aliases: Mapping[str, str] | None = None) -> ClassificationScore:
    """predictions / labels: one per sample; classes: the dataset's class names; aliases: normalised
    synonym -> normalised class name (e.g. 'parking lots' -> 'parking lot')."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("no samples to score")
    aliases = dict(aliases or {})
    names = tuple(dict.fromkeys(normalise_label(c) for c in classes))
    parsed = [parse_class(p, names, aliases) for p in predictions]
    truth = [aliases.get(normalise_label(label), normalise_label(label)) for label in labels]
    shown = [p.value if p.ok else aliases.get(normalise_label(text), normalise_label(text))
             for p, text in zip(parsed, predictions, strict=True)]
    correct = sum(p.value == t for p, t in zip(parsed, truth, strict=True))
    mistakes = Counter((t, a) for a, t in zip(shown, truth, strict=True) if a != t)
    column = {name: i for i, name in enumerate(names)}
    matrix = [[0] * (len(names) + 1) for _ in names]
    for p, t in zip(parsed, truth, strict=True):
        if t in column:
            matrix[column[t]][column[p.value] if p.ok else len(names)] += 1
    majority = Counter(truth).most_common(1)[0][1]
    return ClassificationScore(
        top1=100.0 * correct / len(truth),
        unmatched=100.0 * sum(not p.ok for p in parsed) / len(parsed),
        samples=len(truth),
        majority_baseline=100.0 * majority / len(truth),
        confusions=tuple((t, a, n) for (t, a), n in mistakes.most_common(5)),
        failures=dict(Counter(p.failure for p in parsed if not p.ok)),
        classes=names,
        matrix=tuple(tuple(row) for row in matrix),
    )
