"""Padding of training batches with and without length grouping, on the sample corpus.

Generates and converts a mix of sample-corpus sources (classification, captioning, VQA, detection,
grounding), trains a BPE tokenizer of the tiny model's vocabulary size on their text, then runs one
training epoch of MMRSDataModule in plain order and one length-grouped, and prints the padding fraction
(pad tokens / all text tokens), the text tokens per epoch and the epoch time of each.

    .venv/bin/python bench/padding.py [--batch-size 8] [--bucket-batches 16] [--max-text-tokens 384]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from mmrs.build import build_mmrs_1m, convert_source
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from models.config import tiny
from models.data import DataConfig, MMRSDataModule
from models.tokenization import train_bpe_tokenizer

# The tiny preset default (768) holds every first round of the corpus; 512 shows truncation at work.
MAX_TEXT_TOKENS = 512
NAMES = ["nwpu_resisc45", "rsicd", "nwpu_captions", "rsvqa_lr", "crsvqa", "dior", "dior_rsvg", "ssdd", "hit_uav"]


def build_corpus(root: Path) -> str:
    """Generate and convert NAMES under root; returns the merged manifest's path."""
    for name in NAMES:
        generate_dataset(name, root / "raw")
        convert_source(SOURCES[name], str(root / "raw" / DATASETS[name].folder), str(root / "out"))
    build_mmrs_1m(str(root / "out"), NAMES)
    return str(root / "out" / "mmrs_1m.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bucket-batches", type=int, default=16)
    parser.add_argument("--max-text-tokens", type=int, default=MAX_TEXT_TOKENS)
    args = parser.parse_args()
    model = replace(tiny(), max_text_tokens=args.max_text_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_corpus(Path(tmp))
        texts = [turn["value"] for name in NAMES for record in iter_source_records(str(Path(tmp) / "out" / name))
                 for turn in record["conversations"]]
        tokenizer = train_bpe_tokenizer(texts, vocab_size=model.llm.vocab_size)
        for group in (False, True):
            config = DataConfig(manifest=manifest, batch_size=args.batch_size, bucket_batches=args.bucket_batches,
                                group_by_length=group)
            datamodule = MMRSDataModule(config, model, tokenizer)
            datamodule.setup("fit")
            start = time.perf_counter()
            for _ in datamodule.train_dataloader():
                pass
            stats = datamodule.stats
            print(f"{'length-grouped' if group else 'plain order':>14}: padding {stats.padding_fraction:6.1%}  "
                  f"text tokens {stats.text_tokens:>9,}  samples {stats.samples:,}  truncated {stats.truncated:,}  "
                  f"skipped {sum(stats.skipped.values()):,}  epoch {time.perf_counter() - start:5.1f} s")


if __name__ == "__main__":
    main()
