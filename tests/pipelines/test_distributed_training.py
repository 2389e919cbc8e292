"""Stage 3 on two CPU processes: torchrun started by the training asset through Dagster Pipes, Lightning's DDP
over gloo, each rank on its own half of every global batch. The weights equal, within float tolerance, those
of one process that accumulates the same two batches per step; progress, checkpoints and the outcome come
back through Pipes."""

import shutil

import dagster as dg
import pytest
import torch

from assets.resources import resources_from_settings
from assets.training import build_training_assets
from models.data import MMRSStream, load_sources
from models.io import load_model, save_model
from models.stages import data_config, new_model, train_tokenizer
from pipelines.settings import load_settings

NAMES = ["rsicd", "nwpu_resisc45"]
STEPS = 4


@pytest.fixture(scope="module")
def start(sample_corpus):
    """A converted corpus, its tokenizer and a stage-2 model: what stage 3 starts from."""
    root = sample_corpus(NAMES, merge=True)
    settings = _settings(root, root / "base", processes=1, accumulation=1)
    ctx = _ctx(settings)
    tokenizer = train_tokenizer(ctx)
    save_model(new_model(settings.train.model, tokenizer), tokenizer, ctx.layout.model("stage2"))
    return root


def _settings(root, models, processes, accumulation):
    return load_settings("demo", {
        "storage.mmrs": str(root / "mmrs"), "storage.models": str(models), "storage.eval": str(root / "eval"),
        "mlflow.uri": f"sqlite:///{root / 'mlflow.db'}", "mlflow.artifacts": str(root / "artifacts"),
        "mlflow.experiment": "ddp", "mlflow.registered_model": "earthgpt-ddp",
        "train.stage3.batch_size": 4, "train.stage3.max_steps": STEPS, "train.stage3.warmup_steps": 1,
        "train.stage3.checkpoint_every": 2, "train.stage3.weights": None,  # one pass: every record once
        "compute.processes": processes,
        "compute.gradient_accumulation": accumulation})


def _ctx(settings):
    from models.stages import TrainingContext

    return TrainingContext(settings.train, settings.storage.model_layout(), settings.storage.mmrs,
                           settings.mlflow, settings.compute)


def _stage3(start, name, processes, accumulation):
    """earthgpt_model materialized from a copy of the stage-2 start; (result, its stage-3 model)."""
    models = start / name
    shutil.copytree(start / "base", models)
    settings = _settings(start, models, processes, accumulation)
    assets = [a for a in build_training_assets(settings.train) if a.key.to_user_string() == "earthgpt_model"]
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets, instance=instance,
                                resources=resources_from_settings(settings.storage, settings.mlflow,
                                                                  settings.compute))
        logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    return result, load_model(settings.storage.model_layout().model("stage3"))[0], logs


@pytest.mark.slow
def test_ddp_on_two_processes_gives_the_weights_of_one_process_at_the_same_global_batch(start):
    one, single, _ = _stage3(start, "one", processes=1, accumulation=2)
    two, ddp, logs = _stage3(start, "two", processes=2, accumulation=1)
    assert one.success and two.success

    trained = {n: p for n, p in ddp.named_parameters() if n.endswith((".alpha", ".beta"))}
    assert trained and len(trained) == len([n for n, _ in single.named_parameters() if n.endswith((".alpha", ".beta"))])
    reference = dict(single.named_parameters())
    moved = max(float((p - torch.ones_like(p) if n.endswith("alpha") else p).abs().max()) for n, p in trained.items())
    assert moved > 1e-3  # training did move the weights
    differences = {name: float((tensor - reference[name]).abs().max()) for name, tensor in trained.items()}
    print(f"DDP vs one process: largest difference {max(differences.values()):.2e}, largest change {moved:.2e}")
    for name, tensor in trained.items():
        torch.testing.assert_close(tensor, reference[name], rtol=1e-4, atol=1e-5, msg=name)

    (meta,) = [e.materialization.metadata for e in two.get_asset_materialization_events()]
    assert meta["processes"].value == 2 and meta["steps"].value == STEPS
    assert meta["checkpoint_steps"].value == "2, 4"
    assert meta["registered_model"].value.startswith("earthgpt-ddp v")
    assert any(f"stage3: step {STEPS}/{STEPS}" in m and "2 ranks" in m for m in logs)  # progress via Pipes
    assert all(c.passed for c in two.get_asset_check_evaluations())

    # each rank took its own half of every global batch: what the single process took two at a time
    settings = _settings(start, start / "two", 2, 1)
    config = data_config(_ctx(settings), "stage3")
    tokenizer = load_model(settings.storage.model_layout().model("stage3"))[1]
    model_config = single.config
    sources = load_sources(config, None)
    ranks = [MMRSStream(sources, config, model_config, tokenizer, settings.train.stage3.weights, rank=r,
                        world_size=2) for r in (0, 1)]
    shares = [{s.id for step in range(STEPS) for s in r.planned_batch(r.plan_index(0), 2 * step + r.rank).samples}
              for r in ranks]
    alone = MMRSStream(sources, config, model_config, tokenizer, settings.train.stage3.weights)
    taken = {s.id for i in range(2 * STEPS) for s in alone.planned_batch(alone.plan_index(0), i).samples}
    assert shares[0].isdisjoint(shares[1]) and shares[0] | shares[1] == taken
