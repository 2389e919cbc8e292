"""The `earthgpt` command line: one subcommand per pipeline capability."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from mmrs.synthetic.corpus import DATASETS, generate_dataset


def _sample_data(args: argparse.Namespace) -> int:
    names = args.only or list(DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        print(f"unknown dataset(s): {', '.join(unknown)}; choose from {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    start = time.perf_counter()
    images = annotations = 0
    rows = []
    for name in tqdm(names, desc="sample corpus", unit="dataset", disable=args.quiet):
        report = generate_dataset(name, out, seed=args.seed, scale=args.scale)
        images += report.images
        annotations += report.annotations
        splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
        rows.append(f"{name:<15} {report.images:>7} {report.annotations:>9}  {report.root}  ({splits})")
    seconds = time.perf_counter() - start
    print(f"{'dataset':<15} {'images':>7} {'records':>9}  folder")
    print("\n".join(rows))
    print(f"{images} images, {annotations} annotation records in {seconds:.1f} s under {out}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earthgpt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser(
        "sample-data",
        help="write the multi-sensor sample corpus in the native formats of the real datasets",
    )
    sample.add_argument("--out", required=True, help="output folder (one sub-folder per dataset)")
    sample.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    sample.add_argument("--scale", type=_positive_int, default=1,
                        help="multiplies every dataset's image count (default 1)")
    sample.add_argument("--only", nargs="+", metavar="DATASET", help="generate only these datasets")
    sample.add_argument("--quiet", action="store_true", help="no progress bar")
    sample.set_defaults(func=_sample_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
