import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

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
    result = dg.materialize([asset], run_config={"ops": {"sample__rsicd": {"config": {"out": str(tmp_path)}}}})
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
    config = {"ops": {"sample__nasc_tg2": {"config": {"out": str(tmp_path / "data")}}}}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "sample/nasc_tg2", "--config-json", json.dumps(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    assert len(list((tmp_path / "data" / "NaSC-TG2").rglob("*.jpg"))) == 25
