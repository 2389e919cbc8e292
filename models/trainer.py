"""Run one training stage end to end: Lightning Trainer, checkpoints and resume, MLflow tracking.

One MLflow run per stage: parameters, per-step loss and learning rate, system metrics, checkpoints and the
saved model folder as artifacts, tags for the data version, git commit and Dagster run id. Checkpoints are
written every `checkpoint_every` steps and at the end (`last.ckpt`); a run started again with the same
checkpoint folder resumes from the newest complete checkpoint of any kind (`last.ckpt` or a step
checkpoint, by the step it holds: a run killed after writing `step-step=100.ckpt` but before `last.ckpt`
resumes at step 100), with model, optimiser, schedule and data position, so a killed run loses at most the
steps since the last checkpoint. A checkpoint that is cut off (its zip directory unreadable) is passed
over. Folders may be local or on an object store (s3://): Lightning writes and reads checkpoints through
fsspec.

Which run a checkpoint folder belongs to: `StageConfig.run_key` (see `run_key`: the stage's settings, its
data and the weights it starts from). With a key, only checkpoints of the same key are resumed; another
key's folder is moved to `checkpoints.superseded` (one generation kept) and training starts afresh, so a
pipeline that changed its data, settings or the previous stage retrains instead of resuming a stale run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import pickle
import posixpath
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import lightning as L
import mlflow
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from mmrs.storage import is_local_fs
from models.earthgpt import EarthGPT
from models.io import save_model, writable_folder
from models.progress import TrainingProgress
from models.tracking import TrackingSettings, experiment_id, git_commit
from models.training import EarthGPTModule, OptimConfig


@dataclass
class StageConfig:
    stage: str  # text | stage2 | stage3
    checkpoint_dir: str  # Lightning checkpoints, local or s3:// (see models.layout)
    model_dir: str  # where the trained model folder is saved, local or s3://
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_every: int = 50
    val_every: int | None = None  # validation every N steps (None: only when the datamodule has val data)
    seed: int = 0
    trainer: dict[str, Any] = field(default_factory=dict)  # extra L.Trainer kwargs (strategy, precision, ...)
    run_key: str | None = None  # see run_key(); None: resume any last.ckpt (another data position is refused)
    log_every: int = 25  # steps between progress lines in the log (models.progress)


@dataclass
class StageResult:
    run_id: str
    model_dir: str
    checkpoint_dir: str
    losses: list[float]
    trainable: list[str]
    steps: int
    resumed: bool = False  # continued from a checkpoint of the same run (see StageConfig.run_key)
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean held-out loss)


class LossHistory(Callback):
    """Keeps every training loss and each validation loss (for checks and the loss-curve metadata)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.val_losses: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if "val/loss" in trainer.callback_metrics:
            self.val_losses.append((trainer.global_step, float(trainer.callback_metrics["val/loss"])))


def _flat_params(config: StageConfig) -> dict[str, Any]:
    params = {f"optim.{k}": v for k, v in dataclasses.asdict(config.optim).items()}
    params |= {f"trainer.{k}": v for k, v in config.trainer.items()}
    return params | {"stage": config.stage, "checkpoint_every": config.checkpoint_every, "seed": config.seed,
                     "val_every": config.val_every}


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
    settings = _flat_params(config) | {"checkpoint_every": None, "val_every": None}
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


_STEP_IN_NAME = re.compile(r"step=(\d+)")


class _Stub(dict):
    """Stands in for any object of a checkpoint's pickle while only its step is read (takes items, elements
    and state, keeps nothing of them but the items)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def __setstate__(self, state) -> None:
        pass

    def append(self, item) -> None:
        pass

    def extend(self, items) -> None:
        pass


_PLAIN = {("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes",
                                    "bool", "complex", "bytearray")} | {("collections", "OrderedDict")}


class _StepReader(pickle.Unpickler):
    """Unpickles a Lightning checkpoint's `data.pkl` without its tensors and without importing or running
    anything: plain containers are themselves, every other class or function a stub, every tensor storage
    None. Enough to read `global_step`."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PLAIN:
            return super().find_class(module, name)
        return _Stub

    def persistent_load(self, pid):
        return None


def checkpoint_step(fs, path: str) -> int | None:
    """The global step a checkpoint holds, None when it is not a complete checkpoint: its zip directory
    (written last) unreadable, or no step in it. From the file name when it has one (`step-step=100.ckpt`),
    after the zip check; else (`last.ckpt`) from its pickle, read without its tensors."""
    try:
        with fs.open(path, "rb") as f, zipfile.ZipFile(f) as archive:
            named = _STEP_IN_NAME.search(posixpath.basename(path))
            if named:
                return int(named.group(1))
            pickled = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pickled is None:
                return None
            state = _StepReader(archive.open(pickled)).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, KeyError):
        return None
    step = state.get("global_step") if isinstance(state, dict) else None
    return step if isinstance(step, int) else None


def newest_checkpoint(fs, folder: str) -> str | None:
    """The complete checkpoint (`*.ckpt`) of the folder with the highest step; `last.ckpt` on a tie (it is
    written after the step checkpoint of the same save). None when there is none."""
    if not fs.isdir(folder):
        return None
    found = []
    for path in fs.ls(folder, detail=False):
        if path.endswith(".ckpt") and (step := checkpoint_step(fs, path)) is not None:
            found.append((step, posixpath.basename(path) == "last.ckpt", path))
    return max(found)[2] if found else None


def _checkpoint_to_resume(checkpoints: str, key: str | None) -> str | None:
    """The newest complete checkpoint (newest_checkpoint) if it belongs to this run. Checkpoints of another run
    key (or of no recorded key, when this run has one) are moved to `checkpoints.superseded`, replacing an
    older generation there. The key of the checkpoints is kept beside them, in `checkpoints.run_key`
    (Lightning wants the folder to itself). Only rank 0 moves and writes (torchrun starts every rank here);
    the others decide the same way, read-only."""
    fs, folder = fsspec.core.url_to_fs(checkpoints)
    newest = newest_checkpoint(fs, folder)
    key_file = folder.rstrip("/") + ".run_key"
    writer = lead_rank()
    if key is None:  # an unkeyed run: what it writes belongs to no key
        if writer and fs.exists(key_file):
            fs.rm(key_file)
        return _url(checkpoints, newest) if newest else None
    saved = fs.cat_file(key_file).decode().strip() if fs.exists(key_file) else None
    if newest and saved == key:
        return _url(checkpoints, newest)
    if writer:
        if fs.exists(folder) and fs.ls(folder):
            superseded = folder.rstrip("/") + ".superseded"
            if fs.exists(superseded):
                fs.rm(superseded, recursive=True)
            fs.mv(folder, superseded, recursive=True)
            fs.pipe_file(posixpath.join(superseded, "superseded_run_key"), f"{saved or 'none'}\n".encode())
        fs.makedirs(posixpath.dirname(key_file), exist_ok=True)
        fs.pipe_file(key_file, (key + "\n").encode())
    return None


def _url(reference: str, path: str) -> str:
    """`path` of the filesystem of the URL `reference`, as a URL again (a plain path when local)."""
    protocol, sep, _ = reference.partition("://")
    return f"{protocol}://{path}" if sep and protocol != "file" else path


def train_stage(model: EarthGPT, tokenizer, datamodule: L.LightningDataModule, config: StageConfig,
                tracking: TrackingSettings, tags: Mapping[str, str] | None = None,
                callbacks: list[Callback] | None = None,
                on_run_start: Callable[[str], None] | None = None) -> StageResult:
    """Train `model` for `config.optim.max_steps` steps of `config.stage`; resume if a checkpoint of this
    run exists (see the module notes). `on_run_start(run_id)` runs inside the new MLflow run (extra params,
    artifacts, dataset inputs)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    resume = _checkpoint_to_resume(config.checkpoint_dir, config.run_key)
    module = EarthGPTModule(model, config.stage, config.optim)
    history = LossHistory()
    run_tags = {"stage": config.stage, "git_commit": git_commit(), "run_key": config.run_key or "none",
                "resumed": str(resume is not None).lower(), "checkpoints": config.checkpoint_dir, **(tags or {})}
    local_checkpoints = is_local_fs(fsspec.core.url_to_fs(config.checkpoint_dir)[0])
    lead = lead_rank()  # under torchrun only rank 0 tracks in MLflow and saves the model
    tracked = (mlflow.start_run(experiment_id=experiment_id(tracking), run_name=config.stage, tags=run_tags,
                                log_system_metrics=True) if lead else contextlib.nullcontext())
    with tracked as run, tempfile.TemporaryDirectory() as scratch:
        if lead:
            mlflow.log_params(_flat_params(config) | {"trainable_tensors": len(module.trainable_names),
                                                      "trainable_parameters": sum(
                                                          p.numel() for p in model.parameters() if p.requires_grad)})
            if on_run_start is not None:
                on_run_start(run.info.run_id)
        logger = MLFlowLogger(tracking_uri=tracking.uri, run_id=run.info.run_id) if lead else False
        trainer = L.Trainer(
            max_steps=config.optim.max_steps, logger=logger, log_every_n_steps=1,
            default_root_dir=config.checkpoint_dir if local_checkpoints else scratch,
            callbacks=[ModelCheckpoint(dirpath=config.checkpoint_dir, every_n_train_steps=config.checkpoint_every,
                                       save_last=True, save_top_k=-1, filename="step-{step}"), history,
                       TrainingProgress(config.stage, config.log_every), *(callbacks or [])],
            enable_model_summary=False, enable_progress_bar=False, deterministic=True, num_sanity_val_steps=0,
            val_check_interval=config.val_every, check_val_every_n_epoch=None if config.val_every else 1,
            limit_val_batches=None if _validates(datamodule) else 0,
            **({"accelerator": "cpu"} | config.trainer),
        )
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        if lead:
            with writable_folder(config.model_dir) as folder:
                save_model(model, tokenizer, folder)
                mlflow.log_artifacts(str(folder), artifact_path="model")
            if local_checkpoints:
                mlflow.log_artifacts(config.checkpoint_dir, artifact_path="checkpoints")
    return StageResult(run.info.run_id if lead else "", config.model_dir, config.checkpoint_dir, history.losses,
                       module.trainable_names, trainer.global_step, resumed=resume is not None,
                       val_losses=history.val_losses)


def lead_rank() -> bool:
    """Whether this process is the one that writes (rank 0 of a torchrun launch, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def _validates(datamodule: L.LightningDataModule) -> bool:
    """Whether the data module has validation data (else Lightning is told to run no validation loop)."""
    return bool(getattr(datamodule, "validates", True))


def losses_fell(losses: list[float], window: int = 10) -> bool:
    """Mean of the last `window` losses below the mean of the first `window`."""
    if len(losses) < 2 * window:
        window = max(1, len(losses) // 4)
    return sum(losses[-window:]) / window < sum(losses[:window]) / window


def all_finite(losses: list[float]) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses)
