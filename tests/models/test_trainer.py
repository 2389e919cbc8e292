"""The stage runner: exact resume after a stop, frozen tensors untouched, MLflow run contents."""

import dataclasses

import lightning as L
import mlflow
import pytest
import torch

from mmrs.build import build_mmrs_1m, convert_source
from mmrs.registry import SOURCES
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from models.config import tiny
from models.data import DataConfig, MMRSDataModule
from models.earthgpt import EarthGPT
from models.io import load_model
from models.tokenization import train_bpe_tokenizer
from models.trainer import StageConfig, TrackingConfig, all_finite, losses_fell, train_stage
from models.training import OptimConfig


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    raw, out = tmp_path_factory.mktemp("raw"), tmp_path_factory.mktemp("mmrs")
    for name in ("rsicd", "nwpu_resisc45"):
        generate_dataset(name, raw)
        convert_source(SOURCES[name], str(raw / DATASETS[name].folder), str(out))
    build_mmrs_1m(str(out), ["rsicd", "nwpu_resisc45"])
    return out


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


def _run(tmp_path, corpus, tok, out, callbacks=None):
    model = _model(tok)
    config = StageConfig("stage2", str(tmp_path / out), OptimConfig(lr=3e-3, warmup_steps=2, max_steps=6),
                         checkpoint_every=3)
    tracking = TrackingConfig(f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="test",
                              artifact_location=str(tmp_path / "artifacts"), tags={"data_version": "abc"})
    return model, train_stage(model, tok, _datamodule(corpus, tok, model), config, tracking, callbacks)


def test_resume_after_a_stop_gives_the_same_weights(tmp_path, corpus, tok):
    straight, result = _run(tmp_path, corpus, tok, "straight")
    assert result.steps == 6 and all_finite(result.losses)
    _, stopped = _run(tmp_path, corpus, tok, "killed", callbacks=[StopAt(3)])
    assert stopped.steps == 3 and (tmp_path / "killed" / "checkpoints" / "last.ckpt").exists()
    resumed, result2 = _run(tmp_path, corpus, tok, "killed")
    assert result2.steps == 6
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_frozen_tensors_untouched_and_mlflow_run_contents(tmp_path, corpus, tok):
    before = _model(tok).state_dict()
    model, result = _run(tmp_path, corpus, tok, "run")
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
