"""Dagster assets `eval/<benchmark>` (one per paper benchmark whose source is enabled) and
`evaluation_report` (the tables, MLflow logging, promotion of the registered model by alias).

Thin: the work is in evaluation.benchmarks and evaluation.report.
"""

# No `from __future__ import annotations` here: Dagster reads the config annotation at decoration time.

import dagster as dg
import fsspec

from assets.mmrs import ENABLED
from evaluation.benchmarks import BENCHMARKS, Benchmark, BenchmarkResult, run_benchmark
from evaluation.report import benchmark_table, render_report
from mmrs.shards import atomic_write_bytes, join, read_json, write_json
from models.io import load_model
from pipelines.params import load_params, repo_path

_PARAMS = load_params()
_EVAL = _PARAMS["evaluation"]
ACTIVE = [b for b in BENCHMARKS.values() if b.source in ENABLED and (_EVAL["benchmarks"] == "all"
                                                                      or b.name in _EVAL["benchmarks"])]


class EvalConfig(dg.Config):
    """Which model is evaluated on which converted corpus, and where results go (params.yaml `evaluation`)."""

    model_dir: str = f"{_PARAMS['train']['out']}/stage3/model"
    mmrs_out: str = _PARAMS["mmrs"]["out"]
    out: str = _EVAL["out"]
    batch_size: int = _EVAL["batch_size"]


def result_url(config: EvalConfig, name: str) -> str:
    return join(repo_path(config.out), f"{name}.json")


def beats_baseline(benchmark: Benchmark, result: BenchmarkResult) -> bool:
    return result.metrics[benchmark.headline] > result.baseline.get(benchmark.headline, 0.0)


def build_eval_asset(benchmark: Benchmark) -> dg.AssetsDefinition:
    key = ["eval", benchmark.name]

    @dg.asset(key=key, group_name="evaluation", deps=["earthgpt_model", dg.AssetKey(["mmrs", benchmark.source])],
              kinds={"pytorch"}, check_specs=[dg.AssetCheckSpec("beats_image_blind_baseline", asset=key)],
              description=f"Table {benchmark.table}: {benchmark.source} {benchmark.split} ({benchmark.task}, "
                          f"{benchmark.setting}), paper {benchmark.headline} "
                          f"{benchmark.paper.get(benchmark.headline)}.")
    def _eval(config: EvalConfig) -> dg.MaterializeResult:
        model, tokenizer = load_model(repo_path(config.model_dir))
        result = run_benchmark(benchmark, model, tokenizer, repo_path(config.mmrs_out), config.batch_size)
        url = result_url(config, benchmark.name)
        write_json(url, result.to_dict())
        headline = result.metrics[benchmark.headline]
        return dg.MaterializeResult(
            metadata={"samples": result.samples, benchmark.headline: round(headline, 2),
                      f"paper {benchmark.headline}": benchmark.paper.get(benchmark.headline),
                      "table": dg.MetadataValue.md(benchmark_table(result)),
                      "examples": dg.MetadataValue.json(result.examples),
                      "notes": dg.MetadataValue.json(result.notes), "result": url},
            check_results=[dg.AssetCheckResult(
                check_name="beats_image_blind_baseline", passed=beats_baseline(benchmark, result),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"ours": round(headline, 2),
                          "baseline": round(result.baseline.get(benchmark.headline, 0.0), 2)})],
        )

    return _eval


def build_report_asset(benchmarks: list[Benchmark]) -> dg.AssetsDefinition:
    @dg.asset(name="evaluation_report", group_name="evaluation",
              deps=[dg.AssetKey(["eval", b.name]) for b in benchmarks], kinds={"mlflow"},
              check_specs=[dg.AssetCheckSpec("every_benchmark_beats_its_baseline", asset="evaluation_report")],
              description="The paper's Tables II-VI with our numbers beside EarthGPT's, logged to the stage-3 "
                          "MLflow run; the registered model version gets the `champion` alias only if every "
                          "benchmark beats its image-blind baseline.")
    def _report(config: EvalConfig) -> dg.MaterializeResult:
        from models.mlflow_logging import promote

        results = [BenchmarkResult.from_dict(read_json(result_url(config, b.name))) for b in benchmarks]
        passed = {r.benchmark: beats_baseline(BENCHMARKS[r.benchmark], r) for r in results}
        report = render_report(results)
        url = join(repo_path(config.out), "report.md")
        atomic_write_bytes(url, report.encode("utf-8"))
        registration = _registration(config)
        promoted = False
        if registration:
            import mlflow

            mlflow.set_tracking_uri(registration["tracking_uri"])
            with mlflow.start_run(run_id=registration["run_id"]):
                mlflow.log_metrics({_metric_name(r.benchmark, k): v for r in results for k, v in r.metrics.items()})
                mlflow.log_text(report, "evaluation/report.md")
            promoted = promote(registration["registered_model"], registration["version"],
                               passed=all(passed.values()))
        return dg.MaterializeResult(
            metadata={"report": dg.MetadataValue.md(report), "path": url,
                      "registered_model": f"{registration['registered_model']} v{registration['version']}"
                      if registration else "none", "promoted_to_champion": promoted},
            check_results=[dg.AssetCheckResult(check_name="every_benchmark_beats_its_baseline",
                                               passed=all(passed.values()), metadata={"per_benchmark": passed})],
        )

    return _report


def _metric_name(benchmark: str, metric: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces; keep them readable."""
    return f"eval/{benchmark}/{metric.replace(' ', '_')}"


def build_evaluation_assets(benchmarks: list[Benchmark]) -> list[dg.AssetsDefinition]:
    """`eval/<name>` per benchmark and the `evaluation_report` over them."""
    return [*(build_eval_asset(b) for b in benchmarks), build_report_asset(benchmarks)]


def _registration(config: EvalConfig) -> dict | None:
    """What `earthgpt_model` registered in MLflow (written beside the model folder), if anything."""
    url = join(repo_path(config.model_dir).rstrip("/").rsplit("/", 1)[0], "registration.json")
    fs, path = fsspec.core.url_to_fs(url)
    return read_json(url) if fs.exists(path) else None


EVALUATION_ASSETS = build_evaluation_assets(ACTIVE)
