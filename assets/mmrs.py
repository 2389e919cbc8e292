"""Dagster assets `raw/<source>`, `mmrs/<source>` and `mmrs_1m`, one per source enabled in params.yaml."""

# No `from __future__ import annotations` here: Dagster reads the config annotation at decoration time.

import hashlib

import dagster as dg
import fsspec

from mmrs.build import build_mmrs_1m, convert_source
from mmrs.quality import check_source
from mmrs.readers.base import SourceSpec
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records, join
from mmrs.storage import SourceRoot
from mmrs.synthetic.corpus import DATASETS as SAMPLE_DATASETS
from pipelines.params import load_params, repo_path

_PARAMS = load_params()
_MMRS = _PARAMS["mmrs"]
ENABLED = list(SOURCES) if _MMRS["sources"] == "all" else list(_MMRS["sources"])
USES_SAMPLE_CORPUS = repo_path(_MMRS["raw_parent"]) == repo_path(_PARAMS["sample_corpus"]["out"])


class MmrsConfig(dg.Config):
    """Where raw releases are and where shards go (defaults from params.yaml `mmrs`)."""

    raw_parent: str = _MMRS["raw_parent"]
    out: str = _MMRS["out"]
    max_quarantine_rate: float = _MMRS["max_quarantine_rate"]


def raw_root(config: MmrsConfig, spec: SourceSpec) -> str:
    override = _MMRS["raw_roots"].get(spec.name)
    return repo_path(override) if override else join(repo_path(config.raw_parent), spec.release_folder)


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


def build_raw_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["sample", spec.name])] if USES_SAMPLE_CORPUS and spec.name in SAMPLE_DATASETS else []

    @dg.asset(key=["raw", spec.name], group_name="raw", deps=deps, kinds={"python", spec.modality},
              description=f"{spec.title}: the official release as it unpacks (validated and fingerprinted).")
    def _raw(context: dg.AssetExecutionContext, config: MmrsConfig) -> dg.MaterializeResult:
        root = SourceRoot(raw_root(config, spec))
        if not root.exists(""):
            raise FileNotFoundError(f"{spec.title} release folder not found: {root.uri('')}")
        files, size, digest = fingerprint(root)
        context.add_output_metadata({"root": root.uri(""), "files": files, "bytes": size, "fingerprint": digest})
        return dg.MaterializeResult(data_version=dg.DataVersion(digest[:16]))

    return _raw


_CHECKS = ("schema", "coordinates_in_unit_square", "no_duplicate_records", "no_train_test_image_overlap",
           "quarantine_rate")


def build_mmrs_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    key = ["mmrs", spec.name]

    @dg.asset(key=key, group_name="mmrs", deps=[dg.AssetKey(["raw", spec.name])], kinds={"python"},
              description=f"{spec.title} converted to MMRS-1M records ({', '.join(spec.tasks)}).",
              check_specs=[dg.AssetCheckSpec(name, asset=key, blocking=name != "quarantine_rate")
                           for name in _CHECKS])
    def _mmrs(config: MmrsConfig) -> dg.MaterializeResult:
        out = repo_path(config.out)
        manifest = convert_source(spec, raw_root(config, spec), out)
        report = check_source(out, spec.name)
        samples = [r for _, r in zip(range(2), iter_source_records(join(out, spec.name)), strict=False)]
        findings = {"schema": report.schema_errors, "coordinates_in_unit_square": report.out_of_range,
                    "no_duplicate_records": report.duplicate_ids, "no_train_test_image_overlap": report.leaked_images}
        checks = [dg.AssetCheckResult(check_name=name, passed=f.count == 0,
                                      metadata={"count": f.count, "examples": ", ".join(f.examples) or "none"})
                  for name, f in findings.items()]
        checks.append(dg.AssetCheckResult(
            check_name="quarantine_rate", passed=report.quarantine_rate <= config.max_quarantine_rate,
            metadata={"rate": round(report.quarantine_rate, 4), "skipped": report.skipped_inputs,
                      "reasons": str(manifest["quarantine"]["skipped"])}))
        return dg.MaterializeResult(
            metadata={
                "records": report.records,
                "images": sum(manifest["images"].values()),
                "counts": dg.MetadataValue.md(_counts_md(manifest)),
                "samples": dg.MetadataValue.md("\n\n".join(_conversation_md(r) for r in samples)),
                "quarantine": dg.MetadataValue.json(manifest["quarantine"]),
                "content_hash": manifest["content_hash"],
                "manifest": join(out, spec.name, "manifest.json"),
            },
            check_results=checks,
            data_version=dg.DataVersion(manifest["content_hash"][:16]),
        )

    return _mmrs


@dg.asset(key="mmrs_1m", group_name="mmrs", deps=[dg.AssetKey(["mmrs", n]) for n in ENABLED], kinds={"python"},
          description="MMRS-1M: the merged training manifest and the Table I-style statistics.")
def mmrs_1m(config: MmrsConfig) -> dg.MaterializeResult:
    out = repo_path(config.out)
    merged = build_mmrs_1m(out, ENABLED)
    with fsspec.open(join(out, "mmrs_1m_stats.md"), "r", encoding="utf-8") as f:
        table = f.read()
    return dg.MaterializeResult(
        metadata={"records": merged["records"], "rounds": merged["rounds"], "sources": len(merged["sources"]),
                  "statistics": dg.MetadataValue.md(table), "content_hash": merged["content_hash"],
                  "manifest": join(out, "mmrs_1m.json")},
        data_version=dg.DataVersion(merged["content_hash"][:16]),
    )


RAW_ASSETS = [build_raw_asset(SOURCES[n]) for n in ENABLED]
MMRS_ASSETS = [build_mmrs_asset(SOURCES[n]) for n in ENABLED]
