"""Tiny-preset model throughput on CPU.

- training: forward + backward tokens/s (visual + text tokens) under the stage-2 and stage-3 policies;
- generation: new tokens/s with and without the KV cache, and their ratio.

    .venv/bin/python bench/model.py [--batch 8] [--text 128] [--new 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from models.adapters import trainable_parameters
from models.config import tiny
from models.earthgpt import EarthGPT


def _batch(model: EarthGPT, batch: int, text: int):
    ids = torch.randint(4, model.config.llm.vocab_size, (batch, text))
    return torch.randn(batch, 3, model.config.image_size, model.config.image_size), ids, torch.ones_like(ids)


def train_tokens_per_second(stage: str, batch: int, text: int, steps: int = 5) -> float:
    torch.manual_seed(0)
    model = EarthGPT(tiny())
    model.set_stage(stage)
    model.train()
    optimiser = torch.optim.AdamW(trainable_parameters(model), lr=1e-4)
    pixels, ids, mask = _batch(model, batch, text)
    for step in range(steps + 1):  # the first step warms up allocators and kernels
        if step == 1:
            start = time.perf_counter()
        loss = model(pixels, ids, mask, labels=ids).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    seconds = time.perf_counter() - start
    return steps * batch * (text + model.vision.num_tokens) / seconds


def generation_tokens_per_second(use_cache: bool, batch: int, prompt: int, new: int) -> float:
    torch.manual_seed(0)
    model = EarthGPT(tiny()).eval()
    pixels, ids, mask = _batch(model, batch, prompt)
    with torch.no_grad():
        embeds, full_mask = model.embed(pixels, ids, mask)
        def run(n: int) -> torch.Tensor:  # exactly n new tokens (no end-of-turn stop)
            if use_cache:
                return model.llm.generate(inputs_embeds=embeds, attention_mask=full_mask, max_new_tokens=n,
                                          min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0)
            return model._generate_without_cache(embeds, full_mask, n, False, 1.0, 1.0, eos=-1, pad=0)

        run(2)  # warm-up
        start = time.perf_counter()
        out = run(new)
    assert out.shape[1] == new
    return out.shape[0] * out.shape[1] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--text", type=int, default=128)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--prompts", type=int, nargs="+", default=[32, 384], help="text prompt lengths")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"tiny preset, {args.threads} threads, batch {args.batch}, {tiny().num_visual_tokens} visual + "
          f"{args.text} text tokens")
    for stage in ("stage2", "stage3"):
        print(f"train {stage}: {train_tokens_per_second(stage, args.batch, args.text):,.0f} tokens/s (fwd+bwd+step)")
    for prompt in args.prompts:
        cached = generation_tokens_per_second(True, 4, prompt, args.new)
        plain = generation_tokens_per_second(False, 4, prompt, args.new)
        print(f"generate, batch 4, prompt {prompt} text tokens, {args.new} new: KV cache {cached:,.1f} tok/s, "
              f"no cache {plain:,.1f} tok/s, ratio {cached / plain:.2f}x")


if __name__ == "__main__":
    main()
