"""Model-agnostic scoring from files, behind `earthgpt score`, `earthgpt predict` and `earthgpt benchmarks`.

A platform team scores any model's answers (ours, GeoChat's, a vendor's) with the code the assets use:
REF is a converted MMRS shard (its records' `target` holds the ground truth), PRED one `{"id", "answer"}`
per line (`evaluation.predictions`), ids as `evaluation.benchmarks` defines them. One PRED file may hold
the answers to every benchmark over its REF (e.g. MAR20 HBB and OBB, direct and count-then-detect); an id
that no benchmark asks is an error, as are missing and duplicate ids.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

import fsspec

from evaluation.benchmarks import BENCHMARKS, DETECTION, Benchmark, BenchmarkResult, benchmark_records, score_benchmark
from evaluation.confidence import choose_scorer
from evaluation.predictions import EvaluationInputError, read_predictions, read_references
from mmrs.shards import read_json, resolve_location


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise EvaluationInputError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}") from None


def benchmark_listing() -> list[dict[str, Any]]:
    """One row per benchmark: name, the paper's table, source, split, task, setting, prompting, metrics."""
    return [{"name": b.name, "table": b.table, "source": b.source, "split": b.split, "task": b.task,
             "setting": b.setting, "prompting": b.prompting if b.task in DETECTION else "-",
             "metrics": list(b.metrics)} for b in BENCHMARKS.values()]


def image_root_of(references: str) -> str | None:
    """The image root recorded in the manifest beside a REF shard (a converted source folder), if any."""
    folder = posixpath.dirname(references) or "."
    fs, path = fsspec.core.url_to_fs(posixpath.join(folder, "manifest.json"))
    if not fs.exists(path):
        return None
    return resolve_location(read_json(posixpath.join(folder, "manifest.json"))["image_root"], folder)


def benchmarks_for(records: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> list[Benchmark]:
    """The benchmarks a REF file is asked for: the named ones, else every benchmark of its records' source
    and split that has records of its task there."""
    keys = {(r.get("source"), r.get("split")) for r in records}
    if names:
        chosen = [get_benchmark(n) for n in names]
    else:
        chosen = [b for b in BENCHMARKS.values() if (b.source, b.split) in keys]
    chosen = [b for b in chosen if benchmark_records(b, records)]
    if not chosen:
        found = ", ".join(sorted(f"{source}/{split}" for source, split in keys))
        raise EvaluationInputError(f"no benchmark has questions in the references ({found}); name one with "
                                   "--benchmark")
    return chosen


def score_files(name: str, references: str, predictions: str, train: Sequence[str] = (),
                clip_model: str | None = None, image_root: str | None = None) -> BenchmarkResult:
    """`earthgpt score`: the benchmark's result for the answers in PRED against REF. train: training
    shards for the image-blind baseline (without them, the evaluated split's own statistics); clip_model:
    a CLIP folder for detection confidence (needs the image root: `image_root`, else REF's manifest)."""
    benchmark = get_benchmark(name)
    records = read_references(references)
    answers = read_predictions(predictions)
    train_records = [r for url in train or () for r in read_references(url)]
    scorer = None
    if benchmark.task in DETECTION and clip_model:
        scorer = choose_scorer([], clip_model, image_root or image_root_of(references))
    try:
        return score_benchmark(benchmark, records, answers, train_records, scorer=scorer)
    except (KeyError, IndexError, TypeError) as error:  # REF records without the ground truth the task needs
        raise EvaluationInputError(f"{references}: a {benchmark.task} record's target is not as converted records "
                                   f"hold it ({type(error).__name__}: {error})") from None
