"""The paper's benchmarks (Tables II-VI) as data, and how one is run: records -> questions -> answers -> scores.

Every benchmark reads the converted records of its source and split (`mmrs/<source>/manifest.json`), asks
the model each question exactly as worded in training, and scores the answers with the task's scorer.
Each result carries a baseline that needs no image, so "the model learned something" is a comparison:
classification - always the most common label; VQA - each question type's most common training answer;
captioning - the most frequent training caption for every image.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.captioning import constant_caption, score_captions
from evaluation.classification import score_classification
from evaluation.predict import Question, answer_questions
from evaluation.vqa import VQAItem, prior_answers, score_vqa
from mmrs import templates
from mmrs.readers.common import display_name
from mmrs.registry import get_source
from mmrs.shards import iter_source_records, join, read_json, resolve_location


@dataclass(frozen=True)
class Benchmark:
    name: str
    table: str  # the paper's table, e.g. "II"
    source: str  # MMRS source whose converted records are evaluated
    split: str
    task: str  # classification | captioning | vqa
    setting: str  # supervised | zero-shot
    headline: str  # the metric the asset checks compare against the baseline
    paper: dict[str, float]  # EarthGPT's row in the paper
    question_types: tuple[str, ...] = ()  # VQA: the kept question types (empty: all)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("nwpu_resisc45", "II", "nwpu_resisc45", "test", "classification", "supervised", "Top-1",
              {"Top-1": 93.84}),
    Benchmark("clrs", "III", "clrs", "test", "classification", "zero-shot", "Top-1", {"Top-1": 77.37}),
    Benchmark("nasc_tg2", "III", "nasc_tg2", "test", "classification", "zero-shot", "Top-1", {"Top-1": 74.72}),
    Benchmark("nwpu_captions", "IV", "nwpu_captions", "test", "captioning", "supervised", "BLEU4",
              {"BLEU1": 87.1, "BLEU2": 78.7, "BLEU3": 71.6, "BLEU4": 65.5, "METEOR": 44.5, "ROUGE_L": 78.2,
               "CIDEr": 192.6, "SPICE": 32.2}),
    Benchmark("crsvqa", "V", "crsvqa", "test", "vqa", "supervised", "OA", {"OA": 82.00}),
    Benchmark("rsvqa_hr_phili", "VI", "rsvqa_hr", "test_phili", "vqa", "zero-shot", "presence balanced",
              {"presence": 62.77, "comp": 79.53, "OA": 72.06}, question_types=("presence", "comp")),

)}


@dataclass
class BenchmarkResult:
    benchmark: str
    samples: int  # images (classification, captioning) or questions (VQA) scored
    metrics: dict[str, float]
    baseline: dict[str, float]  # the same metrics for the image-blind baseline
    notes: dict[str, Any] = field(default_factory=dict)  # unmatched answers, confusions, unavailable metrics
    examples: list[dict[str, str]] = field(default_factory=list)  # a few (question, answer, truth)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        return cls(**data)


def _records(mmrs_out: str, benchmark: Benchmark, split: str) -> list[dict[str, Any]]:
    return [r for r in iter_source_records(join(mmrs_out, benchmark.source), (split,)) if r["task"] == benchmark.task]


def run_benchmark(benchmark: Benchmark, model, tokenizer, mmrs_out: str, batch_size: int = 32,
                  examples: int = 5, max_new_tokens: int = 48) -> BenchmarkResult:
    """Evaluate `model` on one benchmark of the converted corpus under `mmrs_out` (local or s3://)."""
    try:
        manifest = read_json(join(mmrs_out, benchmark.source, "manifest.json"))
    except FileNotFoundError:
        raise ValueError(f"{benchmark.name}: no converted {benchmark.source} under {mmrs_out}") from None
    records = _records(mmrs_out, benchmark, benchmark.split)
    if not records:
        raise ValueError(f"{benchmark.name}: no {benchmark.task} records in split {benchmark.split!r} of "
                         f"{join(mmrs_out, benchmark.source)}")
    image_root = resolve_location(manifest["image_root"], join(mmrs_out, benchmark.source))
    ask = functools.partial(answer_questions, model, tokenizer, image_root, batch_size=batch_size,
                            max_new_tokens=max_new_tokens)
    if benchmark.task == "classification":  # its baseline comes from the evaluated labels: no training records
        return _classification(benchmark, records, ask, examples)
    train = [r for split in manifest.get("train_splits") or ["train"] for r in _records(mmrs_out, benchmark, split)]
    run = {"captioning": _captioning, "vqa": _vqa}[benchmark.task]
    return run(benchmark, records, train, ask, examples)


def _classification(benchmark, records, ask, examples):
    spec = get_source(benchmark.source)
    classes = [display_name(c, spec.options.get("display_names")) for c in spec.categories or ()]
    questions = [Question(r["image"], r["conversations"][0]["value"]) for r in records]
    answers = ask(questions)
    labels = [display_name(r["target"]["label"], spec.options.get("display_names")) for r in records]
    score = score_classification(answers, labels, classes or sorted(set(labels)))
    return BenchmarkResult(
        benchmark.name, score.samples, {"Top-1": score.top1}, {"Top-1": score.majority_baseline},
        notes={"unmatched_answers_percent": score.unmatched, "classes": len(classes),
               "confusions": [list(c) for c in score.confusions], "baseline": "always the most common label"},
        examples=_examples(questions, answers, labels, examples))


def _captioning(benchmark, records, train, ask, examples):
    questions = [Question(r["image"], templates.CAPTION_PROMPT) for r in records]
    answers = ask(questions)
    references = {r["id"]: r["target"]["captions"] for r in records}
    ours = score_captions(dict(zip(references, answers, strict=True)), references)
    constant = constant_caption([r["target"]["captions"] for r in train] or list(references.values()))
    baseline = score_captions({i: constant for i in references}, references)
    return BenchmarkResult(
        benchmark.name, len(records), ours, baseline,
        notes={"unavailable": "SPICE (needs CoreNLP models downloaded at first use; cannot run offline)",
               "baseline": f"the constant caption {constant!r}"},
        examples=_examples(questions, answers, [r["target"]["captions"][0] for r in records], examples))


def _vqa(benchmark, records, train, ask, examples):
    kept = [(r, qa) for r in records for qa in r["target"]["qa"]
            if not benchmark.question_types or qa["type"] in benchmark.question_types]
    if not kept:
        raise ValueError(f"{benchmark.name}: no questions of types {benchmark.question_types}")
    questions = [Question(r["image"], templates.vqa_prompt(qa["question"])) for r, qa in kept]
    answers = ask(questions)
    truths = [qa["answer"] for _, qa in kept]
    types = [qa["type"] for _, qa in kept]
    score = _vqa_metrics([VQAItem(q.prompt, t, k, a) for q, t, k, a in zip(questions, truths, types, answers,
                                                                          strict=True)])
    source = [(qa["type"], qa["answer"]) for r in train for qa in r["target"]["qa"]] or list(zip(types, truths,
                                                                                               strict=True))
    prior = prior_answers(source)
    baseline = _vqa_metrics([VQAItem(q.prompt, t, k, prior.get(k, "")) for q, t, k in zip(questions, truths, types,
                                                                                         strict=True)])
    return BenchmarkResult(
        benchmark.name, len(kept), score, {k: v for k, v in baseline.items() if k != "OA_strict"},
        notes={"baseline": "each question type's most common training answer" if train
               else "each question type's most common answer in the evaluated split (no training split)",
               "balanced": "per type, the mean of the per-answer accuracies (a constant answer gets 50 on yes/no)"},
        examples=_examples(questions, answers, truths, examples))


def _vqa_metrics(items: list[VQAItem]) -> dict[str, float]:
    score = score_vqa(items)
    return {**score.per_type, **{f"{t} balanced": v for t, v in score.balanced.items()}, "OA": score.overall,
            "OA_strict": score.strict}


def _examples(questions: list[Question], answers: list[str], truths: list[str], n: int) -> list[dict[str, str]]:
    step = max(1, len(questions) // max(1, n))
    return [{"image": questions[i].image, "question": questions[i].prompt[:120], "answer": answers[i],
             "truth": truths[i]} for i in range(0, len(questions), step)][:n]
