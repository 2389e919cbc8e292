import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.evaluation import ACTIVE
from assets.sample_corpus import SAMPLE_ASSETS
from mmrs.synthetic.corpus import DATASETS
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]


def test_one_sample_asset_per_dataset_and_the_job_selects_them_all():
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {f"sample/{name}" for name in DATASETS} <= keys
    job = defs.resolve_job_def("sample_corpus_job")
    assert len(job.asset_layer.executable_asset_keys) == len(DATASETS)


def test_materialize_in_process_reports_metadata_and_passing_checks(tmp_path):
    asset = next(a for a in SAMPLE_ASSETS if a.key.to_user_string() == "sample/rsicd")
    result = dg.materialize([asset], run_config={"ops": {"sample__rsicd": {"config": {"out": str(tmp_path),
                                                                                     "scale": 1}}}})
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["images"].value == 60 and meta["annotation_records"].value > 60
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"splits_complete", "annotated"}
    assert all(c.passed for c in checks)


@pytest.mark.slow
def test_dagster_cli_materializes_a_selected_asset(tmp_path):
    """What CI and scripts run: `dagster asset materialize -m pipelines.definitions --select ...`."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    config = {"ops": {"sample__nasc_tg2": {"config": {"out": str(tmp_path / "data"), "scale": 1}}}}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "sample/nasc_tg2", "--config-json", json.dumps(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    assert len(list((tmp_path / "data" / "NaSC-TG2").rglob("*.jpg"))) == 25


def _demo_run_config(tmp_path, names, merge=True):
    ops = {}
    for name in names:
        ops[f"sample__{name}"] = {"config": {"out": str(tmp_path / "sample"), "scale": 1}}  # the demo's is 8
        ops[f"raw__{name}"] = {"config": {"raw_parent": str(tmp_path / "sample"), "out": str(tmp_path / "mmrs")}}
        ops[f"mmrs__{name}"] = {"config": {"raw_parent": str(tmp_path / "sample"), "out": str(tmp_path / "mmrs")}}
    if merge:
        ops["mmrs_1m"] = {"config": {"out": str(tmp_path / "mmrs")}}
        training = {"out": str(tmp_path / "models"), "mmrs_out": str(tmp_path / "mmrs"),
                    "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifacts": str(tmp_path / "artifacts"),
                    "max_steps_text": 20, "max_steps_stage2": 20, "max_steps_stage3": 20}
        ops |= {name: {"config": training}
                for name in ("tokenizer", "pretrained_llm", "aligned_model", "earthgpt_model")}
        evaluation = {"model_dir": str(tmp_path / "models" / "stage3" / "model"), "mmrs_out": str(tmp_path / "mmrs"),
                      "out": str(tmp_path / "eval")}
        ops |= {f"eval__{b.name}": {"config": evaluation} for b in ACTIVE}
        ops["evaluation_report"] = {"config": evaluation}
    return {"ops": ops}


def test_raw_and_mmrs_assets_convert_a_source_with_passing_checks(tmp_path):
    from assets.mmrs import MMRS_ASSETS, RAW_ASSETS

    pick = [a for a in [*SAMPLE_ASSETS, *RAW_ASSETS, *MMRS_ASSETS] if a.key.path[-1] == "dior_rsvg"]
    result = dg.materialize(pick, run_config=_demo_run_config(tmp_path, ["dior_rsvg"], merge=False))
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


def test_missing_raw_release_fails_clearly(tmp_path):
    from assets.mmrs import RAW_ASSETS

    asset = next(a for a in RAW_ASSETS if a.key.path[-1] == "dota")
    result = dg.materialize([asset], run_config={"ops": {"raw__dota": {"config": {"raw_parent": str(tmp_path)}}}},
                            raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "DOTA release folder not found" in failure.event_specific_data.error.to_string()


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_whole_demo_graph_materializes_from_the_cli(tmp_path):
    """`dagster asset materialize --select '*'`: every asset of the demo profile, every check evaluated."""
    from assets.mmrs import ENABLED

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "*", "--config-json", json.dumps(_demo_run_config(tmp_path, ENABLED))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    stats = (tmp_path / "mmrs" / "mmrs_1m_stats.md").read_text()
    assert "| DIOR-RSVG | grounding, region_caption | optical |" in stats
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "## Table II" in report and "## Table VI" in report


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
