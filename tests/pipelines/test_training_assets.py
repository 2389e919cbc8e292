"""tokenizer -> aligned_model -> earthgpt_model -> eval/<benchmark> -> evaluation_report on a small converted
corpus, a few training steps each."""

import json

import dagster as dg
import mlflow

from assets.evaluation import build_evaluation_assets
from assets.training import TRAINING_ASSETS
from evaluation.benchmarks import BENCHMARKS
from mmrs.build import build_mmrs_1m, convert_source
from mmrs.registry import SOURCES
from mmrs.synthetic.corpus import DATASETS, generate_dataset


def test_training_assets_train_register_and_pass_their_checks(tmp_path):
    names = ["rsicd", "nwpu_resisc45"]
    for name in names:
        generate_dataset(name, tmp_path / "raw")
        convert_source(SOURCES[name], str(tmp_path / "raw" / DATASETS[name].folder), str(tmp_path / "mmrs"))
    build_mmrs_1m(str(tmp_path / "mmrs"), names)
    config = {"out": str(tmp_path / "models"), "mmrs_out": str(tmp_path / "mmrs"),
              "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifacts": str(tmp_path / "artifacts"),
              "experiment": "test", "registered_model": "earthgpt-test", "max_steps_text": 4, "max_steps_stage2": 4,
              "max_steps_stage3": 4}
    ops = {name: {"config": config} for name in ("tokenizer", "pretrained_llm", "aligned_model", "earthgpt_model")}
    eval_config = {"model_dir": str(tmp_path / "models" / "stage3" / "model"), "mmrs_out": str(tmp_path / "mmrs"),
                   "out": str(tmp_path / "eval"), "batch_size": 8}
    ops |= {name: {"config": eval_config} for name in ("eval__nwpu_resisc45", "evaluation_report")}
    evaluation = build_evaluation_assets([BENCHMARKS["nwpu_resisc45"]])
    result = dg.materialize([*TRAINING_ASSETS, *evaluation], run_config={"ops": ops})
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["aligned_model"]["steps"].value == 4 and meta["earthgpt_model"]["steps"].value == 4
    assert meta["pretrained_llm"]["trained_here"].value and meta["pretrained_llm"]["steps"].value == 4
    assert meta["earthgpt_model"]["trainable_tensors"].value == 28
    assert meta["earthgpt_model"]["registered_model"].value == "earthgpt-test v1"
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("aligned_model", "finite_losses")] and checks[("earthgpt_model", "reloads_and_generates")]
    assert checks[("aligned_model", "reloads_and_generates")] and checks[("pretrained_llm", "finite_losses")]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = mlflow.MlflowClient().get_model_version("earthgpt-test", "1")
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["stage"] == "stage3" and len(run.data.tags["data_version"]) == 64

    # the evaluation scored every held-out image, logged to the stage-3 run, and promoted only on a pass
    manifest = json.loads((tmp_path / "mmrs" / "nwpu_resisc45" / "manifest.json").read_text())
    assert meta["eval/nwpu_resisc45"]["samples"].value == manifest["counts"]["records"]["test"]["classification"]
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| Top-1 | 93.84 |" in report
    assert "eval/nwpu_resisc45/Top-1" in run.data.metrics
    passed = checks[("evaluation_report", "every_benchmark_beats_its_baseline")]
    assert meta["evaluation_report"]["promoted_to_champion"].value == passed
    aliases = mlflow.MlflowClient().get_registered_model("earthgpt-test").aliases
    assert ("champion" in aliases) == passed


def test_a_new_model_is_the_same_in_every_process():
    """The random init is seeded: two builds (as two separate runs would do) give identical weights."""
    import torch

    from assets.training import _build_model
    from models.tokenization import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["Is there a plane in the image?", "yes", "no"] * 20, vocab_size=300)
    first = _build_model(tok).state_dict()
    torch.rand(7)  # whatever ran before must not matter
    second = _build_model(tok).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
