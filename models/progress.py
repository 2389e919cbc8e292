"""Training progress where people look: a line in the log every N steps (the Dagster run log, CI output,
`earthgpt train`) and a tqdm bar when stderr is a terminal.

    stage3 step 120/600 (20%) loss 1.2345 lr 9.12e-03 | 41.8 samples/s | 0:01:23 elapsed, 0:05:32 left
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

import lightning as L
from tqdm import tqdm

log = logging.getLogger("earthgpt.training")


class TrainingProgress(L.Callback):
    """Logs step, loss, learning rate, samples/s and the time left every `every` steps and at the end."""

    def __init__(self, stage: str, every: int = 25, bar: bool | None = None):
        self.stage, self.every = stage, max(1, every)
        self.bar_enabled = sys.stderr.isatty() if bar is None else bar
        self.bar: tqdm | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start, self.first_step, self.samples = time.perf_counter(), trainer.global_step, 0
        self.bar = tqdm(total=trainer.max_steps, initial=trainer.global_step, desc=self.stage, unit="step",
                        disable=not self.bar_enabled, dynamic_ncols=True)
        if trainer.global_step:
            log.info("%s resumed at step %d of %d", self.stage, trainer.global_step, trainer.max_steps)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx):
        self.samples += len(batch["input_ids"])
        step, total = trainer.global_step, trainer.max_steps
        loss = float((outputs["loss"] if isinstance(outputs, dict) else outputs).detach())
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}")
        if step % self.every == 0 or step == total:
            elapsed = time.perf_counter() - self.start
            done = max(1, step - self.first_step)
            left = elapsed / done * (total - step)
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            log.info("%s step %d/%d (%d%%) loss %.4f lr %.2e | %.1f samples/s | %s elapsed, %s left", self.stage,
                     step, total, 100 * step // total, loss, lr, self.samples / max(elapsed, 1e-9),
                     timedelta(seconds=round(elapsed)), timedelta(seconds=round(left)))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "val/loss" in trainer.callback_metrics:
            log.info("%s step %d validation loss %.4f", self.stage, trainer.global_step,
                     float(trainer.callback_metrics["val/loss"]))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()


def loss_curve_png(losses: list[float], val_losses: list[tuple[int, float]], title: str) -> bytes:
    """The training loss per step (and the validation loss at its steps) as a PNG with axes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, linewidth=1, label="training loss")
    if val_losses:
        axes.plot([s for s, _ in val_losses], [v for _, v in val_losses], "o-", label="validation loss (held out)")
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("cross-entropy (answer tokens)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
