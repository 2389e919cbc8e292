"""Scene classification (paper Tables II and III): strict Top-1 over normalised class names."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evaluation.answers import normalise_label


@dataclass(frozen=True)
class ClassificationScore:
    top1: float  # percent of samples whose normalised answer equals the normalised label
    unmatched: float  # percent of answers that name no class of the dataset (parse failures)
    samples: int
    majority_baseline: float  # percent: always answering the most common label of the evaluated split
    confusions: tuple[tuple[str, str, int], ...]  # the most frequent (label, answer) mistakes


def score_classification(predictions: Sequence[str], labels: Sequence[str], classes: Sequence[str],
                         aliases: Mapping[str, str] | None = None) -> ClassificationScore:
    """predictions / labels: one per sample; classes: the dataset's class names; aliases: normalised
    synonym -> normalised class name (e.g. 'parking lots' -> 'parking lot')."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("no samples to score")
    aliases = dict(aliases or {})
    known = {normalise_label(c) for c in classes}

    def canonical(text: str) -> str:
        name = normalise_label(text)
        return aliases.get(name, name)

    answers = [canonical(p) for p in predictions]
    truth = [canonical(label) for label in labels]
    correct = sum(a == t for a, t in zip(answers, truth, strict=True))
    mistakes = Counter((t, a) for a, t in zip(answers, truth, strict=True) if a != t)
    majority = Counter(truth).most_common(1)[0][1]
    return ClassificationScore(
        top1=100.0 * correct / len(truth),
        unmatched=100.0 * sum(a not in known for a in answers) / len(answers),
        samples=len(truth),
        majority_baseline=100.0 * majority / len(truth),
        confusions=tuple((t, a, n) for (t, a), n in mistakes.most_common(5)),
    )
