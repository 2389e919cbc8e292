"""Dagster assets `sample/<dataset>`: the embedded multi-sensor sample corpus, one asset per dataset."""

# No `from __future__ import annotations` here: Dagster reads the config annotation at decoration time.


import time
from pathlib import Path

import dagster as dg

from mmrs.synthetic.corpus import DATASETS, generate_dataset
from pipelines.params import load_params, repo_path

_DEFAULTS = load_params()["sample_corpus"]


class SampleCorpusConfig(dg.Config):
    """Where and how big; defaults come from params.yaml (`sample_corpus`)."""

    out: str = _DEFAULTS["out"]
    seed: int = _DEFAULTS["seed"]
    scale: int = _DEFAULTS["scale"]


def _splits_table(splits: dict[str, int]) -> str:
    rows = "\n".join(f"| {name} | {count} |" for name, count in splits.items())
    return f"| split | images |\n|---|---|\n{rows}"


def build_sample_asset(name: str) -> dg.AssetsDefinition:
    spec = DATASETS[name]
    expected_splits = [split for split, _ in spec.splits if split != "all"]

    @dg.asset(
        key=["sample", name],
        group_name="sample_corpus",
        kinds={"python", spec.sensor},
        description=f"{spec.folder} imitation ({spec.sensor}) written in the dataset's native format.",
        check_specs=[dg.AssetCheckSpec("splits_complete", asset=["sample", name]),
                     dg.AssetCheckSpec("annotated", asset=["sample", name])],
    )
    def _sample(config: SampleCorpusConfig) -> dg.MaterializeResult:
        start = time.perf_counter()
        report = generate_dataset(name, Path(repo_path(config.out)), seed=config.seed, scale=config.scale)
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
            },
            check_results=[
                dg.AssetCheckResult(check_name="splits_complete", passed=not missing,
                                    metadata={"missing": ", ".join(missing) or "none"}),
                dg.AssetCheckResult(check_name="annotated", passed=report.annotations >= report.images > 0,
                                    metadata={"images": report.images, "records": report.annotations}),
            ],
        )

    return _sample


SAMPLE_ASSETS = [build_sample_asset(name) for name in DATASETS]
