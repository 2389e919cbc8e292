"""The paper's run in numbers: MMRS-1M's size, the training FLOPs counted at the `paper` shapes, and the GPU
hours they take at a range of model FLOPs utilisation (docs/scale-out.md).

    .venv/bin/python bench/sizing.py [--text 100 200 400] [--mfu 0.35 0.50] [--peak-tflops 989]

Counts, without a GPU and without weights: the model (DINOv2 ViT-L/14 + ConvNeXt-L + LLaMA-2-7B shapes) is
built on the meta device and torch's FlopCounterMode counts one training sample's forward and backward for
each stage's trainable policy (stage 2: q/k/v, norms, projection; stage 3: bias + scale) at each text length,
256 visual tokens on top. Samples per stage: the `paper` profile's max_steps x global batch (batch_size x
gradient_accumulation x processes). GPU hours = FLOPs / (MFU x peak); measure the MFU on the GPU with
bench/gpu_stage3.py.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
import transformers.masking_utils
from torch.utils.flop_counter import FlopCounterMode

from mmrs.registry import SOURCES
from models.adapters import trainable_parameters
from models.config import paper
from models.earthgpt import EarthGPT
from pipelines.settings import load_settings

# transformers inspects position ids for packed sequences with .item(), which meta tensors cannot answer;
# one unpacked sample per row is what is counted here
transformers.masking_utils.find_packed_sequence_indices = lambda *args, **kwargs: None


def sample_flops(model: EarthGPT, stage: str, text_tokens: int) -> float:
    """FLOPs of one sample's forward and backward (loss over every position, as the LM head computes)."""
    model.set_stage(stage)
    model.train()
    pixels = torch.zeros(1, 3, 224, 224, device="meta")
    ids = torch.zeros(1, text_tokens, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        visual = model.vision(pixels)
        text = model.llm.get_input_embeddings()(ids)
        logits = model.llm(inputs_embeds=torch.cat([visual.to(text.dtype), text], dim=1), use_cache=False).logits
        logits.float().sum().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=int, nargs="+", default=[100, 200, 400], help="text tokens per sample")
    parser.add_argument("--mfu", type=float, nargs=2, default=[0.35, 0.50])
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100/H200 SXM: 989)")
    args = parser.parse_args()

    samples = {name: spec.paper_samples for name, spec in SOURCES.items() if spec.paper_samples}
    records = sum(samples.values()) + SOURCES["dior_rsvg"].paper_samples  # DIOR-RSVG: grounding + region captions
    print(f"MMRS-1M (paper Table I): {records:,} samples from {len(samples)} datasets; tiled scenes: "
          + ", ".join(f"{n} {v:,}" for n, v in samples.items() if SOURCES[n].tile))

    settings = load_settings("paper")
    config = paper("llama", "dinov2", "convnext")
    config = dataclasses.replace(config, vit=dataclasses.replace(config.vit, path=None),
                                 cnn=dataclasses.replace(config.cnn, path=None, backend="hf"),
                                 llm=dataclasses.replace(config.llm, path=None))
    with torch.device("meta"):
        model = EarthGPT(config)
    low, high = (m * args.peak_tflops * 1e12 for m in args.mfu)
    for stage in ("stage2", "stage3"):
        s = settings.train.stage(stage)
        batch = s.batch_size * settings.compute.gradient_accumulation * settings.compute.processes
        trained = s.max_steps * batch
        per_sample = {t: sample_flops(model, stage, t) for t in args.text}
        parameters = sum(p.numel() for p in trainable_parameters(model))
        print(f"{stage}: {s.max_steps:,} steps x {batch} = {trained:,} samples ({trained / records:.2f} x MMRS-1M), "
              f"{parameters / 1e6:,.1f} M trainable parameters")
        for tokens, flops in per_sample.items():
            total = flops * trained
            print(f"  {tokens:>4} text tokens: {flops / 1e12:5.2f} TFLOP/sample, {total:.2e} FLOP = "
                  f"{total / high / 3600:,.0f}-{total / low / 3600:,.0f} GPU-hours at MFU "
                  f"{args.mfu[1]:.0%}-{args.mfu[0]:.0%} of {args.peak_tflops:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
