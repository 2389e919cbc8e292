"""Dagster asset `data_versions`: DVC records exactly what Dagster produced (mmrs.dvc), so the data has one
producer and `dvc repro` after a Dagster run has nothing to rebuild."""

# No `from __future__ import annotations` here: Dagster reads the config annotation at decoration time.

import dagster as dg

from assets.run_config import config_schema, read_config, settings_markdown
from mmrs.code_version import code_version
from mmrs.dvc import VersioningSettings, available, record, status
from mmrs.synthetic.corpus import DATASETS


def build_versioning_asset(defaults: VersioningSettings, fed_by_sample_corpus: bool) -> dg.AssetsDefinition:
    deps = [dg.AssetKey("mmrs_1m"), *(dg.AssetKey(["sample", n]) for n in DATASETS if fed_by_sample_corpus)]

    @dg.asset(name="data_versions", group_name="versioning", deps=deps, kinds={"dvc"},
              code_version=code_version("mmrs.dvc"),
              config_schema=config_schema(defaults, exclude=("repo",)),
              check_specs=[dg.AssetCheckSpec(
                  "dvc_status_clean", asset="data_versions",
                  description="After the commit, `dvc status` finds the data exactly as dvc.lock records it.")],
              description="DVC commits the data Dagster just produced (the sample corpus and the MMRS-1M shards: "
                          "dvc.yaml's stages) into dvc.lock and pushes it to DVC's default remote; nothing is "
                          "built twice. Off when versioning.dvc is null.")
    def data_versions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = read_config(defaults, context.op_execution_context.op_config)
        if settings.dvc is None:
            return dg.MaterializeResult(
                metadata={"versioning": "off (versioning.dvc is null in this profile)"},
                check_results=[dg.AssetCheckResult(check_name="dvc_status_clean", passed=True,
                                                   metadata={"status": "versioning off"})])
        if not available(settings):
            raise FileNotFoundError(f"DVC is not installed at {settings.dvc}: run `make dvc-setup`")
        recorded = record(settings)
        remaining = status(settings)
        return dg.MaterializeResult(
            metadata={"dvc_lock_sha256": recorded.lock_sha256, "pushed": recorded.pushed,
                      "stages": ", ".join(settings.stages), "dvc_output": dg.MetadataValue.md(
                          "```\n" + "\n".join(recorded.log[-20:]) + "\n```"),
                      "settings": settings_markdown(versioning=settings)},
            check_results=[dg.AssetCheckResult(
                check_name="dvc_status_clean", passed="changed" not in remaining and "modified" not in remaining,
                metadata={"status": remaining or "up to date"})])

    return data_versions
