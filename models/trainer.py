"""Run one training stage end to end: Lightning Trainer, checkpoints and resume, MLflow tracking.

One MLflow run per stage: parameters, per-step loss and learning rate, system metrics, checkpoints and the
saved model folder as artifacts, tags for the data version, git commit and Dagster run id. Checkpoints are
written every `checkpoint_every` steps and at the end (`last.ckpt`); a run started again with the same
output folder resumes from `last.ckpt` (model, optimiser, schedule and data position), so a killed run
loses at most the steps since the last checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from models.earthgpt import EarthGPT
from models.io import save_model
from models.training import EarthGPTModule, OptimConfig


@dataclass
class StageConfig:
    stage: str  # stage2 | stage3
    out_dir: str  # checkpoints/ and model/ are written here
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_every: int = 50
    val_every: int | None = None  # validation every N steps (None: only when the datamodule has val data)
    seed: int = 0
    trainer: dict[str, Any] = field(default_factory=dict)  # extra L.Trainer kwargs (strategy, precision, ...)


@dataclass
class TrackingConfig:
    uri: str  # e.g. sqlite:///.state/mlflow/mlflow.db
    experiment: str = "earthgpt"
    artifact_location: str | None = None  # for a new experiment; None: MLflow's default next to the store
    tags: dict[str, str] = field(default_factory=dict)  # data version, dagster run id, ...


@dataclass
class StageResult:
    run_id: str
    model_dir: Path
    checkpoint_dir: Path
    losses: list[float]
    trainable: list[str]
    steps: int


class LossHistory(Callback):
    """Keeps every training loss (for checks and the loss-curve metadata)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _experiment_id(tracking: TrackingConfig) -> str:
    mlflow.set_tracking_uri(tracking.uri)
    existing = mlflow.get_experiment_by_name(tracking.experiment)
    if existing is not None:
        return existing.experiment_id
    return mlflow.create_experiment(tracking.experiment, artifact_location=tracking.artifact_location)


def _flat_params(config: StageConfig) -> dict[str, Any]:
    params = {f"optim.{k}": v for k, v in dataclasses.asdict(config.optim).items()}
    params |= {f"trainer.{k}": v for k, v in config.trainer.items()}
    return params | {"stage": config.stage, "checkpoint_every": config.checkpoint_every, "seed": config.seed}


def train_stage(model: EarthGPT, tokenizer, datamodule: L.LightningDataModule, config: StageConfig,
                tracking: TrackingConfig, callbacks: list[Callback] | None = None) -> StageResult:
    """Train `model` for `config.optim.max_steps` steps of `config.stage`; resume if a checkpoint exists."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    out = Path(config.out_dir)
    checkpoints = out / "checkpoints"
    resume = checkpoints / "last.ckpt"
    module = EarthGPTModule(model, config.stage, config.optim)
    history = LossHistory()
    tags = {"stage": config.stage, "git_commit": git_commit(), **tracking.tags}
    experiment_id = _experiment_id(tracking)
    with mlflow.start_run(experiment_id=experiment_id, run_name=config.stage, tags=tags,
                          log_system_metrics=True) as run:
        mlflow.log_params(_flat_params(config) | {"trainable_tensors": len(module.trainable_names),
                                                  "trainable_parameters": sum(
                                                      p.numel() for p in model.parameters() if p.requires_grad)})
        logger = MLFlowLogger(tracking_uri=tracking.uri, run_id=run.info.run_id)
        trainer = L.Trainer(
            max_steps=config.optim.max_steps, logger=logger, log_every_n_steps=1, default_root_dir=str(out),
            callbacks=[ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=config.checkpoint_every,
                                       save_last=True, save_top_k=-1, filename="step-{step}"), history,
                       *(callbacks or [])],
            enable_model_summary=False, deterministic=True, num_sanity_val_steps=0,
            val_check_interval=config.val_every, check_val_every_n_epoch=None if config.val_every else 1,
            **({"accelerator": "cpu"} | config.trainer),
        )
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume.exists() else None)
        model_dir = save_model(model, tokenizer, out / "model")
        mlflow.log_artifacts(str(checkpoints), artifact_path="checkpoints")
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return StageResult(run.info.run_id, model_dir, checkpoints, history.losses, module.trainable_names,
                       trainer.global_step)


def losses_fell(losses: list[float], window: int = 10) -> bool:
    """Mean of the last `window` losses below the mean of the first `window`."""
    if len(losses) < 2 * window:
        window = max(1, len(losses) // 4)
    return sum(losses[-window:]) / window < sum(losses[:window]) / window


def all_finite(losses: list[float]) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses)
