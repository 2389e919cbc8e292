"""Run one training stage end to end: Lightning Trainer, checkpoints and resume, MLflow tracking.

One MLflow run per stage: parameters, per-step loss and learning rate, system metrics, checkpoints and the
saved model folder as artifacts, tags for the data version, git commit and Dagster run id. Checkpoints are
written every `checkpoint_every` steps and at the end (`last.ckpt`); a run started again with the same
output folder resumes from `last.ckpt` (model, optimiser, schedule and data position), so a killed run
loses at most the steps since the last checkpoint.

Which run a checkpoint folder belongs to: `StageConfig.run_key` (see `run_key`: the stage's settings, its
data and the weights it starts from). With a key, only checkpoints of the same key are resumed; another
key's folder is moved to `checkpoints.superseded` (one generation kept) and training starts afresh, so a
pipeline that changed its data, settings or the previous stage retrains instead of resuming a stale run.
Code is not part of the key (the git commit is a tag of the MLflow run): delete the folder to retrain
after a code change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
import torch
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
    run_key: str | None = None  # see run_key(); None: resume any last.ckpt (another data position is refused)


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
    resumed: bool = False  # continued from a checkpoint of the same run (see StageConfig.run_key)


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


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every tensor of the model's state_dict (names and bytes, any dtype): ~7 s for 7B in bf16."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def run_key(config: StageConfig, model: torch.nn.Module, data: Mapping[str, Any]) -> str:
    """Identity of a stage run: what decides its result. The optimiser and trainer settings, the seed, the
    data (`data`: the caller's description, e.g. the data config and the corpus content hash), the model's
    config and its starting weights. Not the output folder or the checkpoint interval."""
    settings = _flat_params(config) | {"checkpoint_every": None}
    architecture = getattr(model, "config", None)
    identity = {"settings": _stable(settings), "data": _stable(data), "weights": weights_digest(model),
                "model": _stable(dataclasses.asdict(architecture)) if dataclasses.is_dataclass(architecture) else None}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _stable(value: Any) -> Any:
    """JSON-able and the same in every process: objects (a DeepSpeedStrategy) by class and `config`."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return {"class": f"{type(value).__module__}.{type(value).__qualname__}",
            "config": _stable(getattr(value, "config", None))}


def _checkpoint_to_resume(checkpoints: Path, key: str | None) -> Path | None:
    """last.ckpt if it belongs to this run. Checkpoints of another run key (or of no recorded key, when this
    run has one) are moved to `checkpoints.superseded`, replacing an older generation there. The key of the
    checkpoints is kept beside them, in `checkpoints.run_key` (Lightning wants the folder to itself). Only
    rank 0 moves and writes (torchrun starts every rank here); the others decide the same way, read-only."""
    last = checkpoints / "last.ckpt"
    key_file = checkpoints.with_name("checkpoints.run_key")
    writer = int(os.environ.get("RANK", "0")) == 0
    if key is None:  # an unkeyed run: what it writes belongs to no key
        if writer:
            key_file.unlink(missing_ok=True)
        return last if last.exists() else None
    saved = key_file.read_text().strip() if key_file.exists() else None
    if last.exists() and saved == key:
        return last
    if writer:
        if checkpoints.exists() and any(checkpoints.iterdir()):
            superseded = checkpoints.with_name("checkpoints.superseded")
            shutil.rmtree(superseded, ignore_errors=True)
            checkpoints.rename(superseded)
            (superseded / "superseded_run_key").write_text(f"{saved or 'none'}\n")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key + "\n")
    return None


def train_stage(model: EarthGPT, tokenizer, datamodule: L.LightningDataModule, config: StageConfig,
                tracking: TrackingConfig, callbacks: list[Callback] | None = None) -> StageResult:
    """Train `model` for `config.optim.max_steps` steps of `config.stage`; resume if a checkpoint of this
    run exists (see the module notes)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    out = Path(config.out_dir)
    checkpoints = out / "checkpoints"
    resume = _checkpoint_to_resume(checkpoints, config.run_key)
    module = EarthGPTModule(model, config.stage, config.optim)
    history = LossHistory()
    tags = {"stage": config.stage, "git_commit": git_commit(), "run_key": config.run_key or "none",
            "resumed": str(resume is not None).lower(), **tracking.tags}
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
        trainer.fit(module, datamodule=datamodule, ckpt_path=None if resume is None else str(resume))
        model_dir = save_model(model, tokenizer, out / "model")
        mlflow.log_artifacts(str(checkpoints), artifact_path="checkpoints")
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return StageResult(run.info.run_id, model_dir, checkpoints, history.losses, module.trainable_names,
                       trainer.global_step, resumed=resume is not None)


def losses_fell(losses: list[float], window: int = 10) -> bool:
    """Mean of the last `window` losses below the mean of the first `window`."""
    if len(losses) < 2 * window:
        window = max(1, len(losses) // 4)
    return sum(losses[-window:]) / window < sum(losses[:window]) / window


def all_finite(losses: list[float]) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses)
