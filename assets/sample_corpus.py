"""Dagster assets `sample/<dataset>`: the embedded multi-sensor sample corpus, one asset per imitated dataset."""

# No `from __future__ import annotations` here: Dagster reads the resource annotations at decoration time.

import base64
import time
from pathlib import Path

import dagster as dg

from assets.placement import PLAIN, Placement
from assets.resources import StorageResource
from assets.run_config import config_schema, read_config, settings_markdown
from mmrs.code_version import code_version
from mmrs.synthetic.corpus import DATASETS, SampleCorpusSettings, generate_dataset
from mmrs.synthetic.preview import thumbnails_png


def _splits_table(splits: dict[str, int]) -> str:
    rows = "\n".join(f"| {name} | {count} |" for name, count in splits.items())
    return f"| split | images |\n|---|---|\n{rows}"


def build_sample_asset(name: str, defaults: SampleCorpusSettings, placement: Placement = PLAIN
                       ) -> dg.AssetsDefinition:
    spec = DATASETS[name]
    expected_splits = [split for split, _ in spec.splits if split != "all"]
    key = ["sample", name]

    @dg.asset(
        key=key, group_name="sample_corpus", kinds={"python", spec.sensor},
        config_schema=config_schema(defaults), **placement.asset_kwargs(),
        code_version=code_version("mmrs.synthetic.corpus",
                                  f"mmrs.synthetic.writers.{spec.writer.partition(':')[0]}"),
        description=f"{spec.folder} imitation ({spec.sensor}): generated scenes written in the dataset's own "
                    f"on-disk format, quirks included, under storage.sample/{spec.folder}.",
        check_specs=[
            dg.AssetCheckSpec("splits_complete", asset=key,
                              description="Every split the real release has got at least one image."),
            dg.AssetCheckSpec("annotated", asset=key,
                              description="At least one annotation record per image, and at least one image."),
        ],
    )
    def _sample(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        settings = read_config(defaults, context.op_execution_context.op_config)
        start = time.perf_counter()
        report = generate_dataset(name, Path(storage.sample), seed=settings.seed, scale=settings.scale)
        seconds = time.perf_counter() - start
        missing = [s for s in expected_splits if not report.splits.get(s)]
        return dg.MaterializeResult(
            metadata={
                "root": dg.MetadataValue.path(str(report.root)),
                "images": report.images,
                "annotation_records": report.annotations,
                "splits": dg.MetadataValue.md(_splits_table(report.splits)),
                "seconds": round(seconds, 2),
                "images_per_second": round(report.images / max(seconds, 1e-9), 1),
                "thumbnails": dg.MetadataValue.md(
                    "The first images, each object's footprint in red:\n\n![thumbnails](data:image/png;base64,"
                    f"{base64.b64encode(thumbnails_png(name, settings.seed, settings.scale)).decode()})"),
                "settings": settings_markdown(sample_corpus=settings),
            },
            check_results=[
                dg.AssetCheckResult(check_name="splits_complete", passed=not missing,
                                    metadata={"missing": ", ".join(missing) or "none"}),
                dg.AssetCheckResult(check_name="annotated", passed=report.annotations >= report.images > 0,
                                    metadata={"images": report.images, "records": report.annotations}),
            ],
        )

    return _sample


def build_sample_assets(defaults: SampleCorpusSettings, placement: Placement = PLAIN
                        ) -> list[dg.AssetsDefinition]:
    return [build_sample_asset(name, defaults, placement) for name in DATASETS]
