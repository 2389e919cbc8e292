"""Dagster assets `eval/<benchmark>` (one per paper benchmark whose source is enabled) and
`evaluation_report` (the tables, MLflow logging, promotion of the registered model by alias).

Thin: the work is in evaluation.benchmarks and evaluation.report; the model is loaded once per process for
every benchmark of a run (ModelLoaderResource).
"""

# No `from __future__ import annotations` here: Dagster reads the resource annotations at decoration time.

import dagster as dg

from assets.resources import ModelLoaderResource, StorageResource
from assets.run_config import config_schema, read_config, settings_markdown
from evaluation.benchmarks import BENCHMARKS, Benchmark, BenchmarkResult, run_benchmark
from evaluation.report import benchmark_table, render_report
from evaluation.settings import EvaluationSettings
from mmrs.shards import atomic_write_bytes, read_json, write_json


def beats_baseline(benchmark: Benchmark, result: BenchmarkResult) -> bool:
    return result.metrics[benchmark.headline] > result.baseline.get(benchmark.headline, 0.0)


def build_eval_asset(benchmark: Benchmark, defaults: EvaluationSettings) -> dg.AssetsDefinition:
    key = ["eval", benchmark.name]

    @dg.asset(key=key, group_name="evaluation", deps=["earthgpt_model", dg.AssetKey(["mmrs", benchmark.source])],
              kinds={"pytorch"}, config_schema=config_schema(defaults),
              check_specs=[dg.AssetCheckSpec(
                  "beats_image_blind_baseline", asset=key,
                  description=f"Our {benchmark.headline} is above the image-blind baseline's (a model that "
                              "ignores the image: the most common answer, label or caption).")],
              description=f"Table {benchmark.table}: {benchmark.source} {benchmark.split} ({benchmark.task}, "
                          f"{benchmark.setting}); the stage-3 model's answers scored with the paper's metrics "
                          f"(paper {benchmark.headline} {benchmark.paper.get(benchmark.headline)}).")
    def _eval(context: dg.AssetExecutionContext, storage: StorageResource,
              model_loader: ModelLoaderResource) -> dg.MaterializeResult:
        settings = read_config(defaults, context.op_execution_context.op_config)
        model, tokenizer = model_loader.load(storage.layout.final_model)
        result = run_benchmark(benchmark, model, tokenizer, storage.mmrs, settings.batch_size,
                               max_new_tokens=settings.max_new_tokens)
        url = storage.eval_file(f"{benchmark.name}.json")
        write_json(url, result.to_dict())
        headline = result.metrics[benchmark.headline]
        return dg.MaterializeResult(
            metadata={"samples": result.samples, benchmark.headline: round(headline, 2),
                      f"paper {benchmark.headline}": benchmark.paper.get(benchmark.headline),
                      "table": dg.MetadataValue.md(benchmark_table(result)),
                      "examples": dg.MetadataValue.json(result.examples),
                      "notes": dg.MetadataValue.json(result.notes), "result": url,
                      "settings": settings_markdown(protocol=settings)},
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
              check_specs=[dg.AssetCheckSpec(
                  "every_benchmark_beats_its_baseline", asset="evaluation_report",
                  description="Every benchmark's headline metric beats its image-blind baseline; only then does "
                              "the registered model version get the `champion` alias.")],
              description="The paper's tables with our numbers beside EarthGPT's, logged to the stage-3 MLflow "
                          "run; the registered model version gets the `champion` alias only if every benchmark "
                          "beats its image-blind baseline.")
    def _report(storage: StorageResource) -> dg.MaterializeResult:
        from models.tracking import promote

        results = [BenchmarkResult.from_dict(read_json(storage.eval_file(f"{b.name}.json"))) for b in benchmarks]
        passed = {r.benchmark: beats_baseline(BENCHMARKS[r.benchmark], r) for r in results}
        report = render_report(results)
        url = storage.eval_file("report.md")
        atomic_write_bytes(url, report.encode("utf-8"))
        registration = read_json(storage.layout.registration) if storage.exists(storage.layout.registration) else None
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


def build_evaluation_assets(benchmarks: list[Benchmark], defaults: EvaluationSettings | None = None
                            ) -> list[dg.AssetsDefinition]:
    """`eval/<name>` per benchmark and the `evaluation_report` over them."""
    defaults = defaults or EvaluationSettings()
    return [*(build_eval_asset(b, defaults) for b in benchmarks), build_report_asset(benchmarks)]
