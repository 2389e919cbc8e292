"""Dagster `Definitions`: every asset, check, job, schedule and sensor of the pipeline."""

from __future__ import annotations

import dagster as dg

from assets.sample_corpus import SAMPLE_ASSETS

sample_corpus_job = dg.define_asset_job(
    "sample_corpus_job",
    selection=dg.AssetSelection.groups("sample_corpus"),
    description="Generate the embedded multi-sensor sample corpus in native dataset formats.",
)

defs = dg.Definitions(assets=[*SAMPLE_ASSETS], jobs=[sample_corpus_job])
