"""The stage runner outside Dagster: tokenizer and stages from settings, idempotent re-runs, object stores,
the whole configuration and the training data in MLflow, validation losses on held-out records."""

import dataclasses

import lightning as L
import mlflow
import pytest
import torch
import yaml

from models.distributed import DistributedConfig
from models.io import load_model
from models.layout import ModelLayout
from models.stages import (
    ModelSettings,
    StageSettings,
    TrainingContext,
    TrainSettings,
    completed_run,
    new_model,
    register_model,
    run_stage,
    train_tokenizer,
)
from models.tokenization import train_bpe_tokenizer
from models.tracking import TrackingSettings

NAMES = ("rsicd", "nwpu_resisc45")


@pytest.fixture(scope="module")
def corpus(sample_corpus):
    return sample_corpus(NAMES, merge=True) / "mmrs"


def _stage(steps=4, **changes):
    return StageSettings(**{"batch_size": 4, "max_steps": steps, "lr": 3e-3, "warmup_steps": 1,
                            "checkpoint_every": 2, **changes})


def _train(**stages):
    return TrainSettings(model=ModelSettings(tokenizer_vocab=400), text=stages.get("text", _stage()),
                         stage2=stages.get("stage2", _stage(tasks=("captioning",))),
                         stage3=stages.get("stage3", _stage()))


def _ctx(tmp_path, corpus, models=None, train=None):
    tracking = TrackingSettings(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifacts=str(tmp_path / "artifacts"),
                                experiment="test", registered_model="earthgpt-test")
    return TrainingContext(train or _train(), ModelLayout(models or str(tmp_path / "models")), str(corpus), tracking,
                           DistributedConfig(precision="32-true"))


def _all_stages(ctx):
    train_tokenizer(ctx)
    return [run_stage(ctx, stage) for stage in ("text", "stage2", "stage3")]


def test_stages_chain_and_a_second_run_reuses_the_completed_runs(tmp_path, corpus):
    ctx = _ctx(tmp_path, corpus)
    first = _all_stages(ctx)
    assert [o.steps for o in first] == [4, 4, 4] and not any(o.reused for o in first)
    registration = register_model(ctx, first[-1])
    again = [run_stage(ctx, stage) for stage in ("text", "stage2", "stage3")]
    assert all(o.reused for o in again)
    assert [o.run_id for o in again] == [o.run_id for o in first]
    assert again[-1].losses == first[-1].losses  # the recorded losses, for the checks
    assert register_model(ctx, again[-1]) == registration
    client = mlflow.MlflowClient(ctx.tracking.uri)
    assert len(client.search_model_versions("name='earthgpt-test'")) == 1
    experiment = client.get_experiment_by_name("test")
    assert len(client.search_runs([experiment.experiment_id])) == 3
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_changed_setting_trains_afresh_and_downstream_stages_follow(tmp_path, corpus):
    ctx = _ctx(tmp_path, corpus)
    first = _all_stages(ctx)
    changed = dataclasses.replace(ctx, train=_train(stage2=_stage(tasks=("captioning",), lr=1e-3)))
    text, stage2, stage3 = (run_stage(changed, s) for s in ("text", "stage2", "stage3"))
    assert text.reused and not stage2.reused and not stage3.reused  # stage 3 starts from new weights
    assert stage3.run_key != first[2].run_key


def test_mlflow_holds_the_whole_configuration_the_dataset_and_validation_losses(tmp_path, corpus):
    train = _train(stage3=_stage(steps=6, validate_every=3, holdout_permille=200, val_samples=16))
    ctx = _ctx(tmp_path, corpus, train=train)
    outcome = _all_stages(ctx)[-1]
    assert [step for step, _ in outcome.val_losses] == [3, 6]
    run = mlflow.MlflowClient(ctx.tracking.uri).get_run(outcome.run_id)
    params = run.data.params
    assert params["settings.train.stage3.lr"] == "0.003" and params["settings.train.model.tokenizer_vocab"] == "400"
    assert params["data.holdout_permille"] == "200" and params["settings.mlflow.experiment"] == "test"
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "mmrs_1m" and dataset.tags[0].value == "training"
    document = yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{outcome.run_id}/settings.yaml"))
    assert document["train"]["stage3"]["validate_every"] == 3
    assert "val/loss" in run.data.metrics


def test_a_new_model_is_the_same_in_every_process():
    """The random init is seeded: two builds (as two separate runs would do) give identical weights."""
    tok = train_bpe_tokenizer(["Is there a plane in the image?", "yes", "no"] * 20, vocab_size=300)
    first = new_model(ModelSettings(), tok).state_dict()
    torch.rand(7)  # whatever ran before must not matter
    second = new_model(ModelSettings(), tok).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


class StopAt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def test_stages_on_an_object_store_resume_there(tmp_path, corpus, s3_bucket):
    """storage.models on S3 (a moto server on loopback): tokenizer, checkpoints, models and records live there;
    a stopped stage resumes from its checkpoint on S3 and ends as an uninterrupted run would."""
    import fsspec

    ctx = _ctx(tmp_path, corpus, models=f"s3://{s3_bucket}/models")
    train_tokenizer(ctx)
    run_stage(ctx, "text")
    stopped = run_stage(ctx, "stage2", callbacks=[StopAt(2)])
    assert stopped.steps == 2 and completed_run(ctx.layout, "stage2") is None
    fs = fsspec.filesystem("s3")
    assert fs.exists(f"{s3_bucket}/models/stage2/checkpoints/last.ckpt")
    resumed = run_stage(ctx, "stage2")
    assert resumed.resumed and resumed.steps == 4 and len(resumed.losses) == 2
    stage3 = run_stage(ctx, "stage3")
    assert stage3.steps == 4 and fs.exists(f"{s3_bucket}/models/stage3/model/model.safetensors")
    assert run_stage(ctx, "stage3").reused

    straight = _ctx(tmp_path / "local", corpus)
    (tmp_path / "local").mkdir()
    local = _all_stages(straight)
    on_s3, _ = load_model(stage3.model_dir)
    here, _ = load_model(local[-1].model_dir)
    for (name, a), (_, b) in zip(on_s3.state_dict().items(), here.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
