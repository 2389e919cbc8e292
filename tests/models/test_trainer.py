"""The stage runner: exact resume after a stop, frozen tensors untouched, MLflow run contents."""

import dataclasses

import lightning as L
import mlflow
import pytest
import torch

from models.config import tiny
from models.data import DataConfig, MMRSDataModule
from models.earthgpt import EarthGPT
from models.io import load_model
from models.tokenization import train_bpe_tokenizer
from models.tracking import TrackingSettings
from models.trainer import (
    StageConfig,
    all_finite,
    losses_fell,
    run_key,
    train_stage,
    weights_digest,
)
from models.training import OptimConfig


@pytest.fixture(scope="module")
def corpus(sample_corpus):
    return sample_corpus(("rsicd", "nwpu_resisc45"), merge=True) / "mmrs"


@pytest.fixture(scope="module")
def tok():
    return train_bpe_tokenizer(["There are three planes near the runway of the airport. What is the category"] * 20,
                               vocab_size=400)


def _model(tok):
    torch.manual_seed(0)
    config = tiny()
    return EarthGPT(dataclasses.replace(config, llm=dataclasses.replace(config.llm, vocab_size=len(tok))))


def _datamodule(corpus, tok, model):
    return MMRSDataModule(DataConfig(manifest=str(corpus / "mmrs_1m.json"), batch_size=4, seed=1),
                          model.config, tok)


class StopAt(L.Callback):
    """Ends the run after `step` optimiser steps, as a killed job would (its last checkpoint survives)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def _run(tmp_path, corpus, tok, out, callbacks=None, keyed=False, data_version="v1", model=None):
    model = model or _model(tok)
    config = StageConfig("stage2", str(tmp_path / out / "checkpoints"), str(tmp_path / out / "model"),
                         OptimConfig(lr=3e-3, warmup_steps=2, max_steps=6), checkpoint_every=3)
    if keyed:
        config.run_key = run_key(config, model, {"corpus": data_version})
    tracking = TrackingSettings(f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="test",
                                artifacts=str(tmp_path / "artifacts"))
    return model, train_stage(model, tok, _datamodule(corpus, tok, model), config, tracking,
                              tags={"data_version": "abc"}, callbacks=callbacks)


@pytest.mark.parametrize("keyed", [False, True])
def test_resume_after_a_stop_gives_the_same_weights(tmp_path, corpus, tok, keyed):
    straight, result = _run(tmp_path, corpus, tok, "straight", keyed=keyed)
    assert result.steps == 6 and all_finite(result.losses) and not result.resumed
    _, stopped = _run(tmp_path, corpus, tok, "killed", callbacks=[StopAt(3)], keyed=keyed)
    assert stopped.steps == 3 and (tmp_path / "killed" / "checkpoints" / "last.ckpt").exists()
    resumed, result2 = _run(tmp_path, corpus, tok, "killed", keyed=keyed)
    assert result2.steps == 6 and result2.resumed and len(result2.losses) == 3
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_frozen_tensors_untouched_and_mlflow_run_contents(tmp_path, corpus, tok, caplog):
    before = _model(tok).state_dict()
    with caplog.at_level("INFO", logger="earthgpt.training"):
        model, result = _run(tmp_path, corpus, tok, "run")
    progress = [r.getMessage() for r in caplog.records if r.name == "earthgpt.training"]
    assert progress and progress[-1].startswith("stage2 step 6/6 (100%) loss ")
    assert "samples/s" in progress[-1] and "left" in progress[-1]
    trainable = set(result.trainable)
    for name, tensor in model.state_dict().items():
        assert torch.equal(before[name], tensor) == (name not in trainable), name
    loaded, _ = load_model(result.model_dir)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = mlflow.get_run(result.run_id)
    assert run.data.params["optim.lr"] == "0.003" and run.data.params["stage"] == "stage2"
    assert run.data.tags["data_version"] == "abc" and run.data.tags["stage"] == "stage2"
    assert len(run.data.tags["git_commit"]) in (40, 7) or run.data.tags["git_commit"] == "unknown"
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "train/loss")
    assert [m.step for m in history] == list(range(6))
    assert "train/lr" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"checkpoints", "model"} <= artifacts
    ckpts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "checkpoints")}
    assert {"checkpoints/last.ckpt", "checkpoints/step-step=3.ckpt", "checkpoints/step-step=6.ckpt"} <= ckpts


def test_loss_checks():
    assert losses_fell([5.0] * 10 + [3.0] * 10) and not losses_fell([3.0] * 10 + [5.0] * 10)
    assert all_finite([1.0, 2.0]) and not all_finite([1.0, float("nan")]) and not all_finite([])


def test_a_run_of_other_data_or_starting_weights_trains_afresh(tmp_path, corpus, tok):
    """Keyed checkpoints: a finished run of the same key is resumed (no step left); new data or new starting
    weights (the previous stage retrained) start from step 0, the old checkpoints set aside."""
    first, result = _run(tmp_path, corpus, tok, "run", keyed=True)
    again, same = _run(tmp_path, corpus, tok, "run", keyed=True)
    assert same.resumed and same.losses == [] and same.steps == 6
    for (name, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    _, new_data = _run(tmp_path, corpus, tok, "run", keyed=True, data_version="v2")
    assert not new_data.resumed and len(new_data.losses) == 6
    superseded = tmp_path / "run" / "checkpoints.superseded"
    assert (superseded / "last.ckpt").exists() and (superseded / "superseded_run_key").exists()
    other_start = _model(tok)
    with torch.no_grad():
        next(other_start.parameters()).add_(1.0)
    _, new_start = _run(tmp_path, corpus, tok, "run", keyed=True, data_version="v2", model=other_start)
    assert not new_start.resumed and len(new_start.losses) == 6
    _, unkeyed = _run(tmp_path, corpus, tok, "run", model=other_start)  # resumes anything, and owns it after
    assert unkeyed.resumed and not (tmp_path / "run" / "checkpoints.run_key").exists()
    _, after = _run(tmp_path, corpus, tok, "run", keyed=True, data_version="v2", model=other_start)
    assert not after.resumed and len(after.losses) == 6  # the unkeyed run's checkpoint is not this key's


def test_run_key_is_what_decides_the_result(tok):
    model = _model(tok)
    base = StageConfig("stage2", "/a/checkpoints", "/a/model", OptimConfig(lr=1e-3, max_steps=10), checkpoint_every=5)
    key = run_key(base, model, {"corpus": "h1"})
    elsewhere = dataclasses.replace(base, checkpoint_dir="/b", model_dir="/c", checkpoint_every=2)
    assert key == run_key(elsewhere, _model(tok), {"corpus": "h1"})
    assert key != run_key(base, model, {"corpus": "h2"})
    assert key != run_key(dataclasses.replace(base, optim=OptimConfig(lr=2e-3, max_steps=10)), model, {"corpus": "h1"})
    assert key != run_key(dataclasses.replace(base, seed=1), model, {"corpus": "h1"})
    changed = _model(tok)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert key != run_key(base, changed, {"corpus": "h1"})
    assert weights_digest(model) == weights_digest(_model(tok))


class _Strategy:
    def __init__(self, config):
        self.config = config


def test_run_key_describes_strategy_objects_by_class_and_config(tok):
    """A DeepSpeedStrategy object in the trainer kwargs: the same key in every process (no object address)."""
    model = _model(tok)
    one = StageConfig("stage3", "/a", "/m", trainer={"strategy": _Strategy({"zero_optimization": {"stage": 2}})})
    two = StageConfig("stage3", "/a", "/m", trainer={"strategy": _Strategy({"zero_optimization": {"stage": 2}})})
    three = StageConfig("stage3", "/a", "/m", trainer={"strategy": _Strategy({"zero_optimization": {"stage": 3}})})
    assert run_key(one, model, {}) == run_key(two, model, {}) != run_key(three, model, {})
