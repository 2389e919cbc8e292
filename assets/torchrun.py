"""A training stage on several processes of this machine: torchrun started through Dagster Pipes.

`compute.processes` > 1 (one per GPU; on CPU, gloo processes) makes a training asset launch
`python -m torch.distributed.run --standalone --nproc_per_node N -m models.launch` with a Pipes subprocess
client instead of training in its own process. The ranks train as one (Lightning DDP, or DeepSpeed on GPUs);
rank 0 streams progress, losses and checkpoints into the run's event log as they happen and ends with the
stage's outcome, from which the asset builds the same metadata, checks and registration as an in-process
run. On a cluster the step pod (k8s executor, GPU node selector) runs the same command; runs across
machines go through a PyTorchJob (docs/scale-out.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg

from models.launch import OUTCOME, context_document
from models.layout import Stage
from models.stages import StageOutcome, TrainingContext

REPO = Path(__file__).resolve().parents[1]


def torchrun_command(processes: int) -> list[str]:
    """torchrun on this machine: `processes` ranks, a local rendezvous."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "models.launch"]


def train_across_processes(context: dg.AssetExecutionContext, ctx: TrainingContext, stage: Stage, processes: int,
                           report_every: int = 10) -> tuple[StageOutcome, list[dict]]:
    """Run `stage` on `processes` ranks; (its outcome, the progress messages rank 0 reported)."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # one thread per rank unless told
    invocation = dg.PipesSubprocessClient(cwd=str(REPO), env=env).run(
        context=context, command=torchrun_command(processes),
        extras={"stage": stage, "context": context_document(ctx), "report_every": report_every})
    messages = [m for m in invocation.get_custom_messages() if isinstance(m, dict)]
    outcomes = [m[OUTCOME] for m in messages if OUTCOME in m]
    if not outcomes:
        raise dg.Failure(f"torchrun's rank 0 reported no outcome for {stage}", allow_retries=False)
    return StageOutcome.from_dict(outcomes[-1]), [m for m in messages if OUTCOME not in m]
