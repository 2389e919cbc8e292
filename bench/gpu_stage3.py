"""Stage-3 step time and model FLOPs utilisation (MFU) at the `paper` shapes, random weights, one GPU.

Builds DINOv2 ViT-L/14 + ConvNeXt-L + LLaMA-2-7B shapes directly on the GPU in bf16 (no weights needed),
applies the stage-3 policy (bias + shift adapters only), and times optimiser steps. Model FLOPs are counted
by torch's FlopCounterMode on one step without activation checkpointing (recomputation is not counted, as
MFU requires); MFU = model FLOPs / step time / peak bf16 dense FLOP/s of the device.

    python bench/gpu_stage3.py [--batch 4] [--text 512] [--steps 10] [--peak-tflops 989]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.adapters import trainable_parameters
from models.config import paper
from models.earthgpt import EarthGPT


def build(device: str) -> EarthGPT:
    config = paper("llama", "dinov2", "convnext")
    config = dataclasses.replace(config, vit=dataclasses.replace(config.vit, path=None),
                                 cnn=dataclasses.replace(config.cnn, path=None, backend="hf"),
                                 llm=dataclasses.replace(config.llm, path=None))
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = EarthGPT(config)
    torch.set_default_dtype(torch.float32)
    model.set_stage("stage3")
    return model.train()


def step(model, optimiser, pixels, ids, mask) -> torch.Tensor:
    loss = model(pixels, ids, mask, labels=ids).loss
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--text", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100/H200 SXM: 989)")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing in the LLM")
    args = parser.parse_args()
    assert torch.cuda.is_available(), "this benchmark needs a CUDA device"
    device = "cuda"
    start = time.perf_counter()
    model = build(device)
    print(f"built paper-shaped model in {time.perf_counter() - start:.0f} s on {torch.cuda.get_device_name()}")
    trainable = sum(p.numel() for p in trainable_parameters(model))
    total = sum(p.numel() for p in model.parameters())
    print(f"parameters: {total / 1e9:.2f} B total, {trainable / 1e6:.2f} M trainable (stage 3)")
    optimiser = torch.optim.AdamW(trainable_parameters(model), lr=2e-5, betas=(0.9, 0.95))
    pixels = torch.randn(args.batch, 3, 224, 224, device=device, dtype=torch.bfloat16)
    ids = torch.randint(4, 32000, (args.batch, args.text), device=device)
    mask = torch.ones_like(ids)

    with FlopCounterMode(display=False) as counter:
        step(model, optimiser, pixels, ids, mask)
    flops = counter.get_total_flops()
    if args.checkpointing:
        model.llm.gradient_checkpointing_enable()
    for _ in range(2):
        step(model, optimiser, pixels, ids, mask)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step(model, optimiser, pixels, ids, mask)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    tokens = args.batch * (args.text + model.vision.num_tokens)
    print(f"batch {args.batch} x ({model.vision.num_tokens} visual + {args.text} text) tokens, "
          f"checkpointing {'on' if args.checkpointing else 'off'}")
    print(f"step {seconds * 1000:.1f} ms, {tokens / seconds:,.0f} tokens/s, loss {loss.item():.3f}")
    print(f"model FLOPs/step {flops / 1e12:.2f} T -> {flops / seconds / 1e12:.1f} TFLOP/s, "
          f"MFU {flops / seconds / (args.peak_tflops * 1e12):.1%} of {args.peak_tflops:.0f} TFLOP/s")
    print(f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
