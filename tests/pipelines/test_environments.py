"""The same graph in every environment: local folders and SQLite, or S3 and a remote MLflow server (both on
loopback here), chosen by settings alone."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from mmrs.settings import SettingsError
from pipelines.definitions import build_definitions
from pipelines.settings import load_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on loopback (SQLite store, artifacts served by the server)."""
    root, port = tmp_path_factory.mktemp("mlflow-server"), _free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port",
                             str(port), "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                             "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _graph(defs: dg.Definitions) -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
            for key in graph.get_all_asset_keys()}


def test_local_and_object_store_environments_hold_the_same_graph(tmp_path, s3_bucket, mlflow_server):
    local = load_settings("demo", {"storage.sample": str(tmp_path / "sample"), "storage.raw": str(tmp_path / "sample"),
                                   "storage.mmrs": str(tmp_path / "mmrs")})
    remote = load_settings("demo", {"storage.sample": str(tmp_path / "sample"), "storage.raw": str(tmp_path / "sample"),
                                    "storage.mmrs": f"s3://{s3_bucket}/mmrs",
                                    "storage.models": f"s3://{s3_bucket}/models",
                                    "storage.eval": f"s3://{s3_bucket}/eval", "mlflow.uri": mlflow_server,
                                    "mlflow.artifacts": None})
    local_defs, remote_defs = build_definitions(local), build_definitions(remote)
    assert _graph(local_defs) == _graph(remote_defs)
    assert remote_defs.resources["storage"].mmrs == f"s3://{s3_bucket}/mmrs"
    assert remote_defs.resources["tracking"].uri == mlflow_server

    # the remote environment's resources really work: a source converted onto S3 with its checks
    job = remote_defs.resolve_implicit_global_asset_job_def()
    selection = ["sample/nasc_tg2", "raw/nasc_tg2", "mmrs/nasc_tg2"]
    result = job.execute_in_process(
        asset_selection=[dg.AssetKey.from_user_string(k) for k in selection],
        run_config={"ops": {"sample__nasc_tg2": {"config": {"scale": 1}}}})
    assert result.success
    import fsspec

    assert fsspec.filesystem("s3").exists(f"{s3_bucket}/mmrs/nasc_tg2/manifest.json")


def test_the_tracking_resource_links_runs_on_a_tracking_server(mlflow_server):
    import mlflow

    settings = load_settings("demo", {"mlflow.uri": mlflow_server, "mlflow.artifacts": None,
                                      "mlflow.experiment": "links"})
    tracking = build_definitions(settings).resources["tracking"]
    from models.tracking import experiment_id

    mlflow.set_tracking_uri(mlflow_server)
    with mlflow.start_run(experiment_id=experiment_id(tracking.settings)) as run:
        mlflow.log_metric("x", 1.0)
    url = tracking.run_url(run.info.run_id)
    assert url.startswith(mlflow_server) and url.endswith(run.info.run_id)


def test_urls_are_refused_where_a_filesystem_is_needed():
    with pytest.raises(SettingsError, match="storage.sample must be a local folder"):
        load_settings("demo", {"storage.sample": "s3://bucket/sample"})
    with pytest.raises(SettingsError, match="set storage.checkpoints"):
        load_settings("paper", {"storage.checkpoints": "s3://bucket/checkpoints"})
