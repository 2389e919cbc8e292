"""Visual question answering (paper Tables V and VI): accuracy per question type and pooled (OA).

Answers are compared after `evaluation.parsing.normalise_vqa` (for yes/no questions: the first yes/no
word), by equality, never by substring ("no" is not "not now"). Yes/no types of the sample corpus (and of
RSVQA) are unbalanced - most presence questions are "no" - so a constant answer scores high. Each type
therefore also gets a balanced accuracy (the mean of the per-answer recalls), on which any image-blind
constant answer scores 100 / (number of answers), 50 for yes/no.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from evaluation.parsing import is_yes_no, normalise_vqa, parse_short_answer


@dataclass(frozen=True)
class VQAItem:
    question: str
    answer: str  # ground truth
    type: str  # presence, comp, count, area, rural_urban, scene, ...
    prediction: str


@dataclass(frozen=True)
class VQAScore:
    per_type: dict[str, float]  # percent correct (normalised) per question type
    balanced: dict[str, float]  # per type: mean over ground-truth answers of the percent correct
    overall: float  # OA: percent correct pooled over every kept question
    strict: float  # OA with exact string equality, no normalisation
    samples: int
    failures: dict[str, int] = field(default_factory=dict)  # parse failure reason -> answers


def _norm(text: str, reference: str) -> str:
    return normalise_vqa(text, yes_no=is_yes_no(reference))


def score_vqa(items: Sequence[VQAItem]) -> VQAScore:
    if not items:
        raise ValueError("no questions to score")
    hits: dict[str, list[bool]] = defaultdict(list)
    per_answer: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    failures: Counter[str] = Counter()
    for item in items:
        truth = _norm(item.answer, item.answer)
        parsed = parse_short_answer(item.prediction, yes_no=is_yes_no(item.answer))
        if not parsed.ok:
            failures[parsed.failure] += 1
        hit = parsed.value == truth
        hits[item.type].append(hit)
        per_answer[item.type][truth].append(hit)
    return VQAScore(
        per_type={t: 100.0 * sum(v) / len(v) for t, v in sorted(hits.items())},
        balanced={t: 100.0 * sum(sum(v) / len(v) for v in answers.values()) / len(answers)
                  for t, answers in sorted(per_answer.items())},
        overall=100.0 * sum(sum(v) for v in hits.values()) / len(items),
        strict=100.0 * sum(i.prediction == i.answer for i in items) / len(items),
        samples=len(items),
        failures=dict(failures),
    )


def prior_answers(train_answers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """(type, answer) pairs of training data -> each type's most common normalised answer (ties: first seen)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for qtype, answer in train_answers:
        counts[qtype][_norm(answer, answer)] += 1
    return {t: c.most_common(1)[0][0] for t, c in counts.items()}
