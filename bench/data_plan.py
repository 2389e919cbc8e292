"""Start-up time and memory of one DataLoader worker at 1 M training records.

    .venv/bin/python bench/data_plan.py [--records 1000000] [--ranks 2] [--workers 2] [--batch-size 8]

Builds a text-only corpus of --records records (the converted conversations of five sample-corpus sources,
repeated with new ids into 4 sources x 5 shards: real token lengths, no image decoding to hide the data
pipeline's own cost), trains the tiny model's BPE tokenizer on its text, then measures in fresh processes,
each one DataLoader worker (worker 0 of --workers on rank 0 of --ranks; the code path of
MMRSStream.__iter__ inside a DataLoader worker):

  start        seconds to the worker's first batch at the start of an epoch, and its peak memory
  resume       seconds to its first batch when the run resumes half-way through the epoch
  share        seconds to deliver its whole share of the epoch, and its peak memory

Peak memory is the process's high-water mark (VmHWM) less what it held once torch, transformers and the
tokenizer were loaded. Where the epoch's plan is stored (models.data's plan index), the one-off cost of
building it is measured first, in its own process; the other processes then find it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAMES = ["nwpu_resisc45", "rsicd", "rsvqa_lr", "dior", "dior_rsvg"]
SHARDS = 5


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_corpus(root: Path, records: int) -> str:
    """The corpus's mmrs_1m.json: NAMES converted at scale 1, their training conversations repeated."""
    from mmrs.build import build_mmrs_1m, convert_source
    from mmrs.registry import SOURCES
    from mmrs.shards import iter_source_records, read_json, write_json
    from mmrs.synthetic.corpus import DATASETS, generate_dataset

    for name in NAMES:
        generate_dataset(name, root / "raw")
        convert_source(SOURCES[name], str(root / "raw" / DATASETS[name].folder), str(root / "small"))
    pool = [r for name in NAMES for r in iter_source_records(str(root / "small" / name))
            if r["split"] in ("train", "val")]
    sources = ["rsicd", "rsvqa_lr", "dior", "dior_rsvg"]  # four folders of the repeated records
    per_source = records // len(sources)
    for s, name in enumerate(sources):
        folder = root / "out" / name
        folder.mkdir(parents=True)
        manifest = read_json(str(root / "small" / name / "manifest.json"))
        shards, counts, n = [], {}, 0
        for k in range(SHARDS):
            path = folder / f"train-{k:05d}.jsonl"
            take = per_source // SHARDS
            with path.open("w") as f:
                for _ in range(take):
                    record = pool[(s * per_source + n) % len(pool)]
                    f.write(json.dumps(record | {"id": f"{name}/train/{n}", "source": name}) + "\n")
                    counts[record["task"]] = counts.get(record["task"], 0) + 1
                    n += 1
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            shards.append({"path": path.name, "split": "train", "records": take, "rounds": take, "sha256": digest})
        image_root = os.path.relpath(root / "small" / name, folder)  # unused: text-only batches
        manifest |= {"source": name, "image_root": image_root, "train_splits": ["train"], "shards": shards,
                     "counts": {"records": {"train": counts}, "rounds": {"train": counts}},
                     "content_hash": hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest()}
        write_json(str(folder / "manifest.json"), manifest)
    build_mmrs_1m(str(root / "out"), sources)
    return str(root / "out" / "mmrs_1m.json")


def train_tokenizer(root: Path, out: Path) -> None:
    from mmrs.shards import iter_source_records
    from models.tokenization import save_tokenizer, train_bpe_tokenizer

    texts = [t["value"] for name in NAMES for r in iter_source_records(str(root / "small" / name))
             for t in r["conversations"]]
    save_tokenizer(train_bpe_tokenizer(texts, vocab_size=1024), out)


def measure(args: argparse.Namespace) -> dict:
    """One worker process: the stream of rank 0 of --ranks, worker 0 of --workers."""
    import models.data as data
    from models.config import tiny
    from models.tokenization import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    model = replace(tiny(), max_text_tokens=384)
    config = data.DataConfig(manifest=args.manifest, batch_size=args.batch_size, images=False)
    sources = data.load_sources(config, None)
    base = _vm_hwm_mib()
    result: dict = {}
    start = time.perf_counter()
    if args.measure == "build":
        stream = data.MMRSStream(sources, config, model, tokenizer)
        plan = stream.plan_index(0)
        result["seconds"] = time.perf_counter() - start
        result["plan_mib"] = sum(f.stat().st_size for f in Path(plan.folder).iterdir()) / 2**20
        result["peak_mib"] = _vm_hwm_mib() - base
        return result
    stream = data.MMRSStream(sources, config, model, tokenizer, rank=0, world_size=args.ranks)
    data._worker_share = lambda: (0, args.workers)  # as inside DataLoader worker 0 of --workers
    if args.measure == "resume":
        stream.position = len(stream) // 2
    batches = iter(stream)
    next(batches)
    result["first_batch_seconds"] = time.perf_counter() - start
    if args.measure == "share":
        count = 1 + sum(1 for _ in batches)
        result |= {"seconds": time.perf_counter() - start, "batches": count}
    result["peak_mib"] = _vm_hwm_mib() - base
    result["cpu_seconds"] = time.process_time()
    return result


def _run(args: argparse.Namespace, what: str, manifest: str, tokenizer: Path) -> dict:
    command = [sys.executable, __file__, "--measure", what, "--manifest", manifest, "--tokenizer", str(tokenizer),
               "--ranks", str(args.ranks), "--workers", str(args.workers), "--batch-size", str(args.batch_size)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--measure", choices=["build", "start", "resume", "share"], help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EARTHGPT_PLAN_CACHE"] = str(Path(tmp) / "plans")
        start = time.perf_counter()
        manifest = build_corpus(Path(tmp), args.records)
        train_tokenizer(Path(tmp), Path(tmp) / "tokenizer")
        print(f"corpus: {args.records:,} records in 4 sources x {SHARDS} shards "
              f"({time.perf_counter() - start:.0f} s to write); worker 0 of {args.workers} on rank 0 of "
              f"{args.ranks}, batch {args.batch_size}, text only")
        import models.data as data

        if hasattr(data.MMRSStream, "plan_index"):
            built = _run(args, "build", manifest, Path(tmp) / "tokenizer")
            print(f"plan index built once: {built['seconds']:.1f} s, peak +{built['peak_mib']:.0f} MiB, "
                  f"{built['plan_mib']:.1f} MiB on disk")
        for what in ("start", "resume", "share"):
            r = _run(args, what, manifest, Path(tmp) / "tokenizer")
            line = f"{what:<7} first batch {r['first_batch_seconds']:.2f} s"
            if what == "share":
                line += f", whole share {r['seconds']:.1f} s ({r['batches']:,} batches, CPU {r['cpu_seconds']:.1f} s)"
            print(f"{line}, peak +{r['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
