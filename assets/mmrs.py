"""Dagster assets `raw/<source>`, `mmrs/<source>` and `mmrs_1m`, built for the sources a profile enables.

Thin: the work is in mmrs.build (conversion, merge) and mmrs.quality (the checks' findings).
"""

# No `from __future__ import annotations` here: Dagster reads the resource annotations at decoration time.

import hashlib

import dagster as dg

from assets.placement import LOCAL_PLACEMENTS, PLAIN, Placement, Placements, fails_fast_unless_transient
from assets.resources import StorageResource
from assets.run_config import config_schema, read_config, settings_markdown
from mmrs.build import ConversionSettings, build_mmrs_1m, convert_source
from mmrs.code_version import code_version, source_modules
from mmrs.quality import check_source
from mmrs.readers.base import SourceSpec
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records, join, read_text
from mmrs.storage import SourceRoot
from mmrs.synthetic.corpus import DATASETS as SAMPLE_DATASETS


def fingerprint(root: SourceRoot) -> tuple[int, int, str]:
    """(files, bytes, sha256 over 'path size' lines): a cheap content version of a raw release."""
    digest, files, size = hashlib.sha256(), 0, 0
    for rel in root.walk_files():
        n = root.fs.size(root.path(rel))
        digest.update(f"{rel} {n}\n".encode())
        files += 1
        size += n
    return files, size, digest.hexdigest()


def _conversation_md(record: dict) -> str:
    lines = [f"**{record['id']}** ({record['modality']}, {record['width']}x{record['height']})", ""]
    for turn in record["conversations"][:4]:
        lines.append(f"- *{turn['from']}*: {turn['value'].replace(chr(10), ' ')[:300]}")
    return "\n".join(lines)


def _counts_md(manifest: dict) -> str:
    rows = ["| split | task | records | rounds |", "|---|---|---|---|"]
    for split, per_task in sorted(manifest["counts"]["records"].items()):
        for task, n in sorted(per_task.items()):
            rows.append(f"| {split} | {task} | {n:,} | {manifest['counts']['rounds'][split][task]:,} |")
    return "\n".join(rows)


def _quarantine_md(summary: dict) -> str:
    rows = ["| kind | reason | count |", "|---|---|---|"]
    rows += [f"| skipped | {reason} | {n:,} |" for reason, n in sorted(summary.get("skipped", {}).items())]
    rows += [f"| corrected | {reason} | {n:,} |" for reason, n in sorted(summary.get("fixed", {}).items())]
    return "\n".join(rows) if len(rows) > 2 else "nothing quarantined or corrected"


def _absent_md(absent: dict) -> str:
    """The splits the release does not have (converted without them), or that none is missing."""
    if not absent:
        return "every split of the release is present"
    return "\n".join(["| absent split | missing |", "|---|---|"] + [f"| {s} | {what} |" for s, what in absent.items()])


def build_raw_asset(spec: SourceSpec, fed_by_sample_corpus: bool, placement: Placement = PLAIN
                    ) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["sample", spec.name])] if fed_by_sample_corpus and spec.name in SAMPLE_DATASETS else []

    @dg.asset(key=["raw", spec.name], group_name="raw", deps=deps, kinds={"python", spec.modality},
              code_version=code_version("mmrs.storage"), **placement.asset_kwargs(),
              description=f"{spec.title}: the official release as it unpacks, found under storage.raw "
                          f"(or storage.raw_roots.{spec.name}); its file listing is fingerprinted, so a "
                          "changed release gets a new data version.")
    @fails_fast_unless_transient
    def _raw(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        root = SourceRoot(storage.raw_root(spec))
        if not root.exists(""):
            raise FileNotFoundError(f"{spec.title} release folder not found: {root.uri('')}")
        files, size, digest = fingerprint(root)
        context.add_output_metadata({"root": root.uri(""), "files": files, "bytes": size, "fingerprint": digest})
        return dg.MaterializeResult(data_version=dg.DataVersion(digest[:16]))

    return _raw


_CHECKS = {
    "schema": "Every record has the MMRS-1M fields with the right types (blocking).",
    "coordinates_in_unit_square": "Every normalised box coordinate lies in [0, 1] (blocking).",
    "no_duplicate_records": "No record id appears twice (blocking).",
    "no_train_test_image_overlap": "No image is in both a training and an evaluation split (blocking: leakage).",
    "quarantine_rate": "Quarantined inputs stay under mmrs.conversion.max_quarantine_rate of all inputs.",
}


def build_mmrs_asset(spec: SourceSpec, defaults: ConversionSettings, placement: Placement = PLAIN
                     ) -> dg.AssetsDefinition:
    key = ["mmrs", spec.name]

    @dg.asset(key=key, group_name="mmrs", deps=[dg.AssetKey(["raw", spec.name])], kinds={"python"},
              config_schema=config_schema(defaults), **placement.asset_kwargs(),
              code_version=code_version("mmrs.build", "mmrs.quality", *source_modules(spec)),
              description=f"{spec.title} converted to MMRS-1M instruction records ({', '.join(spec.tasks)}; "
                          f"{spec.modality}): JSON Lines shards, a manifest and a quarantine report under "
                          f"storage.mmrs/{spec.name}.",
              check_specs=[dg.AssetCheckSpec(name, asset=key, blocking=name != "quarantine_rate", description=text)
                           for name, text in _CHECKS.items()])
    @fails_fast_unless_transient
    def _mmrs(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        settings = read_config(defaults, context.op_execution_context.op_config)
        manifest = convert_source(spec, storage.raw_root(spec), storage.mmrs,
                                  max_records=settings.max_records_per_shard,
                                  max_image_pixels=settings.max_image_pixels)
        report = check_source(storage.mmrs, spec.name)
        samples = [r for _, r in zip(range(2), iter_source_records(join(storage.mmrs, spec.name)), strict=False)]
        findings = {"schema": report.schema_errors, "coordinates_in_unit_square": report.out_of_range,
                    "no_duplicate_records": report.duplicate_ids, "no_train_test_image_overlap": report.leaked_images}
        checks = [dg.AssetCheckResult(check_name=name, passed=f.count == 0,
                                      metadata={"count": f.count, "examples": ", ".join(f.examples) or "none"})
                  for name, f in findings.items()]
        checks.append(dg.AssetCheckResult(
            check_name="quarantine_rate", passed=report.quarantine_rate <= settings.max_quarantine_rate,
            metadata={"rate": round(report.quarantine_rate, 4), "limit": settings.max_quarantine_rate,
                      "skipped": report.skipped_inputs}))
        return dg.MaterializeResult(
            metadata={
                "records": report.records,
                "images": sum(manifest["images"].values()),
                "counts": dg.MetadataValue.md(_counts_md(manifest)),
                "samples": dg.MetadataValue.md("\n\n".join(_conversation_md(r) for r in samples)),
                "quarantine": dg.MetadataValue.md(_quarantine_md(manifest["quarantine"])),
                "quarantined": report.skipped_inputs,
                "absent_splits": dg.MetadataValue.md(_absent_md(manifest["absent_splits"])),
                "accounting": dg.MetadataValue.json(manifest["accounting"]),
                "content_hash": manifest["content_hash"],
                "manifest": join(storage.mmrs, spec.name, "manifest.json"),
                "settings": settings_markdown(conversion=settings),
            },
            check_results=checks,
            data_version=dg.DataVersion(manifest["content_hash"][:16]),
        )

    return _mmrs


def build_mmrs_1m_asset(sources: list[str], placement: Placement = PLAIN) -> dg.AssetsDefinition:
    @dg.asset(key="mmrs_1m", group_name="mmrs", deps=[dg.AssetKey(["mmrs", n]) for n in sources], kinds={"python"},
              code_version=code_version("mmrs.build"), **placement.asset_kwargs(),
              automation_condition=dg.AutomationCondition.eager(),
              description="MMRS-1M: the merged training manifest (mmrs_1m.json: every training shard of the "
                          "enabled sources, with hashes) and the Table I-style statistics beside the paper's. "
                          "Follows its sources by itself (declarative automation: after any mmrs/<source> "
                          "updates, once none is missing or in progress).")
    @fails_fast_unless_transient
    def mmrs_1m(storage: StorageResource) -> dg.MaterializeResult:
        merged = build_mmrs_1m(storage.mmrs, sources)
        return dg.MaterializeResult(
            metadata={"records": merged["records"], "rounds": merged["rounds"], "sources": len(merged["sources"]),
                      "statistics": dg.MetadataValue.md(read_text(join(storage.mmrs, "mmrs_1m_stats.md"))),
                      "content_hash": merged["content_hash"], "manifest": join(storage.mmrs, "mmrs_1m.json")},
            data_version=dg.DataVersion(merged["content_hash"][:16]),
        )

    return mmrs_1m


def build_mmrs_assets(sources: list[str], defaults: ConversionSettings, fed_by_sample_corpus: bool,
                      placements: Placements = LOCAL_PLACEMENTS) -> list[dg.AssetsDefinition]:
    """raw/<source> and mmrs/<source> for each source, and mmrs_1m over them."""
    specs = [SOURCES[name] for name in sources]
    on = placements.conversion
    return [*(build_raw_asset(spec, fed_by_sample_corpus, on) for spec in specs),
            *(build_mmrs_asset(spec, defaults, on) for spec in specs), build_mmrs_1m_asset(sources, on)]
