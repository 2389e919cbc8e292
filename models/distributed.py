"""Multi-GPU training with DeepSpeed ZeRO, and its checkpoints turned back into one model folder.

- `DistributedConfig`: the typed `distributed:` block of params.yaml.
- `deepspeed_config`: the DeepSpeed JSON config. It holds no "optimizer" / "scheduler" sections: AdamW and
  the warmup-cosine schedule stay in the LightningModule (torch), and DeepSpeed wraps the client optimizer.
- `lightning_strategy` / `trainer_kwargs`: what `L.Trainer` receives. Lightning's DeepSpeedStrategy runs on
  CUDA only; on CPU the same LightningModule runs with the default strategy. Under torchrun (WORLD_SIZE > 1:
  `processes` per machine, started by models.launch) the ranks train as one: DeepSpeed, or Lightning's DDP
  (NCCL on GPUs, gloo on CPUs).
- `convert_zero_checkpoint`: a ZeRO-2/3 checkpoint folder (Lightning's or `engine.save_checkpoint`'s) ->
  the `models.io` folder (safetensors, no pickle), loadable with `models.io.load_model`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy, Strategy
from transformers import PreTrainedTokenizerFast

from models.adapters import POLICIES, STAGE3
from models.earthgpt import EarthGPT
from models.io import load_model, save_model

log = logging.getLogger(__name__)

StrategyName = Literal["auto", "deepspeed"]
PrecisionName = Literal["bf16-mixed", "32-true"]
ZERO_STAGES = (2, 3)

BUCKET_SIZE = 200_000_000  # elements per gradient reduce / all-gather bucket (Lightning's default)
STAGE3_PREFETCH_BUCKET_SIZE = 50_000_000  # elements of parameters fetched ahead of use (DeepSpeed's default)
STAGE3_PERSISTENCE_THRESHOLD = 100_000  # parameters smaller than this stay whole on every rank (alpha/beta, norms)


@dataclass(frozen=True)
class DistributedConfig:
    """How training is spread over devices. `gradient_clip` is a max global L2 norm; 0 disables clipping."""

    strategy: StrategyName = "auto"
    zero_stage: int = 2
    offload_optimizer: bool = False  # optimizer states and the step live in CPU memory
    precision: PrecisionName = "bf16-mixed"  # on GPU; CPU always trains in 32-true
    gradient_accumulation: int = 1
    gradient_clip: float = 1.0
    micro_batch_size: int = 1  # samples per device per forward
    activation_checkpointing: bool = False  # recompute each LLaMA block in the backward pass
    processes: int = 1  # training processes per machine (one per GPU); > 1: launched by torchrun (models.launch)
    cpu_threads: int | None = None  # torch's CPU threads, fixed for the same numbers on every machine (numerics.py)

    def __post_init__(self) -> None:
        _require(self.strategy in get_args(StrategyName), f"strategy {self.strategy!r} not in {get_args(StrategyName)}")
        _require(self.zero_stage in ZERO_STAGES, f"zero_stage {self.zero_stage!r} not in {ZERO_STAGES}")
        _require(self.precision in get_args(PrecisionName),
                 f"precision {self.precision!r} not in {get_args(PrecisionName)}")
        _require(self.gradient_accumulation >= 1, f"gradient_accumulation {self.gradient_accumulation} < 1")
        _require(self.micro_batch_size >= 1, f"micro_batch_size {self.micro_batch_size} < 1")
        _require(self.gradient_clip >= 0, f"gradient_clip {self.gradient_clip} < 0")
        _require(self.processes >= 1, f"processes {self.processes} < 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistributedConfig:
        """From the params.yaml block; unknown keys are an error (a typo must not fall back to a default)."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        _require(not unknown, f"unknown distributed settings: {unknown}")
        return cls(**data)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --- DeepSpeed config ------------------------------------------------------------------------------------
def deepspeed_config(cfg: DistributedConfig, *, for_lightning: bool = False) -> dict[str, Any]:
    """The DeepSpeed config dict. No "optimizer"/"scheduler": the torch AdamW is passed as the client optimizer.

    `for_lightning` leaves out `gradient_accumulation_steps`: Lightning's DeepSpeedStrategy refuses it and
    fills it from `Trainer(accumulate_grad_batches=...)`.
    """
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "gradient_clipping": cfg.gradient_clip,
        "bf16": {"enabled": cfg.precision == "bf16-mixed"},
        "zero_optimization": _zero_section(cfg),
        "zero_allow_untested_optimizer": True,  # any torch optimizer (Lightning's default too)
    }
    if cfg.offload_optimizer:
        # DeepSpeed refuses a client optimizer with offload unless told: the torch AdamW then steps on the CPU
        # (cheap for stage 3's alpha/beta; DeepSpeedCPUAdam would be faster but needs a compiled op)
        config["zero_force_ds_cpu_optimizer"] = False
    if for_lightning:
        del config["gradient_accumulation_steps"]
    return config


def _zero_section(cfg: DistributedConfig) -> dict[str, Any]:
    """`zero_optimization`: stage 2 shards gradients and optimizer states, stage 3 the parameters too."""
    section: dict[str, Any] = {
        "stage": cfg.zero_stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": BUCKET_SIZE,
    }
    if cfg.zero_stage == 2:
        section |= {"allgather_partitions": True, "allgather_bucket_size": BUCKET_SIZE, "reduce_scatter": True}
    else:
        section |= {"stage3_prefetch_bucket_size": STAGE3_PREFETCH_BUCKET_SIZE,
                    "stage3_param_persistence_threshold": STAGE3_PERSISTENCE_THRESHOLD}
    if cfg.offload_optimizer:
        section["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    return section


# --- Lightning ---------------------------------------------------------------------------------------------
def world() -> tuple[int, int]:
    """(processes on this machine, machines) of this training run: torchrun's environment, else (1, 1)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
    return local, max(1, size // local)


def lightning_strategy(cfg: DistributedConfig, *, allow_cpu_fallback: bool = False) -> Strategy | str:
    """DeepSpeedStrategy for "deepspeed" on CUDA; else Lightning's DDP when torchrun started several ranks
    (gloo on CPUs), else "auto". Without CUDA, "deepspeed" is an error unless `allow_cpu_fallback` (then as
    "auto", with a warning)."""
    if cfg.strategy == "deepspeed":
        if torch.cuda.is_available():
            return DeepSpeedStrategy(config=deepspeed_config(cfg, for_lightning=True))
        if not allow_cpu_fallback:
            raise RuntimeError("strategy 'deepspeed' needs CUDA GPUs (Lightning's DeepSpeedStrategy rejects the CPU "
                               "accelerator); use strategy 'auto' or pass allow_cpu_fallback=True")
        log.warning("strategy 'deepspeed' requested without CUDA: training with Lightning's default strategy on CPU")
    if world() != (1, 1):
        return DDPStrategy(process_group_backend="nccl" if torch.cuda.is_available() else "gloo")
    return "auto"


def trainer_kwargs(cfg: DistributedConfig, *, allow_cpu_fallback: bool = False) -> dict[str, Any]:
    """`L.Trainer` keyword arguments: accelerator, devices and machines (this process alone, or torchrun's
    ranks), strategy, precision, accumulate_grad_batches, gradient_clip_val.

    With DeepSpeed the engine clips (the config's `gradient_clipping`) and Lightning's own clipping is a
    no-op, so `gradient_clip_val` stays None there rather than a second, ignored source of truth.
    """
    strategy = lightning_strategy(cfg, allow_cpu_fallback=allow_cpu_fallback)
    lightning_clips = not isinstance(strategy, DeepSpeedStrategy) and cfg.gradient_clip > 0
    devices, nodes = world()
    return {
        "accelerator": "gpu" if torch.cuda.is_available() else "cpu",
        "devices": devices,
        "num_nodes": nodes,
        "strategy": strategy,
        "precision": cfg.precision if torch.cuda.is_available() else "32-true",
        "accumulate_grad_batches": cfg.gradient_accumulation,
        "gradient_clip_val": cfg.gradient_clip if lightning_clips else None,
    }


def apply_activation_checkpointing(model: EarthGPT, cfg: DistributedConfig) -> bool:
    """Recompute every LLaMA block in the backward pass when `cfg.activation_checkpointing` (non-reentrant
    torch checkpointing, which works with frozen inputs and ZeRO-3). Returns whether it is on."""
    if cfg.activation_checkpointing:
        model.llm.activation_checkpointing_enable()
    return cfg.activation_checkpointing


# --- ZeRO checkpoint -> model folder ---------------------------------------------------------------------
def convert_zero_checkpoint(checkpoint_dir: str | Path,
                            template: str | Path | tuple[EarthGPT, PreTrainedTokenizerFast],
                            out_folder: str | Path, *, tag: str | None = None) -> Path:
    """Consolidate a ZeRO-2/3 checkpoint into a `models.io` folder; returns the folder.

    checkpoint_dir: the folder holding `latest` and the tag folder (a Lightning `.ckpt` directory, or
        `engine.save_checkpoint`'s `save_dir`); `tag` overrides `latest`.
    template: a saved model folder, or (model, tokenizer), giving the architecture, config and tokenizer.
        Its tensors are overwritten in place with the checkpoint's (fp32 master weights, cast to the
        template's dtypes). A stage-2 template is raised to stage 3 when the checkpoint holds adapters.
        Frozen tensors a checkpoint left out (`exclude_frozen_parameters=True`) keep the template's values;
        a missing trainable tensor is an error.
    """
    # imported here: deepspeed takes seconds to import and only conversion needs it on CPU
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    model, tokenizer = load_model(template) if isinstance(template, str | Path) else template
    state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint_dir), tag=tag)
    if model.stage == "stage2" and _has_stage3_adapters(state):
        model.set_stage("stage3")
    state = _strip_wrapper_prefix(state, set(model.state_dict()))
    _load_checkpoint_state(model, state)
    return save_model(model, tokenizer, out_folder)


def _has_stage3_adapters(names: Iterable[str]) -> bool:
    """Whether any name (under whatever wrapper prefix) is a stage-3 alpha / beta."""
    patterns = [re.compile(rf"(?:^|\.){pattern}$") for pattern in STAGE3.patterns]
    return any(p.search(name) for name in names for p in patterns)


def _strip_wrapper_prefix(state: dict[str, torch.Tensor], model_names: set[str]) -> dict[str, torch.Tensor]:
    """Drop the names of the modules around EarthGPT: Lightning saves the LightningModule's names
    (`model.llm...`; `_forward_module.model.llm...` before Lightning 2.1), a bare engine EarthGPT's own."""
    prefix = _wrapper_prefix(state, model_names)
    return {name.removeprefix(prefix): tensor for name, tensor in state.items()}


def _wrapper_prefix(names: Iterable[str], model_names: set[str]) -> str:
    """The shortest dotted prefix that turns a checkpoint name into a model name."""
    for name in names:
        for start in (0, *(i + 1 for i, char in enumerate(name) if char == ".")):
            if name[start:] in model_names:
                return name[:start]
    raise ValueError("no tensor of the checkpoint belongs to the template model")


def _load_checkpoint_state(model: EarthGPT, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` into `model`: every name must be the model's, every trainable tensor present."""
    expected = set(model.state_dict())
    unexpected = sorted(set(state) - expected)
    if unexpected:
        raise ValueError(f"{len(unexpected)} checkpoint tensors are not in the template ({model.stage}): "
                         f"{unexpected[:5]}")
    missing = sorted(expected - set(state))
    policy = POLICIES[model.stage]
    missing_trainable = [name for name in missing if policy.matches(name)]
    if missing_trainable:
        raise ValueError(f"{len(missing_trainable)} trainable tensors missing from the checkpoint: "
                         f"{missing_trainable[:5]}")
    if missing:
        log.info("%d frozen tensors not in the checkpoint: kept from the template", len(missing))
    model.load_state_dict(state, strict=False)
