"""Dagster `Definitions`: every asset, check, job, schedule and resource of the pipeline, built from the
active profile of params.yaml (`EARTHGPT_PROFILE`; see pipelines/settings.py)."""

from __future__ import annotations

import dagster as dg

from assets.evaluation import build_evaluation_assets
from assets.mmrs import build_mmrs_assets
from assets.resources import resources_from_settings
from assets.sample_corpus import build_sample_assets
from assets.training import build_training_assets
from assets.versioning import build_versioning_asset
from evaluation.benchmarks import BENCHMARKS
from pipelines.settings import Settings, load_settings


def enabled_benchmarks(settings: Settings) -> list:
    """The paper benchmarks whose source the profile converts (and, if listed, those named)."""
    names = settings.evaluation.benchmarks
    sources = set(settings.mmrs.enabled)
    return [b for b in BENCHMARKS.values() if b.source in sources and (names == "all" or b.name in names)]


def build_definitions(settings: Settings) -> dg.Definitions:
    sources = settings.mmrs.enabled
    assets = [
        *build_sample_assets(settings.sample_corpus),
        *build_mmrs_assets(sources, settings.mmrs.conversion, fed_by_sample_corpus=settings.uses_sample_corpus),
        *build_training_assets(settings.train),
        *build_evaluation_assets(enabled_benchmarks(settings), settings.evaluation.protocol),
        build_versioning_asset(settings.versioning, fed_by_sample_corpus=settings.uses_sample_corpus),
    ]
    jobs = [
        dg.define_asset_job("sample_corpus_job", selection=dg.AssetSelection.groups("sample_corpus"),
                            description="Generate the embedded multi-sensor sample corpus in native dataset formats."),
        dg.define_asset_job("mmrs_job", selection=dg.AssetSelection.groups("raw", "mmrs"),
                            description="Validate the raw releases, convert every enabled source, merge MMRS-1M."),
        dg.define_asset_job("training_job", selection=dg.AssetSelection.groups("training"),
                            description="Tokenizer, stage-2 alignment and stage-3 instruction tuning on the current "
                                        "MMRS-1M."),
        dg.define_asset_job("evaluation_job", selection=dg.AssetSelection.groups("evaluation"),
                            description="Every paper benchmark on the current model, the report, and promotion when "
                                        "all checks pass."),
    ]
    weekly_retraining = dg.ScheduleDefinition(
        name="weekly_retraining", job=jobs[2], cron_schedule="0 3 * * 0",
        default_status=dg.DefaultScheduleStatus.STOPPED,  # switched on in the UI where a GPU pool is attached
    )
    return dg.Definitions(
        assets=assets, jobs=jobs, schedules=[weekly_retraining],
        resources=resources_from_settings(settings.storage, settings.mlflow, settings.compute),
        # One process runs the steps in dependency order: a fresh process per step would re-import torch,
        # transformers and Dagster (about 10 s each, 50 steps in the demo graph).
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
