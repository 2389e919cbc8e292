"""The paper's benchmarks (Tables II-IX) as data, the questions each one asks, and how answers are scored.

Every benchmark reads the converted records of its source and split (`mmrs/<source>/manifest.json`), asks
the model each question exactly as worded in training (`mmrs.templates`), and scores the answers with the
task's scorer. Scoring needs no model: `score_benchmark` takes the records and the answers by question id,
so our answers (`run_benchmark`, `earthgpt predict`) and anyone else's (`earthgpt score`) are scored by
the same code.

Question ids: `<record id>#<n>`. n numbers the questions the benchmark asks about one record:
- classification, captioning, direct detection: one question, `#0`;
- VQA and grounding: the record's n-th question / referring expression (0-based, the order of the record's
  `target.qa` / `target.referrals`; types a benchmark leaves out keep their numbers);
- count-then-detect: `#count` (how many?) and `#after_count` (detection asked after it, in the same
  conversation, with the count as a hint);
- a held-out wording variant (`<name>_reworded`): `#r<n>`, the same questions in words no training record
  uses (`templates.reworded_*`), so one PRED file can answer both wordings.

Each result carries a baseline that needs no image, so "the model learned something" is a comparison:
classification - always the most common label; VQA - each question type's most common training answer;
captioning - the most frequent training caption for every image; grounding - the mean training box for
every question; detection - per image, K boxes of the mean training size on a regular grid (K: the mean
number of objects per training image, rounded), equal scores. Without a training split, the statistics
of the evaluated split are used (the result's notes say so).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.captioning import METRICS as CAPTION_METRICS
from evaluation.captioning import constant_caption, score_captions
from evaluation.classification import score_classification
from evaluation.confidence import BoxQuery, BoxScorer, choose_scorer
from evaluation.detection import RECALL_POINTS, DetectedBox, TruthBox, average_precision, metric_name
from evaluation.detection import THRESHOLDS as AP_THRESHOLDS
from evaluation.grounding import METRICS as GROUNDING_METRICS
from evaluation.grounding import score_grounding
from evaluation.parsing import EMPTY, normalise_label, parse_boxes, parse_count
from evaluation.predictions import EvaluationInputError, Prediction
from evaluation.vqa import VQAItem, prior_answers, score_vqa
from mmrs import templates
from mmrs.readers.common import display_name
from mmrs.registry import get_source
from mmrs.shards import iter_source_records, join, read_json, resolve_location

DETECTION = ("detection_hbb", "detection_obb")
WORDINGS = ("training", "reworded")
REWORDABLE = ("classification", "captioning", "vqa")  # tasks with held-out wordings in `mmrs.templates`


@dataclass(frozen=True)
class Benchmark:
    name: str
    table: str  # the paper's table, e.g. "II"
    source: str  # MMRS source whose converted records are evaluated
    split: str
    task: str  # classification | captioning | vqa | grounding | detection_hbb | detection_obb
    setting: str  # supervised | zero-shot
    headline: str  # the metric the asset checks compare against the baseline
    paper: dict[str, float]  # EarthGPT's row in the paper
    question_types: tuple[str, ...] = ()  # VQA: the kept question types (empty: all)
    detect_class: str = ""  # detection: the class every object is evaluated as (asked as its plural)
    prompting: str = "direct"  # detection: "direct" or "count_then_detect"
    aliases: Mapping[str, str] = field(default_factory=dict)  # classification: known synonyms (normalised)
    wording: str = "training"  # "training": asked as in training; "reworded": held-out words (module docstring)

    def __post_init__(self) -> None:
        if self.wording not in WORDINGS:
            raise ValueError(f"{self.name}: wording must be one of {WORDINGS}, got {self.wording!r}")
        if self.wording == "reworded" and self.task not in REWORDABLE:
            raise ValueError(f"{self.name}: no held-out wording for {self.task} (only {', '.join(REWORDABLE)})")

    @property
    def oriented(self) -> bool:
        return self.task == "detection_obb"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names a result of this benchmark has (`earthgpt benchmarks`)."""
        if self.task == "classification":
            return ("Top-1",)
        if self.task == "captioning":
            return CAPTION_METRICS
        if self.task == "vqa":
            types = self.question_types or ("<type>",)
            return (*types, *(f"{t} balanced" for t in types), "OA", "OA_strict")
        if self.task == "grounding":
            return GROUNDING_METRICS
        extra = ("count accuracy",) if self.prompting == "count_then_detect" else ()
        return (*(metric_name(t) for t in AP_THRESHOLDS), *extra)


_MAR20 = {"detect_class": "plane", "setting": "zero-shot", "headline": "AP@50"}
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("nwpu_resisc45", "II", "nwpu_resisc45", "test", "classification", "supervised", "Top-1",
              {"Top-1": 93.84}),
    Benchmark("nwpu_resisc45_reworded", "II", "nwpu_resisc45", "test", "classification", "supervised", "Top-1",
              {"Top-1": 93.84}, wording="reworded"),
    # zero-shot: a model trained on other class lists answers in their words; these are the same classes
    Benchmark("clrs", "III", "clrs", "test", "classification", "zero-shot", "Top-1", {"Top-1": 77.37},
              aliases={"harbor": "port", "harbour": "port", "parking lot": "parking", "commercial area": "commercial",
                       "industrial area": "industrial", "freeway": "highway"}),
    Benchmark("nasc_tg2", "III", "nasc_tg2", "test", "classification", "zero-shot", "Top-1", {"Top-1": 74.72},
              aliases={"circle farmland": "circular farmland", "rectangle farmland": "rectangular farmland"}),
    Benchmark("nwpu_captions", "IV", "nwpu_captions", "test", "captioning", "supervised", "BLEU4",
              {"BLEU1": 87.1, "BLEU2": 78.7, "BLEU3": 71.6, "BLEU4": 65.5, "METEOR": 44.5, "ROUGE_L": 78.2,
               "CIDEr": 192.6, "SPICE": 32.2}),
    Benchmark("nwpu_captions_reworded", "IV", "nwpu_captions", "test", "captioning", "supervised", "BLEU4",
              {"BLEU1": 87.1, "BLEU2": 78.7, "BLEU3": 71.6, "BLEU4": 65.5, "METEOR": 44.5, "ROUGE_L": 78.2,
               "CIDEr": 192.6, "SPICE": 32.2}, wording="reworded"),
    Benchmark("crsvqa", "V", "crsvqa", "test", "vqa", "supervised", "OA", {"OA": 82.00}),
    Benchmark("crsvqa_reworded", "V", "crsvqa", "test", "vqa", "supervised", "OA", {"OA": 82.00},
              wording="reworded"),
    Benchmark("rsvqa_hr_phili", "VI", "rsvqa_hr", "test_phili", "vqa", "zero-shot", "presence balanced",
              {"presence": 62.77, "comp": 79.53, "OA": 72.06}, question_types=("presence", "comp")),
    Benchmark("dior_rsvg", "VII", "dior_rsvg", "test", "grounding", "supervised", "Pr@0.5",
              {"Pr@0.5": 76.65, "Pr@0.6": 71.93, "Pr@0.7": 66.52, "Pr@0.8": 56.53, "Pr@0.9": 37.63,
               "mIoU": 69.34, "cIoU": 81.54}),
    Benchmark("mar20_hbb", "VIII", "mar20", "test", "detection_hbb", paper={"AP@40": 90.47, "AP@50": 90.11},
              **_MAR20),
    Benchmark("mar20_hbb_count_then_detect", "VIII", "mar20", "test", "detection_hbb",
              paper={"AP@40": 90.47, "AP@50": 90.11}, prompting="count_then_detect", **_MAR20),
    Benchmark("mar20_obb", "IX", "mar20", "test", "detection_obb", paper={"AP@40": 90.53, "AP@50": 87.86},
              **_MAR20),
    Benchmark("mar20_obb_count_then_detect", "IX", "mar20", "test", "detection_obb",
              paper={"AP@40": 90.53, "AP@50": 87.86}, prompting="count_then_detect", **_MAR20),
)}


@dataclass
class BenchmarkResult:
    benchmark: str
    samples: int  # images (classification, captioning, detection) or questions (VQA, grounding) scored
    metrics: dict[str, float]
    baseline: dict[str, float]  # the same metrics for the image-blind baseline
    notes: dict[str, Any] = field(default_factory=dict)  # how it was scored, confusions, curves, unavailable
    examples: list[dict[str, str]] = field(default_factory=list)  # a few (question, answer, truth)
    answers: int = 0  # answers parsed (count-then-detect: the count and the detection answers)
    parse_failures: dict[str, int] = field(default_factory=dict)  # reason -> answers that gave nothing usable

    def parse_failure_percent(self) -> float:
        return 100.0 * sum(self.parse_failures.values()) / self.answers if self.answers else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        return cls(**data)


# --- questions --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    id: str  # "<record id>#<n>" (module docstring)
    image: str  # relative to the image root, as in the record
    prompt: str  # the instruction as in training (templates.py wording), or in held-out words (reworded variant)
    history: tuple[tuple[str, str], ...] = ()  # earlier (question, answer) rounds of the same conversation


def count_id(record_id: str) -> str:
    return f"{record_id}#count"


def after_count_id(record_id: str) -> str:
    return f"{record_id}#after_count"


def benchmark_records(benchmark: Benchmark, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records a benchmark scores: those of its task (any split: a REF file is taken as given)."""
    return [dict(r) for r in records if r["task"] == benchmark.task]


def _kept_qa(benchmark: Benchmark, record: Mapping[str, Any]) -> list[tuple[int, dict[str, str]]]:
    return [(i, qa) for i, qa in enumerate(record["target"]["qa"])
            if not benchmark.question_types or qa["type"] in benchmark.question_types]


def _detection_prompt(benchmark: Benchmark) -> str:
    return templates.category_detection_prompt(templates.plural(benchmark.detect_class), benchmark.oriented)


def count_prompt(benchmark: Benchmark) -> str:
    """Count-then-detect, first question: 'How many planes are there in the image? ...'."""
    return templates.count_question(templates.plural(benchmark.detect_class))


def questions(benchmark: Benchmark, records: Sequence[Mapping[str, Any]]) -> list[Question]:
    """What the benchmark asks first about each record (count-then-detect: the count questions; the
    detection questions depend on their answers, see `evaluation.predict`)."""
    records = benchmark_records(benchmark, records)
    task = benchmark.task
    if benchmark.wording == "reworded":
        return _reworded_questions(benchmark, records)
    if task == "classification":
        return [Question(f"{r['id']}#0", r["image"], _human(r)) for r in records]
    if task == "captioning":
        return [Question(f"{r['id']}#0", r["image"], templates.CAPTION_PROMPT) for r in records]
    if task == "vqa":
        return [Question(f"{r['id']}#{i}", r["image"], templates.vqa_prompt(qa["question"]))
                for r in records for i, qa in _kept_qa(benchmark, r)]
    if task == "grounding":
        return [Question(f"{r['id']}#{i}", r["image"], templates.grounding_prompt(ref["text"]))
                for r in records for i, ref in enumerate(r["target"]["referrals"])]
    if benchmark.prompting == "count_then_detect":
        return [Question(count_id(r["id"]), r["image"], count_prompt(benchmark)) for r in records]
    return [Question(f"{r['id']}#0", r["image"], _detection_prompt(benchmark)) for r in records]


def _reworded_questions(benchmark: Benchmark, records: Sequence[Mapping[str, Any]]) -> list[Question]:
    """The questions of `questions` in held-out words, numbered `#r<n>`."""
    if benchmark.task == "classification":
        return [Question(f"{r['id']}#r0", r["image"],
                         templates.reworded_classification_prompt(templates.reference_categories(_human(r))))
                for r in records]
    if benchmark.task == "captioning":
        return [Question(f"{r['id']}#r0", r["image"], templates.REWORDED_CAPTION_PROMPT) for r in records]
    return [Question(f"{r['id']}#r{i}", r["image"], templates.reworded_vqa_prompt(qa["question"]))
            for r in records for i, qa in _kept_qa(benchmark, r)]


def _human(record: Mapping[str, Any]) -> str:
    """The record's first instruction without the image token (classification: the reference categories)."""
    return record["conversations"][0]["value"].replace("<image>", "").strip()


def question_ids(benchmark: Benchmark, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every id a complete set of answers has, in order."""
    ids = [q.id for q in questions(benchmark, records)]
    if benchmark.prompting == "count_then_detect":
        ids += [after_count_id(r["id"]) for r in benchmark_records(benchmark, records)]
    return ids


def _sibling_ids(benchmark: Benchmark, records: Sequence[Mapping[str, Any]]) -> set[str]:
    """Ids of every benchmark over the same source: one PRED file may answer all of them."""
    siblings = [b for b in BENCHMARKS.values() if b.source == benchmark.source]
    return {i for b in (benchmark, *siblings) for i in question_ids(b, records)}


def check_predictions(benchmark: Benchmark, records: Sequence[Mapping[str, Any]],
                      predictions: Mapping[str, Prediction]) -> None:
    """Every question answered, and no answer to a question that no benchmark of the source asks about
    `records` (all of the references, any task)."""
    expected = question_ids(benchmark, records)
    if not expected:
        raise EvaluationInputError(f"{benchmark.name}: no {benchmark.task} questions in the references")
    missing = [i for i in expected if i not in predictions]
    if missing:
        raise EvaluationInputError(f"{benchmark.name}: {len(missing)} of {len(expected)} questions have no "
                                   f"prediction, e.g. {missing[0]!r}")
    known = _sibling_ids(benchmark, records)
    extra = [i for i in predictions if i not in known]
    if extra:
        raise EvaluationInputError(f"{benchmark.name}: {len(extra)} prediction ids match no question of the "
                                   f"references, e.g. {extra[0]!r}")


# --- loading and running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkData:
    records: list[dict[str, Any]]  # the evaluated split, the benchmark's task
    train: list[dict[str, Any]]  # the source's training splits, the benchmark's task (baselines)
    image_root: str


def load_benchmark_data(benchmark: Benchmark, mmrs_out: str) -> BenchmarkData:
    """The records of a benchmark in the converted corpus under `mmrs_out` (local or s3://)."""
    folder = join(mmrs_out, benchmark.source)
    try:
        manifest = read_json(join(folder, "manifest.json"))
    except FileNotFoundError:
        raise ValueError(f"{benchmark.name}: no converted {benchmark.source} under {mmrs_out}") from None

    def of(splits: tuple[str, ...]) -> list[dict[str, Any]]:
        return benchmark_records(benchmark, iter_source_records(folder, splits))

    records = of((benchmark.split,))
    if not records:
        raise ValueError(f"{benchmark.name}: no {benchmark.task} records in split {benchmark.split!r} of {folder}")
    train = of(tuple(manifest.get("train_splits") or ["train"]))
    return BenchmarkData(records, train, resolve_location(manifest["image_root"], folder))


def run_benchmark(benchmark: Benchmark, model, tokenizer, mmrs_out: str, batch_size: int = 32,
                  examples: int = 5, max_new_tokens: int | None = None,
                  predictions: Mapping[str, Prediction] | None = None, clip_model: str | None = None
                  ) -> BenchmarkResult:
    """Evaluate on one benchmark of the converted corpus under `mmrs_out`: generate the answers (unless
    `predictions` are given: then no model is needed), then `score_benchmark`. clip_model: a CLIP folder
    for detection confidences (else the answers' box log-probabilities)."""
    data = load_benchmark_data(benchmark, mmrs_out)
    if predictions is None:
        from evaluation.predict import predict_benchmark  # the model code, only when generating

        predictions = {p.id: p for p in predict_benchmark(benchmark, model, tokenizer, data.image_root, data.records,
                                                          batch_size=batch_size, max_new_tokens=max_new_tokens)}
    scorer = choose_scorer([], clip_model, data.image_root) if benchmark.task in DETECTION and clip_model else None
    return score_benchmark(benchmark, data.records, predictions, data.train, scorer=scorer, examples=examples)


# --- scoring ----------------------------------------------------------------------------------------------


def score_benchmark(benchmark: Benchmark, records: Sequence[Mapping[str, Any]],
                    predictions: Mapping[str, Prediction], train: Sequence[Mapping[str, Any]] = (),
                    scorer: BoxScorer | None = None, examples: int = 5) -> BenchmarkResult:
    """Score answers (id -> Prediction, ids as `question_ids`) against the records' targets. records may
    hold other tasks too (a whole REF shard); train: training records for the baseline (may be empty).
    scorer: detection confidence (default: `choose_scorer` on the predictions). Missing or unknown ids are
    an EvaluationInputError."""
    check_predictions(benchmark, records, predictions)
    records = benchmark_records(benchmark, records)
    train = benchmark_records(benchmark, train)
    if benchmark.task in DETECTION:
        own = [predictions[i] for i in question_ids(benchmark, records)]
        return _detection(benchmark, records, predictions, train, scorer or choose_scorer(own), examples)
    run: dict[str, Callable[..., BenchmarkResult]] = {
        "classification": _classification, "captioning": _captioning, "vqa": _vqa, "grounding": _grounding}
    return run[benchmark.task](benchmark, records, predictions, train, examples)


def classification_aliases(benchmark: Benchmark, classes: Sequence[str]) -> dict[str, str]:
    """The alias table a classification benchmark is scored with: each class's plural ('storage tanks'),
    then the benchmark's known synonyms; normalised names on both sides, never shadowing a class."""
    names = {normalise_label(c) for c in classes}
    table = {normalise_label(templates.plural(c)): normalise_label(c) for c in classes}
    table |= {normalise_label(k): normalise_label(v) for k, v in benchmark.aliases.items()}
    return {k: v for k, v in table.items() if k not in names and v in names}


def _classification(benchmark, records, predictions, train, examples):
    spec = get_source(benchmark.source)
    names = spec.options.get("display_names")
    classes = [display_name(c, names) for c in spec.categories or ()]
    labels = [display_name(r["target"]["label"], names) for r in records]
    classes = classes or sorted(set(labels))
    qs = questions(benchmark, records)
    answers = [predictions[q.id].answer for q in qs]
    score = score_classification(answers, labels, classes, classification_aliases(benchmark, classes))
    return BenchmarkResult(
        benchmark.name, score.samples, {"Top-1": score.top1}, {"Top-1": score.majority_baseline},
        notes={"unmatched_answers_percent": score.unmatched, "classes": len(classes),
               "confusions": [list(c) for c in score.confusions], "baseline": "always the most common label",
               "aliases": classification_aliases(benchmark, classes),
               "confusion_matrix": {"classes": list(score.classes), "matrix": [list(r) for r in score.matrix]}},
        examples=_examples(qs, answers, labels, examples), answers=len(answers), parse_failures=score.failures)


def _captioning(benchmark, records, predictions, train, examples):
    qs = questions(benchmark, records)
    answers = [predictions[q.id].answer for q in qs]
    references = {r["id"]: r["target"]["captions"] for r in records}
    ours = score_captions(dict(zip(references, answers, strict=True)), references)
    constant = constant_caption([r["target"]["captions"] for r in train] or list(references.values()))
    baseline = score_captions({i: constant for i in references}, references)
    empty = sum(not a.strip() for a in answers)
    return BenchmarkResult(
        benchmark.name, len(records), ours, baseline,
        notes={"unavailable": "SPICE (needs CoreNLP models downloaded at first use; cannot run offline)",
               "baseline": f"the constant caption {constant!r}"},
        examples=_examples(qs, answers, [r["target"]["captions"][0] for r in records], examples),
        answers=len(answers), parse_failures={EMPTY: empty} if empty else {})


def _vqa(benchmark, records, predictions, train, examples):
    kept = [(r, i, qa) for r in records for i, qa in _kept_qa(benchmark, r)]
    if not kept:
        raise EvaluationInputError(f"{benchmark.name}: no questions of types {benchmark.question_types}")
    qs = questions(benchmark, records)
    answers = [predictions[q.id].answer for q in qs]
    truths = [qa["answer"] for _, _, qa in kept]
    types = [qa["type"] for _, _, qa in kept]
    items = [VQAItem(q.prompt, t, k, a) for q, t, k, a in zip(qs, truths, types, answers, strict=True)]
    score = score_vqa(items)
    source = [(qa["type"], qa["answer"]) for r in train for qa in r["target"]["qa"]] or list(zip(types, truths,
                                                                                               strict=True))
    prior = prior_answers(source)
    baseline = _vqa_metrics(score_vqa([VQAItem(i.question, i.answer, i.type, prior.get(i.type, "")) for i in items]))
    return BenchmarkResult(
        benchmark.name, len(kept), _vqa_metrics(score), {k: v for k, v in baseline.items() if k != "OA_strict"},
        notes={"baseline": "each question type's most common training answer" if train
               else "each question type's most common answer in the evaluated split (no training split)",
               "balanced": "per type, the mean of the per-answer accuracies (a constant answer gets 50 on yes/no)"},
        examples=_examples(qs, answers, truths, examples), answers=len(answers), parse_failures=score.failures)


def _vqa_metrics(score) -> dict[str, float]:
    return {**score.per_type, **{f"{t} balanced": v for t, v in score.balanced.items()}, "OA": score.overall,
            "OA_strict": score.strict}


def _grounding(benchmark, records, predictions, train, examples):
    qs = questions(benchmark, records)
    truths = [tuple(ref["box_norm"]) for r in records for ref in r["target"]["referrals"]]
    answers = [predictions[q.id].answer for q in qs]
    parsed = [parse_boxes(a, oriented=False) for a in answers]
    boxes = [p.value[0] if p.ok else None for p in parsed]
    source = [tuple(ref["box_norm"]) for r in train for ref in r["target"]["referrals"]] or truths
    mean_box = tuple(sum(b[i] for b in source) / len(source) for i in range(4))
    ours, baseline = score_grounding(truths, boxes), score_grounding(truths, [mean_box] * len(truths))
    return BenchmarkResult(
        benchmark.name, ours.samples, ours.metrics, baseline.metrics,
        notes={"baseline": f"the mean {'training' if train else 'evaluated-split'} box "
                           f"[{', '.join(f'{c:.4f}' for c in mean_box)}] for every question",
               "iou": "continuous (no +1), on the records' normalised padded-square frame; Pr@k counts IoU > k",
               "unparsable": "IoU 0, the true box's area in the cIoU union",
               "several_boxes_first_scored": sum(p.ok and len(p.value) > 1 for p in parsed),
               "box_notes": dict(Counter(n for p in parsed for n in p.notes))},
        examples=_examples(qs, answers, [str(list(t)) for t in truths], examples), answers=len(answers),
        parse_failures=dict(Counter(p.failure for p in parsed if not p.ok)))


def _detection(benchmark, records, predictions, train, scorer: BoxScorer, examples):
    label = benchmark.detect_class
    ctd = benchmark.prompting == "count_then_detect"
    ids = [after_count_id(r["id"]) if ctd else f"{r['id']}#0" for r in records]
    truths = [TruthBox(i, label, tuple(b)) for i, r in enumerate(records) for b in r["target"]["boxes_norm"]]
    detections, parsed_all = [], []
    for i, (record, pid) in enumerate(zip(records, ids, strict=True)):
        prediction = predictions[pid]
        parsed = parse_boxes(prediction.answer, benchmark.oriented)
        parsed_all.append(parsed)
        boxes = parsed.value or []
        scores = scorer(BoxQuery(record, label, boxes, prediction))
        detections += [DetectedBox(i, label, b, s) for b, s in zip(boxes, scores, strict=True)]
    score = average_precision(truths, detections, oriented=benchmark.oriented)
    baseline_boxes, how = _baseline_detections(records, train, benchmark.oriented)
    baseline = average_precision(truths, [DetectedBox(i, label, b, 1.0) for i, boxes in enumerate(baseline_boxes)
                                          for b in boxes], oriented=benchmark.oriented)
    metrics, failures = dict(score.ap), Counter(p.failure for p in parsed_all if not p.ok)
    notes: dict[str, Any] = {
        "classes": f"every object as {label!r} (zero-shot MAR20: the paper's open-set and DOTA-trained "
                   "comparisons know no aircraft types)",
        "confidence": scorer.name,
        "match": "COCOeval: IoU >= threshold, each truth once, higher scores first",
        "interpolation": f"COCO {len(RECALL_POINTS)}-point (recall 0, 0.01, .., 1), precision monotone from the right",
        "iou": "exact polygon IoU (shapely)" if benchmark.oriented else "box IoU, continuous (no +1)",
        "truths": score.truths, "boxes_predicted": score.detections,
        "recall": score.recall, "per_class_ap": score.per_class, "pr_curves": score.precision,
        "box_notes": dict(Counter(n for p in parsed_all for n in p.notes)),
        "baseline": how,
    }
    if ctd:
        counts = [parse_count(predictions[count_id(r["id"])].answer) for r in records]
        metrics["count accuracy"] = 100.0 * sum(
            c.ok and c.value == len(r["target"]["boxes_norm"]) for c, r in zip(counts, records, strict=True)
        ) / len(records)
        failures.update(f"count question: {c.failure}" for c in counts if not c.ok)
        notes["prompting"] = "count-then-detect: the count asked first, then detection with the count as a hint"
    return BenchmarkResult(
        benchmark.name, len(records), metrics, dict(baseline.ap), notes=notes,
        examples=[{"image": records[i]["image"], "question": _detection_prompt(benchmark),
                   "answer": predictions[ids[i]].answer[:300],
                   "truth": f"{len(records[i]['target']['boxes_norm'])} objects"}
                  for i in range(0, len(records), max(1, len(records) // max(1, examples)))][:examples],
        answers=len(records) * (2 if ctd else 1), parse_failures=dict(failures))


def _baseline_detections(records, train, oriented: bool) -> tuple[list[list[tuple[float, ...]]], str]:
    """Per record, K boxes of the mean size on a regular grid (module docstring), and how they were made."""
    source = train or records
    boxes = [b for r in source for b in r["target"]["boxes_norm"]]
    widths = [max(b[0::2]) - min(b[0::2]) for b in boxes] or [0.1]
    heights = [max(b[1::2]) - min(b[1::2]) for b in boxes] or [0.1]
    w, h = sum(widths) / len(widths), sum(heights) / len(heights)
    k = max(1, round(len(boxes) / len(source)))
    side = math.ceil(math.sqrt(k))
    grid = []
    for n in range(k):
        cx, cy = (n % side + 0.5) / side, (n // side + 0.5) / side
        x1, y1 = min(max(cx - w / 2, 0.0), 1.0 - w), min(max(cy - h / 2, 0.0), 1.0 - h)
        box = (x1, y1, x1 + w, y1 + h)
        grid.append((x1, y1, x1 + w, y1, x1 + w, y1 + h, x1, y1 + h) if oriented else box)
    how = (f"per image {k} box(es) of the mean {'training' if train else 'evaluated-split'} size "
           f"{w:.3f} x {h:.3f} on a {side}x{side} grid, equal scores (needs no image)")
    return [list(grid) for _ in records], how


def _examples(questions_: Sequence[Question], answers: Sequence[str], truths: Sequence[str], n: int
              ) -> list[dict[str, str]]:
    step = max(1, len(questions_) // max(1, n))
    return [{"image": questions_[i].image, "question": questions_[i].prompt[:120], "answer": answers[i],
             "truth": truths[i]} for i in range(0, len(questions_), step)][:n]
