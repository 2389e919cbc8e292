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


def _chat(args: argparse.Namespace) -> int:
    from models.image_transform import read_image
    from models.inference import ChatSession, GenerationOptions
    from models.io import load_model
    from models.weights import MissingWeightsError

    try:
        model, tokenizer = load_model(args.model)
        image = read_image(Path(args.image))
    except (MissingWeightsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    options = GenerationOptions(max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0,
                                temperature=args.temperature or 1.0)
    session = ChatSession(model, tokenizer, image, options)
    if args.prompt:
        print(session.ask(args.prompt))
        return 0
    print("EarthGPT chat: one question per line; an empty line or Ctrl-D ends it.", file=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            break
        print(session.ask(line.strip()), flush=True)
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

    chat = commands.add_parser("chat", help="talk with a trained model about one image (multi-turn)")
    chat.add_argument("--model", required=True, help="saved model folder (local or s3://)")
    chat.add_argument("--image", required=True, help="image file (RGB, single-channel or 16-bit TIFF)")
    chat.add_argument("--prompt", help="ask this one question, print the answer and exit")
    chat.add_argument("--max-new-tokens", type=_positive_int, default=128)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    chat.set_defaults(func=_chat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
