"""Training-loop overhead: our Lightning module + Trainer against a plain PyTorch loop, same model, same
batches (target: <= 1.10x the plain loop's time), and the padding fraction with and without length grouping.

    .venv/bin/python bench/train.py [--steps 30] [--batch-size 8] [--stage stage3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from padding import NAMES, build_corpus  # noqa: E402  (bench/ is a folder of scripts, not a package)

from mmrs.shards import iter_source_records  # noqa: E402
from models.adapters import trainable_parameters  # noqa: E402
from models.config import tiny  # noqa: E402
from models.data import DataConfig, MMRSDataModule  # noqa: E402
from models.earthgpt import EarthGPT  # noqa: E402
from models.tokenization import train_bpe_tokenizer  # noqa: E402
from models.training import EarthGPTModule, OptimConfig  # noqa: E402


def batches(manifest: str, tokenizer, batch_size: int, n: int, group: bool) -> tuple[list[dict], float]:
    datamodule = MMRSDataModule(DataConfig(manifest=manifest, batch_size=batch_size, group_by_length=group),
                                tiny(), tokenizer)
    datamodule.setup("fit")
    out = []
    for batch in datamodule.train_dataloader():
        out.append({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
        if len(out) == n:
            break
    return out, datamodule.stats.padding_fraction


def plain_loop(model: EarthGPT, data: list[dict], stage: str) -> float:
    model.set_stage(stage)
    model.train()
    optimiser = torch.optim.AdamW(trainable_parameters(model), lr=1e-4, betas=(0.9, 0.95))
    start = time.perf_counter()
    for batch in data:
        loss = model(batch["pixels"], batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


class _StepClock(L.Callback):
    """Time from the first batch to the end of training: the loop itself, not Trainer set-up."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def lightning_loop(model: EarthGPT, data: list[dict], stage: str) -> float:
    module = EarthGPTModule(model, stage, OptimConfig(lr=1e-4, warmup_steps=1, max_steps=len(data)))
    clock = _StepClock()
    trainer = L.Trainer(max_steps=len(data), accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[clock])
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    return clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--stage", default="stage3", choices=["stage2", "stage3"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_corpus(Path(tmp))
        texts = [t["value"] for name in NAMES for r in iter_source_records(str(Path(tmp) / "out" / name))
                 for t in r["conversations"]]
        tokenizer = train_bpe_tokenizer(texts, vocab_size=tiny().llm.vocab_size)
        plain_batches, plain_padding = batches(manifest, tokenizer, args.batch_size, args.steps, group=False)
        data, grouped_padding = batches(manifest, tokenizer, args.batch_size, args.steps, group=True)
    tokens = sum(int(b["attention_mask"].sum()) + b["pixels"].shape[0] * tiny().num_visual_tokens for b in data)
    times = {}
    for name, loop in (("plain", plain_loop), ("lightning", lightning_loop), ("plain again", plain_loop)):
        torch.manual_seed(0)
        model = EarthGPT(tiny())
        loop(model, data[:3], args.stage)  # warm-up
        times[name] = loop(model, data, args.stage)
    plain = min(times["plain"], times["plain again"])
    print(f"{args.steps} {args.stage} steps, batch {args.batch_size}, {tokens:,} tokens")
    for name, seconds in times.items():
        print(f"  {name:<12} {seconds:6.2f} s  {tokens / seconds:8,.0f} tokens/s")
    print(f"overhead ratio lightning / plain: {times['lightning'] / plain:.3f} (target <= 1.10)")
    print(f"padding fraction: plain order {plain_padding:.1%}, length-grouped {grouped_padding:.1%} "
          f"(first {args.steps} batches)")


if __name__ == "__main__":
    main()
