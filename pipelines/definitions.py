"""Dagster `Definitions`: every asset, check, job, schedule, sensor and resource of the pipeline, built from the
active profile of params.yaml (`EARTHGPT_PROFILE`, with the overrides in `EARTHGPT_SET`; see
pipelines/settings.py)."""

from __future__ import annotations

import dagster as dg

from assets.evaluation import build_evaluation_assets
from assets.mmrs import build_mmrs_assets
from assets.resources import resources_from_settings
from assets.sample_corpus import build_sample_assets
from assets.training import build_training_assets
from assets.versioning import build_versioning_asset
from evaluation.benchmarks import BENCHMARKS
from mmrs.registry import SOURCES
from pipelines.executors import conversion_executor, default_executor, placements
from pipelines.sensors import (
    build_failure_sensor,
    build_mmrs_1m_automation,
    build_new_model_sensor,
    build_release_sensor,
    build_retraining_schedule,
)
from pipelines.settings import Settings, environment_overrides, load_settings


def enabled_benchmarks(settings: Settings) -> list:
    """The paper benchmarks whose source the profile converts (and, if listed, those named)."""
    names = settings.evaluation.benchmarks
    sources = set(settings.mmrs.enabled)
    return [b for b in BENCHMARKS.values() if b.source in sources and (names == "all" or b.name in names)]


def build_definitions(settings: Settings) -> dg.Definitions:
    sources = settings.mmrs.enabled
    placed = placements(settings.orchestration)
    training = build_training_assets(settings.train, placed)
    assets = [
        *build_sample_assets(settings.sample_corpus, placed.conversion),
        *build_mmrs_assets(sources, settings.mmrs.conversion, fed_by_sample_corpus=settings.uses_sample_corpus,
                           placements=placed),
        *training,
        *build_evaluation_assets(enabled_benchmarks(settings), settings.evaluation.protocol, placed),
        build_versioning_asset(settings.versioning, fed_by_sample_corpus=settings.uses_sample_corpus),
    ]
    sample_corpus_job = dg.define_asset_job(
        "sample_corpus_job", selection=dg.AssetSelection.groups("sample_corpus"),
        description="Generate the embedded multi-sensor sample corpus in native dataset formats.")
    mmrs_job = dg.define_asset_job(
        "mmrs_job", selection=dg.AssetSelection.groups("raw", "mmrs"),
        executor_def=conversion_executor(settings.orchestration),
        description="Validate the raw releases, convert every enabled source (in parallel: "
                    "orchestration.concurrency), merge MMRS-1M.")
    training_job = dg.define_asset_job(
        "training_job", selection=dg.AssetSelection.groups("training"),
        description="Tokenizer, stage-2 alignment and stage-3 instruction tuning on the current MMRS-1M.")
    evaluation_job = dg.define_asset_job(
        "evaluation_job", selection=dg.AssetSelection.groups("evaluation"),
        description="Every paper benchmark on the current model, the report, and promotion when all checks pass.")
    automation = settings.automation
    return dg.Definitions(
        assets=assets, jobs=[sample_corpus_job, mmrs_job, training_job, evaluation_job],
        schedules=[build_retraining_schedule(training_job, training, automation)],
        sensors=[build_release_sensor([SOURCES[name] for name in sources], mmrs_job, automation.release_sensor),
                 build_mmrs_1m_automation(automation.mmrs_1m_follows_sources),
                 build_new_model_sensor(evaluation_job, automation.evaluate_new_models),
                 build_failure_sensor(assets, automation)],
        resources=resources_from_settings(settings.storage, settings.mlflow, settings.compute),
        executor=default_executor(settings.orchestration),
    )


defs = build_definitions(load_settings(overrides=environment_overrides()))
