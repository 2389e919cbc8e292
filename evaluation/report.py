"""The paper's tables with our numbers beside EarthGPT's own (markdown)."""

from __future__ import annotations

from collections.abc import Iterable

from evaluation.benchmarks import BENCHMARKS, BenchmarkResult

TABLE_TITLES = {
    "II": "Scene classification, supervised (Top-1 %)",
    "III": "Scene classification, zero-shot (Top-1 %)",
    "IV": "Image captioning, supervised (x100)",
    "V": "VQA, supervised (accuracy %)",
    "VI": "VQA, zero-shot, RSVQA-HR test set 2 without count/area (accuracy %)",
}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def benchmark_table(result: BenchmarkResult) -> str:
    """One benchmark: metric | EarthGPT (paper) | ours | image-blind baseline."""
    benchmark = BENCHMARKS[result.benchmark]
    metrics = list(dict.fromkeys([*benchmark.paper, *result.metrics]))
    rows = [f"| {benchmark.name} ({benchmark.split}, {result.samples} samples) | EarthGPT (paper) | ours | "
            "image-blind baseline |", "|---|---|---|---|"]
    for metric in metrics:
        ours = result.metrics.get(metric)
        rows.append(f"| {metric} | {_cell(benchmark.paper.get(metric))} | "
                    f"{'n/a' if ours is None and metric in benchmark.paper else _cell(ours)} | "
                    f"{_cell(result.baseline.get(metric))} |")
    return "\n".join(rows)


def render_report(results: Iterable[BenchmarkResult], title: str = "EarthGPT evaluation") -> str:
    """Every table the results cover, in the paper's order; n/a marks a metric we cannot compute."""
    by_table: dict[str, list[BenchmarkResult]] = {}
    for result in results:
        by_table.setdefault(BENCHMARKS[result.benchmark].table, []).append(result)
    parts = [f"# {title}", ""]
    for table in sorted(by_table, key=list(TABLE_TITLES).index):
        parts += [f"## Table {table}: {TABLE_TITLES[table]}", ""]
        for result in by_table[table]:
            parts += [benchmark_table(result), ""]
            for key, value in result.notes.items():
                if key in ("baseline", "unavailable", "unmatched_answers_percent"):
                    parts.append(f"- {key.replace('_', ' ')}: {value}")
            parts.append("")
    return "\n".join(parts)
