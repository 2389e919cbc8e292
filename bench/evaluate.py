"""Evaluation speed: stored predictions, batched generation, caption scoring.

1. A second evaluation of an unchanged model against the first (target: at least 20x faster): the Dagster
   assets predictions/<b> -> eval/<b> -> paper_tables materialized twice; the second only scores.
2. Batched generation with the KV cache against one question at a time (questions/s), same answers.
3. Scoring 10,000 caption predictions: ours (evaluation.captioning, pycocoevalcap's scorers one by one)
   against pycocoevalcap's own pipeline (COCOEvalCap with COCO objects; SPICE left out: it needs CoreNLP
   models downloaded at first use) - the same numbers, and the time ratio.

The model and corpus are the demo's (`make demo`: data/models/stage3/model, data/mmrs) when present,
else a random tiny model on a freshly converted scale-1 corpus (answers then run to max_new_tokens).

    .venv/bin/python bench/evaluate.py [--benchmarks nwpu_resisc45 crsvqa dior_rsvg mar20_hbb] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _world(scratch: Path, benchmarks: list[str]):
    """(mmrs folder, model folder, note): the demo's, or a converted scale-1 corpus and a random tiny model."""
    demo_model, demo_mmrs = REPO / "data/models/stage3/model", REPO / "data/mmrs"
    if (demo_model / "model.safetensors").exists() and (demo_mmrs / "mmrs_1m.json").exists():
        return demo_mmrs, demo_model, "the demo's stage-3 model and corpus"
    from evaluation.benchmarks import BENCHMARKS
    from mmrs.build import convert_source
    from mmrs.registry import SOURCES
    from mmrs.synthetic.corpus import DATASETS, generate_dataset
    from models.config import tiny
    from models.earthgpt import EarthGPT
    from models.io import save_model
    from models.tokenization import train_bpe_tokenizer

    for source in sorted({BENCHMARKS[b].source for b in benchmarks}):
        generate_dataset(source, scratch / "sample")
        convert_source(SOURCES[source], str(scratch / "sample" / DATASETS[source].folder), str(scratch / "mmrs"))
    tokenizer = train_bpe_tokenizer(["There are two planes [0.10,0.20,0.30,0.40]", "yes", "no"] * 50, 400)
    torch.manual_seed(0)
    config = tiny()
    model = EarthGPT(dataclasses.replace(config, llm=dataclasses.replace(config.llm, vocab_size=len(tokenizer))))
    save_model(model, tokenizer, scratch / "model")
    return scratch / "mmrs", scratch / "model", "a random tiny model on a scale-1 corpus (answers run to the limit)"


def second_evaluation(scratch: Path, benchmarks: list[str]) -> None:
    import dagster as dg

    from assets.evaluation import build_evaluation_assets
    from assets.resources import resources_from_settings
    from evaluation.benchmarks import BENCHMARKS
    from models.distributed import DistributedConfig
    from models.io import load_model, save_model
    from models.tracking import TrackingSettings
    from pipelines.settings import StorageSettings

    mmrs, model_dir, note = _world(scratch, benchmarks)
    models = scratch / "models"
    model, tokenizer = load_model(model_dir)
    save_model(model, tokenizer, models / "stage3" / "model")  # a layout of its own; no registration needed
    storage = StorageSettings(sample=str(scratch), raw=str(scratch), mmrs=str(mmrs), models=str(models),
                              eval=str(scratch / "eval"))
    resources = resources_from_settings(storage, TrackingSettings(uri=f"sqlite:///{scratch / 'mlflow.db'}"),
                                        DistributedConfig(precision="32-true"))
    assets = build_evaluation_assets([BENCHMARKS[b] for b in benchmarks])
    times = []
    for _ in range(2):
        start = time.perf_counter()
        assert dg.materialize(assets, resources=resources).success
        times.append(time.perf_counter() - start)
    print(f"1. evaluation of {', '.join(benchmarks)} with {note}")
    print(f"   first {times[0]:.1f} s (generates), second {times[1]:.1f} s (scores stored answers): "
          f"{times[0] / times[1]:.1f}x faster (target >= 20x)")


def batched_generation(scratch: Path, n: int = 64) -> None:
    from evaluation.benchmarks import BENCHMARKS, load_benchmark_data, questions
    from evaluation.predict import iter_answers
    from models.io import load_model

    mmrs, model_dir, note = _world(scratch, ["nwpu_resisc45"])
    model, tokenizer = load_model(model_dir)
    data = load_benchmark_data(BENCHMARKS["nwpu_resisc45"], str(mmrs))
    asked = questions(BENCHMARKS["nwpu_resisc45"], data.records)[:n]
    with torch.no_grad():
        start = time.perf_counter()
        batched = dict(a for batch in iter_answers(model, tokenizer, data.image_root, asked, 32, 48) for a in batch)
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        alone = {i: a for i, q in enumerate(asked)
                 for _, a in next(iter_answers(model, tokenizer, data.image_root, [q], 1, 48))}
        alone_s = time.perf_counter() - start
    same = sum(batched[i] == alone[i] for i in alone)
    print(f"2. generation, {len(asked)} RESISC45 questions, KV cache, {note}")
    print(f"   batch 32: {len(asked) / batched_s:.1f} questions/s; one at a time: {len(asked) / alone_s:.1f} "
          f"questions/s; {alone_s / batched_s:.1f}x; identical answers {same}/{len(asked)}")


def caption_scoring(n: int = 10_000) -> None:
    import pycocoevalcap.eval as cocoeval
    from pycocotools.coco import COCO

    from evaluation.captioning import _english_jvm, score_captions
    from mmrs.synthetic.corpus import DATASETS
    from mmrs.synthetic.samples import iter_samples
    from mmrs.synthetic.truth import captions

    rng = random.Random(0)
    spec = DATASETS["nwpu_captions"]
    references: dict[str, list[str]] = {}
    for image in iter_samples(spec, 0, n // 48 + 1):
        references[str(len(references))] = captions(image.scene)
        if len(references) == n:
            break
    ids = list(references)
    predictions = {i: rng.choice(references[rng.choice(ids)]) for i in ids}  # another image's caption

    start = time.perf_counter()
    ours = score_captions(predictions, references)
    ours_s = time.perf_counter() - start

    class _NoSpice:  # COCOEvalCap.evaluate always builds SPICE, which cannot run offline
        def compute_score(self, gts, res):
            return 0.0, [0.0] * len(gts)

        def method(self):
            return "SPICE (left out)"

    gts, res = COCO(), COCO()
    numeric = {i: k for k, i in enumerate(ids)}
    gts.dataset = {"images": [{"id": numeric[i]} for i in ids], "annotations": [
        {"image_id": numeric[i], "id": len(numeric) * j + numeric[i], "caption": c}
        for i in ids for j, c in enumerate(references[i])]}
    gts.createIndex()
    res.dataset = {"images": gts.dataset["images"], "annotations": [
        {"image_id": numeric[i], "id": numeric[i], "caption": predictions[i]} for i in ids]}
    res.createIndex()
    original, cocoeval.Spice = cocoeval.Spice, _NoSpice
    try:
        evaluator = cocoeval.COCOEvalCap(gts, res)
        start = time.perf_counter()
        with _english_jvm():
            evaluator.evaluate()
        theirs_s = time.perf_counter() - start
    finally:
        cocoeval.Spice = original
    names = {"Bleu_1": "BLEU1", "Bleu_2": "BLEU2", "Bleu_3": "BLEU3", "Bleu_4": "BLEU4", "METEOR": "METEOR",
             "ROUGE_L": "ROUGE_L", "CIDEr": "CIDEr"}
    theirs = {names[k]: 100.0 * v for k, v in evaluator.eval.items() if k in names}
    worst = max(abs(ours[k] - theirs[k]) for k in theirs)
    print(f"3. scoring {n:,} caption predictions (5 references each)")
    print(f"   ours {ours_s:.1f} s, pycocoevalcap's COCOEvalCap {theirs_s:.1f} s: {theirs_s / ours_s:.2f}x; "
          f"largest metric difference {worst:.2e}")
    print("   " + json.dumps({k: round(v, 3) for k, v in ours.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", nargs="+", default=["nwpu_resisc45", "crsvqa", "dior_rsvg", "mar20_hbb"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--captions", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        second_evaluation(Path(tmp) / "second", args.benchmarks)
        batched_generation(Path(tmp) / "batched")
    caption_scoring(args.captions)


if __name__ == "__main__":
    main()
