"""Does the tiny preset learn to localise with more training, and under which trainable set? (issue #18)

The demo's stage 2 and stage 3 (params.yaml `demo`), started from the demo's own text stand-in, at multiples
of their step counts, with stage 3 training either the paper's parameters (bias + scale of the decoder's
linears) or every LLM weight and the projection (an upper bound that is not the paper's method). After each
rung the evaluation code scores DIOR-RSVG grounding, MAR20 detection and RESISC45 (a check that the rung
learned at all), each beside its image-blind baseline. Meant for a lent GPU, where the ladder takes minutes;
on the CPU a rung of x1 costs about what the demo's training does (8 min).

    # here: the demo's converted corpus with its images already preprocessed (64 px), the tokenizer and
    # the text stand-in, small enough to travel (about 40 MB)
    python bench/tiny_compute.py pack --out .gpu
    # there: rungs in order until --budget-s runs out, one JSON line each to --results. On the lent H200
    # (Python 3.12 image) the missing packages travel as wheels in .whl (see the device tool's README):
    # defusedxml ijson imagesize orjson shapely, and transformers 5.24.0 / tokenizers 0.23.3 as locked here
    python bench/tiny_compute.py run --packed .gpu --results $OUT/results.jsonl --budget-s 480

`pack` writes each record's image as the 64 px RGB picture that `models.image_transform.preprocess` makes
of it (PNG, lossless; preprocess leaves a square 64 px RGB picture as it is), so the model sees the same
pixels as in the demo without the 300 MB of native files.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BENCHMARKS = ("dior_rsvg", "mar20_hbb", "nwpu_resisc45")
# (stage-2 multiple, stage-3 multiple, stage-3 trainable set), cheapest first
RUNGS = ((1, 1, "paper"), (1, 1, "full"), (8, 8, "paper"), (8, 8, "full"), (8, 24, "full"))


# --- pack (here, CPU) --------------------------------------------------------------------------------------
def pack(mmrs: Path, models: Path, out: Path) -> None:
    import numpy as np
    from PIL import Image

    from evaluation.benchmarks import BENCHMARKS as ALL
    from mmrs.shards import iter_records, read_json, resolve_location
    from models.config import tiny
    from models.image_transform import load_record_image, preprocess

    config = tiny()
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(mmrs, out / "mmrs", ignore=shutil.ignore_patterns("*.md", "quarantine*", "tiles"))
    shutil.copytree(models / "tokenizer", out / "tokenizer")
    shutil.copytree(models / "text" / "model", out / "text")
    images = 0
    for manifest_path in sorted((out / "mmrs").glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        root = resolve_location(manifest["image_root"], str(mmrs / manifest_path.parent.name))
        target = out / "images" / manifest_path.parent.name
        done: set[str] = set()
        evaluated = {ALL[name].split for name in BENCHMARKS if ALL[name].source == manifest["source"]}
        wanted = set(manifest.get("train_splits") or ()) | evaluated  # no image of another benchmark travels
        for shard in manifest["shards"]:
            if shard["split"] not in wanted:
                continue
            for record in iter_records(str(manifest_path.parent / shard["path"])):
                if not record.get("image") or record["image"] in done:
                    continue
                done.add(record["image"])
                pixels = preprocess(load_record_image(root, record["image"]), config)
                picture = (pixels.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
                path = target / record["image"].replace("::", "/")
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(path, format="PNG")
        manifest["image_root"] = os.path.relpath(target, manifest_path.parent)
        manifest_path.write_text(json.dumps(manifest))
        images += len(done)
    merged = read_json(str(out / "mmrs" / "mmrs_1m.json"))
    print(f"packed {images} images, {len(merged['shards'])} training shards into {out}")


# --- run (there, GPU) --------------------------------------------------------------------------------------
def _stage_settings(profile: dict, stage: str, multiple: float) -> tuple[object, dict]:
    """(OptimConfig, DataConfig keywords) of a demo stage with its steps and warmup times `multiple`. Read from
    params.yaml directly: models.stages' StageSettings.optim and data_config do the same, but that module imports
    MLflow, which the GPU image lacks."""
    from models.training import OptimConfig

    s = profile["train"][stage]
    optim = OptimConfig(lr=s["lr"], warmup_steps=max(1, round(s["warmup_steps"] * multiple)),
                        max_steps=max(1, round(s["max_steps"] * multiple)))
    tasks = None if s.get("tasks", "all") == "all" else tuple(s["tasks"])
    return optim, dict(tasks=tasks, batch_size=s["batch_size"], weights=s.get("weights"),
                       holdout_permille=s.get("holdout_permille", 0), prompt_variation=s.get("prompt_variation", False),
                       images=True, num_workers=12)


def train(model, tokenizer, stage: str, policy: str, optim, data_kwargs: dict, manifest: str,
          seed: int = 0) -> tuple[float, int, float]:
    """Train in place; returns (seconds, steps, mean loss of the last 50 steps)."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback

    from models.data import DataConfig, MMRSDataModule
    from models.training import EarthGPTModule

    class Losses(Callback):
        def __init__(self):
            self.values: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.values.append(float(outputs["loss"]))

    L.seed_everything(seed, workers=True, verbose=False)
    module = EarthGPTModule(model, stage, optim)
    if policy == "full":  # every LLM weight and the projection, on top of the stage's own parameters
        for name, param in model.named_parameters():
            if name.startswith(("llm.", "vision.projector.")):
                param.requires_grad_(True)
    losses = Losses()
    trainer = L.Trainer(max_steps=optim.max_steps, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[losses],
                        accelerator="gpu" if torch.cuda.is_available() else "cpu", devices=1, precision="32-true")
    data = DataConfig(manifest=manifest, seed=seed, **data_kwargs)
    start = time.perf_counter()
    trainer.fit(module, datamodule=MMRSDataModule(data, model.config, tokenizer))
    tail = losses.values[-50:]
    return time.perf_counter() - start, trainer.global_step, sum(tail) / max(1, len(tail))


def evaluate(model, tokenizer, mmrs: str) -> dict:
    from evaluation.benchmarks import BENCHMARKS as ALL
    from evaluation.benchmarks import run_benchmark

    model.eval()
    scores = {}
    for name in BENCHMARKS:
        result = run_benchmark(ALL[name], model, tokenizer, mmrs, batch_size=64, examples=3)
        scores[name] = {"metrics": result.metrics, "baseline": result.baseline,
                        "parse_failures": result.parse_failures, "examples": result.examples}
    model.train()
    return scores


def _without_caption_scorers() -> None:
    """The GPU image lacks pycocoevalcap (a 100 MB wheel: too large to carry) and no caption is scored here;
    empty modules in its place let `evaluation.benchmarks` import."""
    if importlib.util.find_spec("pycocoevalcap") is not None:
        return
    import types

    modules = ("bleu.bleu", "cider.cider", "meteor.meteor", "rouge.rouge", "tokenizer.ptbtokenizer")
    for name in ("pycocoevalcap", *(f"pycocoevalcap.{m.split('.')[0]}" for m in modules),
                 *(f"pycocoevalcap.{m}" for m in modules)):
        stub = sys.modules.setdefault(name, types.ModuleType(name))
        for attr in ("Bleu", "Cider", "Meteor", "Rouge", "PTBTokenizer"):
            setattr(stub, attr, None)


def run(packed: Path, results: Path, budget_s: float, fraction: float = 1.0, only: list[int] | None = None) -> None:
    """Train and score the rungs (`only`: indices into RUNGS) in order, skipping one whose steps would not
    finish inside `budget_s` at the step rate seen so far. fraction: every multiple scaled by it (0.02: a
    quick check of the script on the CPU). One JSON line per rung to `results` ("final_loss": the mean of
    the last 50 steps)."""
    import copy

    import torch
    import yaml

    _without_caption_scorers()
    from models.io import load_model

    deadline = time.perf_counter() + budget_s
    profile = yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]["demo"]
    manifest = str(packed / "mmrs" / "mmrs_1m.json")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    text_model, tokenizer = load_model(str(packed / "text"))
    aligned: dict[float, object] = {}  # stage-2 multiple -> its model
    steps_per_s = None
    for s2, s3, policy in [RUNGS[i] for i in only] if only else RUNGS:
        s2, s3 = s2 * fraction, s3 * fraction
        cost = (0 if s2 in aligned else profile["train"]["stage2"]["max_steps"] * s2) \
            + profile["train"]["stage3"]["max_steps"] * s3
        if steps_per_s and cost / steps_per_s + 60 > deadline - time.perf_counter():
            print(f"skip x{s2}/x{s3} {policy}: {cost} steps do not fit the budget", flush=True)
            continue
        row = {"stage2_multiple": s2, "stage3_multiple": s3, "stage3_policy": policy, "device": device}
        if s2 not in aligned:
            model = copy.deepcopy(text_model).to(device)
            optim, kwargs = _stage_settings(profile, "stage2", s2)
            seconds, steps, loss = train(model, tokenizer, "stage2", "paper", optim, kwargs, manifest)
            aligned[s2] = model.cpu()
            steps_per_s = steps / seconds
            row["stage2"] = {"seconds": round(seconds, 1), "steps": steps, "final_loss": round(loss, 4)}
        model = copy.deepcopy(aligned[s2]).to(device)
        optim, kwargs = _stage_settings(profile, "stage3", s3)
        if policy == "full":  # whole weights take the text stand-in's rate, not the one for bias and scale
            optim = dataclasses.replace(optim, lr=profile["train"]["text"]["lr"])
        seconds, steps, loss = train(model, tokenizer, "stage3", policy, optim, kwargs, manifest)
        steps_per_s = steps / seconds
        row["stage3"] = {"seconds": round(seconds, 1), "steps": steps, "final_loss": round(loss, 4)}
        start = time.perf_counter()
        row["scores"] = evaluate(model, tokenizer, str(packed / "mmrs"))
        row["eval_seconds"] = round(time.perf_counter() - start, 1)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        brief = {n: (round(next(iter(v["metrics"].values())), 2), round(next(iter(v["baseline"].values())), 2))
                 for n, v in row["scores"].items()}
        print(f"x{s2}/x{s3} {policy}: stage3 loss {loss:.3f}, {brief}", flush=True)
        del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--mmrs", type=Path, default=REPO / "data/mmrs")
    p.add_argument("--models", type=Path, default=REPO / "data/models")
    p.add_argument("--out", type=Path, default=REPO / ".gpu")
    r = sub.add_parser("run")
    r.add_argument("--packed", type=Path, default=REPO / ".gpu")
    r.add_argument("--results", type=Path, default=Path("results.jsonl"))
    r.add_argument("--budget-s", type=float, default=480)
    r.add_argument("--rungs", type=int, nargs="*", help="indices into RUNGS (default: all, in order)")
    r.add_argument("--fraction", type=float, default=1.0, help="scale every rung's steps (0.02: a quick check)")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.mmrs, args.models, args.out)
    else:
        run(args.packed, args.results, args.budget_s, args.fraction, args.rungs)


if __name__ == "__main__":
    main()
