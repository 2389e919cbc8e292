"""One training stage across processes: the program torchrun starts once per rank.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m models.launch            (from Dagster)
    python -m torch.distributed.run --standalone --nproc_per_node 2 -m models.launch CONTEXT.json  (by hand)

Every rank runs `models.stages.run_stage` with the same settings; Lightning's DDP (or DeepSpeed) makes the
ranks one training run: each rank reads its own share of the batches (models.data), gradients are averaged,
only rank 0 tracks in MLflow and writes the model (models.trainer).

Launched by Dagster (the training assets, through a Pipes subprocess client; the Kubernetes Pipes client or
a PyTorchJob on a cluster, see docs/scale-out.md), the stage and its TrainingContext arrive as Pipes
extras, and rank 0 reports back through Pipes: a log line and a custom message every `report_every` steps
(step, loss, learning rate) and at each checkpoint, then the stage's outcome (what `run_stage` returns in
one process, less the model object). By hand, CONTEXT.json holds {"stage": ..., "context": ...}
(`context_document`) and the outcome is printed as JSON.

Pipes here is `dagster_pipes`, the protocol's dependency-free package: nothing of Dagster is imported.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.callbacks import Callback

from mmrs.settings import from_mapping, to_mapping
from models.distributed import DistributedConfig
from models.layout import ModelLayout
from models.stages import StageOutcome, TrainingContext, TrainSettings, run_stage
from models.tracking import TrackingSettings
from models.trainer import lead_rank

OUTCOME = "outcome"  # the custom message key of the final report


def context_document(ctx: TrainingContext) -> dict[str, Any]:
    """A TrainingContext as plain JSON-able data (context_from_document's inverse)."""
    return {"train": to_mapping(ctx.train), "layout": to_mapping(ctx.layout), "mmrs_out": ctx.mmrs_out,
            "tracking": to_mapping(ctx.tracking), "distributed": to_mapping(ctx.distributed),
            "tags": dict(ctx.tags), "document": None if ctx.document is None else dict(ctx.document)}


def context_from_document(data: Mapping[str, Any]) -> TrainingContext:
    return TrainingContext(from_mapping(TrainSettings, data["train"], "train"), ModelLayout(**data["layout"]),
                           data["mmrs_out"], from_mapping(TrackingSettings, data["tracking"], "tracking"),
                           from_mapping(DistributedConfig, data["distributed"], "distributed"),
                           tags=dict(data["tags"]), document=data.get("document"))


class PipesProgress(Callback):
    """Rank 0's reports: progress and losses every `every` optimiser steps, and each checkpoint saved."""

    def __init__(self, pipes, stage: str, every: int):
        self.pipes, self.stage, self.every = pipes, stage, max(1, every)
        self._reported = self._checkpointed = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._reported or (step % self.every and step != trainer.max_steps):
            return
        self._reported = step
        loss = float((outputs["loss"] if isinstance(outputs, dict) else outputs).detach())
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        self.pipes.log.info(f"{self.stage}: step {step}/{trainer.max_steps}, loss {loss:.4f}, lr {lr:.3g}, "
                            f"{trainer.world_size} ranks")
        self.pipes.report_custom_message({"step": step, "max_steps": trainer.max_steps, "loss": loss, "lr": lr})

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.global_step == self._checkpointed:  # step-N.ckpt and last.ckpt: one checkpoint
            return
        self._checkpointed = trainer.global_step
        self.pipes.log.info(f"{self.stage}: checkpoint at step {trainer.global_step}")
        self.pipes.report_custom_message({"checkpoint_step": trainer.global_step})


def _extras_without_messages() -> dict[str, Any]:
    """The Pipes extras, read by a rank that does not report (only rank 0 writes messages)."""
    from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader

    params = PipesEnvVarParamsLoader()
    with PipesDefaultContextLoader().load_context(params.load_context_params()) as data:
        return dict(data["extras"])


def main(argv: list[str] | None = None) -> int:
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    argv = sys.argv[1:] if argv is None else argv
    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():  # by hand: the job in a JSON file
        with open(argv[0], encoding="utf-8") as f:
            job = json.load(f)
        ctx = context_from_document(job["context"])
        outcome = run_stage(ctx, job["stage"])
        if lead_rank():
            print(json.dumps(outcome.to_dict()))
        return 0
    if not lead_rank():
        job = _extras_without_messages()
        run_stage(context_from_document(job["context"]), job["stage"])
        return 0
    with open_dagster_pipes() as pipes:
        job = pipes.extras
        ctx = context_from_document(job["context"])
        progress = PipesProgress(pipes, job["stage"], job.get("report_every", 10))
        outcome: StageOutcome = run_stage(ctx, job["stage"], callbacks=[progress])
        pipes.log.info(f"{job['stage']}: {'reused the completed run' if outcome.reused else 'trained'} "
                       f"{outcome.run_id}, {outcome.steps} steps")
        pipes.report_custom_message({OUTCOME: outcome.to_dict() | {"reused": outcome.reused}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
