"""Dagster `Definitions`: every asset, check, job, schedule and sensor of the pipeline."""

from __future__ import annotations

import dagster as dg

from assets.evaluation import EVALUATION_ASSETS
from assets.mmrs import MMRS_ASSETS, RAW_ASSETS, mmrs_1m
from assets.sample_corpus import SAMPLE_ASSETS
from assets.training import TRAINING_ASSETS

sample_corpus_job = dg.define_asset_job(
    "sample_corpus_job",
    selection=dg.AssetSelection.groups("sample_corpus"),
    description="Generate the embedded multi-sensor sample corpus in native dataset formats.",
)

mmrs_job = dg.define_asset_job(
    "mmrs_job",
    selection=dg.AssetSelection.groups("raw", "mmrs"),
    description="Validate the raw releases, convert every enabled source, merge MMRS-1M.",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("training"),
    description="Tokenizer, stage-2 alignment and stage-3 instruction tuning on the current MMRS-1M.",
)

evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=dg.AssetSelection.groups("evaluation"),
    description="Every paper benchmark on the current model, the report, and promotion when all checks pass.",
)

weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining", job=training_job, cron_schedule="0 3 * * 0",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # switched on in the UI where a GPU pool is attached
)

defs = dg.Definitions(
    assets=[*SAMPLE_ASSETS, *RAW_ASSETS, *MMRS_ASSETS, mmrs_1m, *TRAINING_ASSETS, *EVALUATION_ASSETS],
    jobs=[sample_corpus_job, mmrs_job, training_job, evaluation_job],
    schedules=[weekly_retraining],
    # One process runs the steps in dependency order: a fresh process per step would re-import torch,
    # transformers and Dagster (about 10 s each, 50 steps in the demo graph).
    executor=dg.in_process_executor,
)
