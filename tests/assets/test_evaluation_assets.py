"""predictions/<benchmark> -> eval/<benchmark> -> paper_tables with a small saved model: answers generated once
and reused, a cut-short file resumed, the CLI's score equal to the asset's, the tables and pictures in MLflow."""

import json
from pathlib import Path

import dagster as dg
import mlflow
import pytest
import torch

from assets import evaluation as evaluation_assets
from assets.evaluation import build_evaluation_assets
from assets.resources import resources_from_settings
from evaluation.benchmarks import BENCHMARKS
from evaluation.settings import EvaluationSettings
from models.config import tiny
from models.distributed import DistributedConfig
from models.earthgpt import EarthGPT
from models.io import save_model
from models.layout import ModelLayout
from models.stages import StageOutcome, TrainingContext, TrainSettings, register_model
from models.tokenization import train_bpe_tokenizer
from models.tracking import TrackingSettings, experiment_id
from pipelines.cli import main
from pipelines.settings import StorageSettings

NAMES = ("nwpu_resisc45", "dior_rsvg")
PROTOCOL = EvaluationSettings(batch_size=16, max_new_tokens=6)


@pytest.fixture(scope="module")
def world(sample_corpus):
    """A converted corpus, a registered random tiny model and the resources that point at them."""
    root = sample_corpus(NAMES)
    storage = StorageSettings(sample=str(root / "sample"), raw=str(root / "sample"), mmrs=str(root / "mmrs"),
                              models=str(root / "models"), eval=str(root / "eval"))
    tracking = TrackingSettings(uri=f"sqlite:///{root / 'mlflow.db'}", artifacts=str(root / "artifacts"),
                                experiment="eval-test", registered_model="earthgpt-eval-test")
    tokenizer = train_bpe_tokenizer(["Detect all planes [0.12,0.33,0.45,0.67]", "harbor airport forest"] * 30, 300)
    torch.manual_seed(0)
    config = tiny()
    model = EarthGPT(type(config)(**{**config.__dict__, "llm": type(config.llm)(**{**config.llm.__dict__,
                                                                                   "vocab_size": len(tokenizer)})}))
    layout = ModelLayout(str(root / "models"))
    save_model(model, tokenizer, layout.final_model)
    mlflow.set_tracking_uri(tracking.uri)
    with mlflow.start_run(experiment_id=experiment_id(tracking)) as run:
        pass
    outcome = StageOutcome("stage3", "key", run.info.run_id, layout.final_model, 1, [1.0], [], 0, 0)
    register_model(TrainingContext(TrainSettings(), layout, str(root / "mmrs"), tracking), outcome)
    return root, resources_from_settings(storage, tracking, DistributedConfig(precision="32-true")), run.info.run_id


def _materialize(resources, benchmarks=NAMES):
    assets = build_evaluation_assets([BENCHMARKS[n] for n in benchmarks], PROTOCOL)
    result = dg.materialize(assets, resources=resources)
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    return meta, checks


def test_answers_are_generated_once_resumed_and_rescored_without_generation(world):
    root, resources, run_id = world
    first, checks = _materialize(resources)
    made = first["predictions/nwpu_resisc45"]
    assert made["generated_now"].value == made["answers"].value
    assert all(c.passed for (asset, name), c in checks.items() if name == "every_question_answered")
    again, _ = _materialize(resources)
    assert again["predictions/nwpu_resisc45"]["generated_now"].value == 0
    assert again["eval/nwpu_resisc45"]["Top-1"].value == first["eval/nwpu_resisc45"]["Top-1"].value

    # an interrupted generation: the file cut after 10 answers and half a line; the rest is asked, no more
    path = first["predictions/dior_rsvg"]["predictions"].value
    lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines[:10]) + lines[10][:7])
    resumed, _ = _materialize(resources, ["dior_rsvg"])
    assert resumed["predictions/dior_rsvg"]["kept_from_before"].value == 10
    assert resumed["predictions/dior_rsvg"]["generated_now"].value == len(lines) - 10
    assert Path(path).read_text(encoding="utf-8") == "".join(lines)  # greedy: the same answers as before


def test_answers_stored_by_other_code_are_asked_again(world, monkeypatch):
    root, resources, _ = world
    _materialize(resources, ["nwpu_resisc45"])
    monkeypatch.setattr(evaluation_assets, "prediction_code_version", lambda: "0123456789abcdef")
    again, _ = _materialize(resources, ["nwpu_resisc45"])
    made = again["predictions/nwpu_resisc45"]
    assert made["kept_from_before"].value == 0 and made["generated_now"].value == made["answers"].value


def test_the_cli_scores_the_stored_answers_as_the_asset_did(world, capsys):
    root, resources, _ = world
    meta, _ = _materialize(resources, ["nwpu_resisc45"])
    predictions = meta["predictions/nwpu_resisc45"]["predictions"].value
    reference = str(root / "mmrs" / "nwpu_resisc45" / "test-00000.jsonl")
    assert main(["score", "nwpu_resisc45", "--references", reference, "--predictions", predictions]) == 0
    scored = json.loads(capsys.readouterr().out)
    asset = json.loads((root / "eval" / "nwpu_resisc45.json").read_text())
    assert scored["metrics"] == asset["metrics"] and scored["samples"] == asset["samples"]


def test_paper_tables_carry_the_results_and_mlflow_the_tables_and_pictures(world):
    root, resources, run_id = world
    meta, checks = _materialize(resources)
    tables = meta["paper_tables"]["tables"].value
    top1 = json.loads((root / "eval" / "nwpu_resisc45.json").read_text())["metrics"]["Top-1"]
    assert f"**{top1:.2f}** | nwpu_resisc45.json |" in tables
    assert "## Table VII" in tables and "MGVLF" in tables
    assert "data:image/png;base64," in meta["eval/nwpu_resisc45"]["pictures"].value  # the confusion matrix
    assert checks[("eval/nwpu_resisc45", "no_regression")].passed
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    artifacts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {"evaluation/paper_tables.md", "evaluation/table_II.json", "evaluation/pictures"} <= artifacts
    pictures = {a.path.rsplit("/", 1)[1] for a in client.list_artifacts(run_id, "evaluation/pictures")}
    assert {"nwpu_resisc45_confusion_matrix.png", "dior_rsvg_gallery.png"} <= pictures
    assert "eval/nwpu_resisc45/Top-1" in client.get_run(run_id).data.metrics
    version = client.get_model_version("earthgpt-eval-test", "1")
    assert "Evaluation: nwpu_resisc45 Top-1" in version.description
    assert "eval/dior_rsvg/Pr_at_0.5" in version.tags
    promoted = meta["paper_tables"]["promoted_to_champion"].value
    assert promoted == checks[("paper_tables", "every_benchmark_beats_its_baseline")].passed


def test_held_out_wordings_are_reported_but_neither_gate_the_champion_nor_fail_on_unusable_answers(world):
    _, resources, _ = world
    meta, checks = _materialize(resources, (*NAMES, "nwpu_resisc45_reworded"))
    assert "(held-out wording)** | ours |" in meta["paper_tables"]["tables"].value
    reworded = checks[("eval/nwpu_resisc45_reworded", "parse_failures_under_limit")]
    assert reworded.severity == dg.AssetCheckSeverity.WARN
    assert checks[("eval/nwpu_resisc45", "parse_failures_under_limit")].severity == dg.AssetCheckSeverity.ERROR
    gate = checks[("paper_tables", "every_benchmark_beats_its_baseline")]
    assert "nwpu_resisc45_reworded" not in gate.metadata["failed"].value
