"""Dagster `Definitions`: every asset, check, job, schedule and sensor of the pipeline."""

from __future__ import annotations

import dagster as dg

from assets.mmrs import MMRS_ASSETS, RAW_ASSETS, mmrs_1m
from assets.sample_corpus import SAMPLE_ASSETS

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

defs = dg.Definitions(assets=[*SAMPLE_ASSETS, *RAW_ASSETS, *MMRS_ASSETS, mmrs_1m], jobs=[sample_corpus_job, mmrs_job])
