"""Where training writes, under one root (a local folder or an s3:// prefix); the only place that spells it.

    <root>/tokenizer/                   the tokenizer (tiny: the BPE trained on MMRS text; paper: LLaMA's own)
    <root>/<stage>/checkpoints/         Lightning checkpoints: step-*.ckpt and last.ckpt (under `checkpoint_root`
    <root>/<stage>/checkpoints.run_key  instead, when set) and the run key they belong to
    <root>/<stage>/model/               the saved model folder (models.io)
    <root>/<stage>/run.json             the completed run: key, MLflow run id, steps, losses
    <root>/stage3/registration.json     the MLflow model version registered for the stage-3 model

Stages run in order: text (the tiny preset's stand-in for LLaMA's pretraining) -> stage2 -> stage3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmrs.shards import join

Stage = Literal["text", "stage2", "stage3"]
STAGES: tuple[Stage, ...] = ("text", "stage2", "stage3")


@dataclass(frozen=True)
class ModelLayout:
    root: str
    checkpoint_root: str | None = None  # e.g. a shared filesystem for DeepSpeed when `root` is on S3

    @property
    def tokenizer(self) -> str:
        return join(self.root, "tokenizer")

    def stage(self, stage: Stage) -> str:
        return join(self.root, stage)

    def checkpoints(self, stage: Stage) -> str:
        return join(self.checkpoint_root or self.root, stage, "checkpoints")

    def model(self, stage: Stage) -> str:
        return join(self.root, stage, "model")

    def run_record(self, stage: Stage) -> str:
        return join(self.root, stage, "run.json")

    @property
    def registration(self) -> str:
        return join(self.root, "stage3", "registration.json")

    @property
    def final_model(self) -> str:
        """The model that evaluation and serving use."""
        return self.model("stage3")
