"""Lightning training of both stages (paper Sec. III-C, III-D, V-A).

Optimisation as in the paper: AdamW with betas (0.9, 0.95), peak learning rate 2e-5 for the `paper`
preset (the `tiny` preset uses 3e-3: a 0.9 M-parameter model trained from scratch for minutes needs a
far larger step), linear warmup then cosine decay to a minimum of 0. Only the stage policy's tensors
reach the optimiser. The same LightningModule runs with DeepSpeed on GPUs and the default strategy on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch

from models.adapters import trainable_parameters
from models.earthgpt import EarthGPT


@dataclass
class OptimConfig:
    lr: float = 2e-5
    min_lr: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    warmup_steps: int = 100
    max_steps: int = 10_000


def warmup_cosine(step: int, config: OptimConfig) -> float:
    """Learning-rate multiplier of the peak at `step`: linear warmup, then cosine to min_lr."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    floor = config.min_lr / config.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class EarthGPTModule(L.LightningModule):
    """Wraps EarthGPT for one stage. Batches: pixels (B, 3, S, S), input_ids / attention_mask / labels (B, T)."""

    def __init__(self, model: EarthGPT, stage: str, optim: OptimConfig):
        super().__init__()
        self.model = model
        self.stage = stage
        self.optim = optim
        self.trainable_names = model.set_stage(stage)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The stage's loss: answers given image and prompt; for "text", every token of text-only batches."""
        if self.stage == "text":
            return self.model.text_loss(batch["input_ids"], batch["attention_mask"])
        return self.model(batch["pixels"], batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def configure_optimizers(self):
        optimiser = torch.optim.AdamW(trainable_parameters(self.model), lr=self.optim.lr, betas=self.optim.betas,
                                      weight_decay=self.optim.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: warmup_cosine(step, self.optim))
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
