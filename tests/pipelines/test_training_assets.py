"""tokenizer -> pretrained_llm -> aligned_model -> earthgpt_model -> eval/<benchmark> -> paper_tables on a
small converted corpus, a few training steps each; the assets and `earthgpt train` give the same model."""

import json

import dagster as dg
import mlflow
import pytest
import torch

from assets.evaluation import build_evaluation_assets
from assets.resources import resources_from_settings
from assets.training import build_training_assets
from evaluation.benchmarks import BENCHMARKS
from models.io import load_model
from pipelines.cli import main
from pipelines.settings import load_settings

NAMES = ["rsicd", "nwpu_resisc45"]
STEPS = {f"train.{stage}.{key}": value for stage in ("text", "stage2", "stage3")
         for key, value in (("max_steps", 4), ("batch_size", 4), ("warmup_steps", 1), ("checkpoint_every", 2))}


@pytest.fixture(scope="module")
def corpus(sample_corpus):
    return sample_corpus(NAMES, merge=True)


def _overrides(root, corpus, **more):
    return {**STEPS, "storage.mmrs": str(corpus / "mmrs"), "storage.models": str(root / "models"),
            "storage.eval": str(root / "eval"), "mlflow.uri": f"sqlite:///{root / 'mlflow.db'}",
            "mlflow.artifacts": str(root / "artifacts"), "mlflow.experiment": "test",
            "mlflow.registered_model": "earthgpt-test", **more}


def _materialize(root, corpus, run_config=None, with_evaluation=True):
    """The training (and evaluation) assets with the resources Definitions would build from these settings."""
    settings = load_settings("demo", _overrides(root, corpus))
    assets = build_training_assets(settings.train)
    if with_evaluation:
        assets += build_evaluation_assets([BENCHMARKS["nwpu_resisc45"]], settings.evaluation.protocol)
    resources = resources_from_settings(settings.storage, settings.mlflow, settings.compute)
    result = dg.materialize(assets, resources=resources, run_config=run_config or {})
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    return result, meta, checks


def test_training_assets_train_register_and_pass_their_checks(tmp_path, corpus):
    result, meta, checks = _materialize(tmp_path, corpus)
    assert result.success
    assert meta["aligned_model"]["steps"].value == 4 and meta["earthgpt_model"]["steps"].value == 4
    assert meta["pretrained_llm"]["steps"].value == 4
    assert meta["earthgpt_model"]["trainable_tensors"].value == 28
    assert meta["earthgpt_model"]["registered_model"].value == "earthgpt-test v1"
    assert "lr: 0.01" in meta["earthgpt_model"]["settings"].value
    assert all(checks[(asset, name)] for asset in ("pretrained_llm", "aligned_model", "earthgpt_model")
               for name in ("finite_losses", "loss_fell", "reloads_and_generates"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = mlflow.MlflowClient().get_model_version("earthgpt-test", "1")
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["stage"] == "stage3" and len(run.data.tags["data_version"]) == 64
    assert version.tags["stage"] == "stage3" and version.tags["data_version"] == run.data.tags["data_version"]
    assert "4 steps on MMRS-1M data version" in version.description
    assert "loss_curve.png" in {a.path for a in mlflow.MlflowClient().list_artifacts(version.run_id)}
    assert "data:image/png;base64," in meta["earthgpt_model"]["loss_curve"].value

    # the evaluation scored every held-out image, logged to the stage-3 run, and promoted only on a pass
    manifest = json.loads((corpus / "mmrs" / "nwpu_resisc45" / "manifest.json").read_text())
    assert meta["eval/nwpu_resisc45"]["samples"].value == manifest["counts"]["records"]["test"]["classification"]
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| Top-1 | 93.84 |" in report
    assert "eval/nwpu_resisc45/Top-1" in mlflow.get_run(version.run_id).data.metrics
    passed = checks[("paper_tables", "every_benchmark_beats_its_baseline")]
    assert meta["paper_tables"]["promoted_to_champion"].value == passed
    aliases = mlflow.MlflowClient().get_registered_model("earthgpt-test").aliases
    assert ("champion" in aliases) == passed

    # materialized again with unchanged inputs: the same runs and model version, the checks on their losses
    again, meta2, checks2 = _materialize(tmp_path, corpus, with_evaluation=False)
    assert again.success and all(checks2.values())
    assert meta2["earthgpt_model"]["reused_completed_run"].value
    assert meta2["earthgpt_model"]["mlflow_run_id"].value == meta["earthgpt_model"]["mlflow_run_id"].value
    assert meta2["earthgpt_model"]["loss_last"].value == meta["earthgpt_model"]["loss_last"].value
    assert meta2["earthgpt_model"]["registered_model"].value == "earthgpt-test v1"
    client = mlflow.MlflowClient()
    assert len(client.search_model_versions("name='earthgpt-test'")) == 1
    assert len(client.search_runs([client.get_experiment_by_name("test").experiment_id])) == 3


def test_a_launchpad_override_of_the_learning_rate_reaches_the_optimiser_and_mlflow(tmp_path, corpus):
    run_config = {"ops": {"earthgpt_model": {"config": {"stage": {"lr": 0.0123}}}}}
    result, meta, _ = _materialize(tmp_path, corpus, run_config, with_evaluation=False)
    assert result.success and "lr: 0.0123" in meta["earthgpt_model"]["settings"].value
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(meta["earthgpt_model"]["mlflow_run_id"].value)
    assert run.data.params["optim.lr"] == "0.0123" and run.data.params["settings.train.stage3.lr"] == "0.0123"
    lrs = [m.value for m in client.get_metric_history(run.info.run_id, "train/lr")]
    assert lrs[0] == pytest.approx(0.0123)  # the optimiser's own learning rate after a one-step warmup


def test_the_cli_trains_the_same_model_as_the_assets(tmp_path, corpus, capsys):
    result, meta, _ = _materialize(tmp_path / "dagster", corpus, with_evaluation=False)
    assert result.success
    sets = [f"{k}={v}" for k, v in _overrides(tmp_path / "cli", corpus).items()]
    for stage in ("text", "stage2", "stage3"):
        assert main(["train", "--stage", stage, "--profile", "demo", *[a for s in sets for a in ("--set", s)]]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["run_key"] == meta["earthgpt_model"]["run_key"].value
    cli_model, _ = load_model(tmp_path / "cli" / "models" / "stage3" / "model")
    asset_model, _ = load_model(tmp_path / "dagster" / "models" / "stage3" / "model")
    for (name, a), (_, b) in zip(cli_model.state_dict().items(), asset_model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
