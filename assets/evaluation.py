"""Dagster assets of evaluation, per paper benchmark whose source is enabled:

    predictions/<benchmark>   the stage-3 model's answers, generated once per (model, data, prompts,
                              generation settings) and resumed after an interruption (evaluation.store)
    eval/<benchmark>          the answers scored with the paper's metrics, the image-blind baseline, pictures
    paper_tables              the paper's Tables II-IX with our rows, logged to the stage-3 MLflow run; the
                              registered model version gets the `champion` alias only if every benchmark
                              asked in the training wording beats its image-blind baseline (the held-out
                              wording variants are reported beside them, not gated)

Thin: the work is in evaluation.*; the model is loaded once per process for every benchmark of a run
(ModelLoaderResource), and only when some answer is missing.
"""

# No `from __future__ import annotations` here: Dagster reads the resource annotations at decoration time.

import base64
import os
import tempfile

import dagster as dg

from assets.placement import LOCAL_PLACEMENTS, PLAIN, Placement, Placements, fails_fast_unless_transient
from assets.resources import ComputeResource, ModelLoaderResource, StorageResource
from assets.run_config import config_schema, read_config, settings_markdown
from evaluation.benchmarks import (
    BENCHMARKS,
    Benchmark,
    BenchmarkData,
    BenchmarkResult,
    load_benchmark_data,
    score_benchmark,
)
from evaluation.confidence import choose_scorer
from evaluation.pictures import benchmark_pictures
from evaluation.predictions import read_predictions
from evaluation.settings import EvaluationSettings
from evaluation.store import complete_predictions, missing_ids, prediction_key, predictions_url
from evaluation.tables import PAPER_TABLES, benchmark_table, render_tables, table_rows
from mmrs.code_version import code_version
from mmrs.shards import atomic_write_bytes, join, read_json, write_json
from models.io import model_digest


def beats_baseline(benchmark: Benchmark, result: BenchmarkResult) -> bool:
    return result.metrics[benchmark.headline] > result.baseline.get(benchmark.headline, 0.0)


def prediction_code_version() -> str:
    """The version of the code that asks the model (prompts, preprocessing, decoding): part of the predictions'
    key, so answers stored by other code are asked again rather than scored as this code's."""
    return code_version("evaluation.predict")


def _located(benchmark: Benchmark, storage: StorageResource, settings: EvaluationSettings
             ) -> tuple[BenchmarkData, str, str]:
    """(the benchmark's records, the predictions file of the current model, its key)."""
    from evaluation.predict import generation_settings  # torch: only where a model may run

    data = load_benchmark_data(benchmark, storage.mmrs)
    generation = generation_settings(benchmark, settings.max_new_tokens) | {
        "batch_size": settings.batch_size, "code": prediction_code_version()}
    key = prediction_key(benchmark, data, storage.mmrs, model_digest(storage.layout.final_model), generation)
    return data, predictions_url(storage.eval, benchmark, key), key.digest


def build_predictions_asset(benchmark: Benchmark, defaults: EvaluationSettings, placement: Placement = PLAIN
                            ) -> dg.AssetsDefinition:
    key = ["predictions", benchmark.name]

    @dg.asset(key=key, group_name="evaluation", deps=["earthgpt_model", dg.AssetKey(["mmrs", benchmark.source])],
              kinds={"pytorch"}, config_schema=config_schema(defaults), **placement.asset_kwargs(),
              code_version=code_version("evaluation.predict", "evaluation.store"),
              check_specs=[dg.AssetCheckSpec(
                  "every_question_answered", asset=key, blocking=True,
                  description="Every question of the benchmark has an answer (blocking: a partial set of answers "
                              "would give untrustworthy scores).")],
              description=f"The stage-3 model's answers to {benchmark.name} ({benchmark.source} {benchmark.split}), "
                          "stored under storage.eval/predictions and keyed by the model's weights, the data, the "
                          "prompts, the generation settings and the code that asks: an unchanged model is not "
                          "asked again.")
    @fails_fast_unless_transient
    def _predictions(context: dg.AssetExecutionContext, storage: StorageResource, compute: ComputeResource,
                     model_loader: ModelLoaderResource) -> dg.MaterializeResult:
        from evaluation.predict import predict_benchmark
        from models.numerics import set_cpu_threads

        settings = read_config(defaults, context.op_execution_context.op_config)
        set_cpu_threads(compute.cpu_threads)  # greedy answers follow the arithmetic: the same on every machine
        data, url, digest = _located(benchmark, storage, settings)

        def generate(done):
            model, tokenizer = model_loader.load(storage.layout.final_model)
            return predict_benchmark(benchmark, model, tokenizer, data.image_root, data.records,
                                     batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens, done=done)

        found = complete_predictions(url, benchmark, data, generate)
        missing = missing_ids(benchmark, data, found.predictions)
        return dg.MaterializeResult(
            metadata={"answers": len(found.predictions), "kept_from_before": found.kept,
                      "generated_now": found.generated, "generation_seconds": round(found.seconds, 2),
                      "answers_per_second": round(found.generated / found.seconds, 2) if found.seconds else None,
                      "key": digest, "predictions": url, "settings": settings_markdown(protocol=settings)},
            check_results=[dg.AssetCheckResult(
                check_name="every_question_answered", passed=not missing,
                metadata={"missing": len(missing), "example": missing[0] if missing else "none"})],
            data_version=dg.DataVersion(digest),
        )

    return _predictions


def _image_md(pictures: dict[str, bytes]) -> str:
    return "\n\n".join(f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
                       for name, png in pictures.items())


def _examples_md(result: BenchmarkResult) -> str:
    rows = ["| image | question | answer | truth |", "|---|---|---|---|"]
    for e in result.examples:
        rows.append("| " + " | ".join(str(e.get(k, "")).replace("|", "/").replace("\n", " ")[:160]
                                      for k in ("image", "question", "answer", "truth")) + " |")
    return "\n".join(rows)


def _previous_headline(context: dg.AssetExecutionContext, benchmark: Benchmark) -> float | None:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(["eval", benchmark.name]))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(benchmark.headline)
    return None if value is None else float(value.value)


def build_eval_asset(benchmark: Benchmark, defaults: EvaluationSettings, placement: Placement = PLAIN
                     ) -> dg.AssetsDefinition:
    key = ["eval", benchmark.name]
    reworded = benchmark.wording == "reworded"
    checks = {
        "beats_image_blind_baseline": f"Our {benchmark.headline} is above the image-blind baseline's (a model that "
                                      "ignores the image: the most common answer, label, caption or box).",
        "parse_failures_under_limit": "The share of answers that give nothing usable (no class, no box, no "
                                      "count) stays under evaluation.protocol.max_parse_failure_percent"
                                      + (" (a warning here: in held-out words, unusable answers are what this "
                                         "variant measures)." if reworded else "."),
        "no_regression": f"{benchmark.headline} did not drop by more than evaluation.protocol.regression_points "
                         "against the previous materialization.",
    }

    @dg.asset(key=key, group_name="evaluation", deps=[dg.AssetKey(["predictions", benchmark.name])],
              kinds={"python"}, config_schema=config_schema(defaults), **placement.asset_kwargs(),
              code_version=code_version("evaluation.benchmarks", "evaluation.pictures", "evaluation.confidence"),
              check_specs=[dg.AssetCheckSpec(name, asset=key, description=text) for name, text in checks.items()],
              description=f"Table {benchmark.table}: {benchmark.source} {benchmark.split} ({benchmark.task}, "
                          f"{benchmark.setting}{', asked in held-out words' if reworded else ''}): the stored "
                          "answers scored with the paper's metrics beside an "
                          f"image-blind baseline (paper {benchmark.headline} "
                          f"{benchmark.paper.get(benchmark.headline)}); re-scoring never re-generates.")
    @fails_fast_unless_transient
    def _eval(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        settings = read_config(defaults, context.op_execution_context.op_config)
        data, url, _ = _located(benchmark, storage, settings)
        predictions = read_predictions(url)
        scorer = choose_scorer([], settings.clip_model, data.image_root) if settings.clip_model else None
        result = score_benchmark(benchmark, data.records, predictions, data.train, scorer=scorer)
        result_url = storage.eval_file(f"{benchmark.name}.json")
        write_json(result_url, result.to_dict())
        pictures = benchmark_pictures(result, data.records, predictions, data.image_root, settings.gallery)
        for name, png in pictures.items():
            atomic_write_bytes(storage.eval_file("pictures", name), png)
        headline = result.metrics[benchmark.headline]
        previous = _previous_headline(context, benchmark)
        return dg.MaterializeResult(
            metadata={"samples": result.samples, benchmark.headline: round(headline, 2),
                      f"paper {benchmark.headline}": benchmark.paper.get(benchmark.headline),
                      "baseline": round(result.baseline.get(benchmark.headline, 0.0), 2),
                      **{f"metric/{k}": round(v, 2) for k, v in result.metrics.items()},
                      "parse_failures_percent": round(result.parse_failure_percent(), 2),
                      "table": dg.MetadataValue.md(benchmark_table(result)),
                      "examples": dg.MetadataValue.md(_examples_md(result)),
                      "pictures": dg.MetadataValue.md(_image_md(pictures) or "none for this task"),
                      "result": result_url, "predictions": url},
            check_results=[
                dg.AssetCheckResult(
                    check_name="beats_image_blind_baseline", passed=beats_baseline(benchmark, result),
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"ours": round(headline, 2),
                              "baseline": round(result.baseline.get(benchmark.headline, 0.0), 2)}),
                dg.AssetCheckResult(
                    check_name="parse_failures_under_limit",
                    passed=result.parse_failure_percent() <= settings.max_parse_failure_percent,
                    severity=dg.AssetCheckSeverity.WARN if reworded else dg.AssetCheckSeverity.ERROR,
                    metadata={"percent": round(result.parse_failure_percent(), 2),
                              "limit": settings.max_parse_failure_percent,
                              "reasons": ", ".join(f"{k}: {v}" for k, v in result.parse_failures.items()) or "none"}),
                dg.AssetCheckResult(
                    check_name="no_regression", severity=dg.AssetCheckSeverity.WARN,
                    passed=previous is None or headline >= previous - settings.regression_points,
                    metadata={"now": round(headline, 2), "before": previous if previous is not None else "none",
                              "allowed_drop": settings.regression_points}),
            ],
        )

    return _eval


def build_paper_tables_asset(benchmarks: list[Benchmark], placement: Placement = PLAIN) -> dg.AssetsDefinition:
    @dg.asset(name="paper_tables", group_name="evaluation",
              deps=[dg.AssetKey(["eval", b.name]) for b in benchmarks], kinds={"mlflow"},
              code_version=code_version("evaluation.tables", "models.tracking"), **placement.asset_kwargs(),
              check_specs=[dg.AssetCheckSpec(
                  "every_benchmark_beats_its_baseline", asset="paper_tables",
                  description="Every benchmark's headline metric beats its image-blind baseline, as asked in the "
                              "training wording (held-out wordings are reported, not gated); only then does "
                              "the registered model version get the `champion` alias (a warning otherwise: the "
                              "outcome is a model not promoted, not a broken run).")],
              description="The paper's Tables II-IX, every row the paper prints with our rows and the image-blind "
                          "baseline added, each of our cells naming its result file; written to storage.eval/"
                          "report.md and logged (tables, metrics, pictures) to the stage-3 MLflow run. The "
                          "registered model version becomes `champion` only if every benchmark beats its baseline.")
    @fails_fast_unless_transient
    def paper_tables(storage: StorageResource) -> dg.MaterializeResult:
        from models.tracking import promote

        results = [BenchmarkResult.from_dict(read_json(storage.eval_file(f"{b.name}.json"))) for b in benchmarks]
        passed = {r.benchmark: beats_baseline(BENCHMARKS[r.benchmark], r) for r in results
                  if BENCHMARKS[r.benchmark].wording == "training"}
        sources = {r.benchmark: f"{r.benchmark}.json" for r in results}
        tables = render_tables(results, sources)
        url = storage.eval_file("report.md")
        atomic_write_bytes(url, tables.encode("utf-8"))
        registration = read_json(storage.layout.registration) if storage.exists(storage.layout.registration) else None
        promoted = False
        if registration:
            _log_to_mlflow(registration, results, tables, storage, sources)
            promoted = promote(registration["registered_model"], registration["version"],
                               passed=all(passed.values()))
            _describe_evaluated_version(registration, results, passed, promoted)
        return dg.MaterializeResult(
            metadata={"tables": dg.MetadataValue.md(tables), "path": url,
                      "benchmarks_beating_baseline": f"{sum(passed.values())} of {len(passed)}",
                      "registered_model": f"{registration['registered_model']} v{registration['version']}"
                      if registration else "none", "promoted_to_champion": promoted},
            check_results=[dg.AssetCheckResult(check_name="every_benchmark_beats_its_baseline",
                                               passed=all(passed.values()), severity=dg.AssetCheckSeverity.WARN,
                                               metadata={"failed": ", ".join(k for k, v in passed.items() if not v)
                                                         or "none"})],
        )

    return paper_tables


def _log_to_mlflow(registration: dict, results: list[BenchmarkResult], tables: str, storage: StorageResource,
                   sources: dict[str, str]) -> None:
    """Into the stage-3 run: every metric, the tables (Markdown and one MLflow table each), the pictures."""
    import fsspec
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(registration["tracking_uri"])
    by_name = {r.benchmark: r for r in results}
    with mlflow.start_run(run_id=registration["run_id"]):
        mlflow.log_metrics({_metric_name(r.benchmark, k): v for r in results for k, v in r.metrics.items()})
        mlflow.log_text(tables, "evaluation/paper_tables.md")
        for number in PAPER_TABLES:
            rows = table_rows(number, by_name, sources)
            mlflow.log_table(pd.DataFrame(rows).astype(str), f"evaluation/table_{number}.json")
        fs, folder = fsspec.core.url_to_fs(storage.eval_file("pictures"))
        with tempfile.TemporaryDirectory() as scratch:
            for path in sorted(fs.glob(join(folder, "*.png"))):
                local = os.path.join(scratch, path.rsplit("/", 1)[1])
                fs.get_file(path, local)
                mlflow.log_artifact(local, "evaluation/pictures")


def _describe_evaluated_version(registration: dict, results: list[BenchmarkResult], passed: dict[str, bool],
                                promoted: bool) -> None:
    """The registered version's description gains its headline metrics (ours / image-blind baseline) and
    one tag per benchmark."""
    import mlflow

    from models.tracking import TrackingSettings, describe_model_version

    client = mlflow.MlflowClient(registration["tracking_uri"])
    version = client.get_model_version(registration["registered_model"], str(registration["version"]))
    head = (version.description or "").split(" Evaluation:")[0].replace(" Not evaluated yet.", "")
    headlines = {r.benchmark: BENCHMARKS[r.benchmark].headline for r in results}
    scores = "; ".join(f"{r.benchmark} {headlines[r.benchmark]} {r.metrics[headlines[r.benchmark]]:.2f} "
                       f"(baseline {r.baseline.get(headlines[r.benchmark], 0.0):.2f})" for r in results)
    verdict = "champion" if promoted else (f"not promoted: {sum(passed.values())} of {len(passed)} benchmarks "
                                           "beat their baseline")
    tracking = TrackingSettings(uri=registration["tracking_uri"], registered_model=registration["registered_model"])
    tags = {_metric_name(r.benchmark, headlines[r.benchmark]): f"{r.metrics[headlines[r.benchmark]]:.2f}"
            for r in results}
    describe_model_version(tracking, registration["version"], f"{head} Evaluation: {scores}. {verdict}.", tags)


def _metric_name(benchmark: str, metric: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces; keep them readable."""
    return f"eval/{benchmark}/{metric.replace(' ', '_').replace('@', '_at_')}"


def build_evaluation_assets(benchmarks: list[Benchmark], defaults: EvaluationSettings | None = None,
                            placements: Placements = LOCAL_PLACEMENTS) -> list[dg.AssetsDefinition]:
    """predictions/<name> and eval/<name> per benchmark, and paper_tables over them."""
    defaults = defaults or EvaluationSettings()
    return [*(build_predictions_asset(b, defaults, placements.inference) for b in benchmarks),
            *(build_eval_asset(b, defaults, placements.default) for b in benchmarks),
            build_paper_tables_asset(benchmarks, placements.default)]
