import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.mmrs import build_mmrs_assets
from assets.sample_corpus import build_sample_assets
from mmrs.build import ConversionSettings
from mmrs.synthetic.corpus import DATASETS, SampleCorpusSettings
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ASSETS = build_sample_assets(SampleCorpusSettings(scale=1))


def test_one_sample_asset_per_dataset_and_the_job_selects_them_all():
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {f"sample/{name}" for name in DATASETS} <= keys
    job = defs.resolve_job_def("sample_corpus_job")
    assert len(job.asset_layer.executable_asset_keys) == len(DATASETS)


def test_materialize_in_process_reports_metadata_and_passing_checks(resources):
    asset = next(a for a in SAMPLE_ASSETS if a.key.to_user_string() == "sample/rsicd")
    result = dg.materialize([asset], resources=resources)
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["images"].value == 60 and meta["annotation_records"].value > 60
    assert "scale: 1" in meta["settings"].value
    assert meta["thumbnails"].value.count("data:image/png;base64,") == 1
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"splits_complete", "annotated"}
    assert all(c.passed for c in checks)


def test_every_asset_and_check_has_a_description():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, key.to_user_string()
    for spec in graph.asset_check_keys:
        assert defs.resolve_assets_def(spec.asset_key).get_spec_for_check_key(spec).description, spec


@pytest.mark.slow
def test_dagster_cli_materializes_a_selected_asset(tmp_path):
    """What CI and scripts run: `dagster asset materialize -m pipelines.definitions --select ...`, with the
    storage resource and the asset's settings overridden in the run config."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    config = {"resources": {"storage": {"config": {"sample": str(tmp_path / "data")}}},
              "ops": {"sample__nasc_tg2": {"config": {"scale": 1}}}}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "sample/nasc_tg2", "--config-json", json.dumps(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    assert len(list((tmp_path / "data" / "NaSC-TG2").rglob("*.jpg"))) == 25


def test_raw_and_mmrs_assets_convert_a_source_with_passing_checks(resources):
    converted = build_mmrs_assets(["dior_rsvg"], ConversionSettings(), fed_by_sample_corpus=True)
    pick = [a for a in [*SAMPLE_ASSETS, *converted] if a.key.path[-1] == "dior_rsvg"]
    result = dg.materialize(pick, resources=resources)
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata
              for e in result.get_asset_materialization_events()}
    assert events["raw/dior_rsvg"]["files"].value > 48
    meta = events["mmrs/dior_rsvg"]
    assert meta["records"].value == 48 and "grounding" in meta["counts"].value
    assert "Please provide" in meta["samples"].value
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"schema": True, "coordinates_in_unit_square": True, "no_duplicate_records": True,
                      "no_train_test_image_overlap": True, "quarantine_rate": True,
                      "splits_complete": True, "annotated": True}


def test_a_run_overrides_a_conversion_threshold(resources):
    """The launchpad's run config reaches the asset and its check."""
    converted = build_mmrs_assets(["hit_uav"], ConversionSettings(), fed_by_sample_corpus=True)
    pick = [a for a in [*SAMPLE_ASSETS, *converted] if a.key.path[-1] == "hit_uav"]
    result = dg.materialize(pick, resources=resources,
                            run_config={"ops": {"mmrs__hit_uav": {"config": {"max_quarantine_rate": 0.0}}}})
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "quarantine_rate")
    assert check.metadata["limit"].value == 0.0 and check.passed == (check.metadata["rate"].value == 0)
    meta = next(e.materialization.metadata for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "mmrs/hit_uav")
    assert "max_quarantine_rate: 0.0" in meta["settings"].value


def test_a_misspelt_run_config_key_is_refused(resources):
    converted = build_mmrs_assets(["hit_uav"], ConversionSettings(), fed_by_sample_corpus=True)
    asset = next(a for a in converted if a.key.to_user_string() == "mmrs/hit_uav")
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_quarantine_rat"):
        dg.materialize([asset], resources=resources,
                       run_config={"ops": {"mmrs__hit_uav": {"config": {"max_quarantine_rat": 0.5}}}})


def test_missing_raw_release_fails_clearly(resources):
    asset = next(a for a in build_mmrs_assets(["dota"], ConversionSettings(), False) if a.key.path[0] == "raw")
    result = dg.materialize([asset], resources=resources, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "DOTA release folder not found" in failure.event_specific_data.error.to_string()


def test_the_paper_profile_loads_every_registered_source_without_the_sample_corpus():
    """EARTHGPT_PROFILE=paper: all registry sources become raw/ and mmrs/ assets reading real releases."""
    code = ("import json; from pipelines.definitions import defs; from mmrs.registry import SOURCES; "
            "g = defs.resolve_asset_graph(); "
            "print(json.dumps({'keys': [k.to_user_string() for k in defs.resolve_all_asset_keys()], "
            "'sources': list(SOURCES), "
            "'raw_deps': sorted({p.to_user_string() for k in g.get_all_asset_keys() "
            "if k.path[0] == 'raw' for p in g.get(k).parent_keys})}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "EARTHGPT_PROFILE": "paper"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    keys = set(result["keys"])
    assert {f"raw/{s}" for s in result["sources"]} <= keys and {f"mmrs/{s}" for s in result["sources"]} <= keys
    assert result["raw_deps"] == []  # real releases: nothing upstream of raw/<source>
