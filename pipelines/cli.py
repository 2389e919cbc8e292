"""The `earthgpt` command line: one subcommand per pipeline capability.

Errors are one line on stderr: exit status 2 for bad input (a missing or malformed file, a path that leaves
its release, an image that does not decode, a wrong setting), 1 for a failure of the environment (an object
store unreachable after retries, a full disk) or of the program; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from mmrs.synthetic.corpus import DATASETS, generate_corpus


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
    reports = generate_corpus(out, seed=args.seed, scale=args.scale, names=names, workers=args.workers)
    for name, report in zip(names, tqdm(reports, desc="sample corpus", unit="dataset", total=len(names),
                                        disable=args.quiet), strict=True):
        images += report.images
        annotations += report.annotations
        splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
        rows.append(f"{name:<15} {report.images:>7} {report.annotations:>9}  {report.root}  ({splits})")
    seconds = time.perf_counter() - start
    print(f"{'dataset':<15} {'images':>7} {'records':>9}  folder")
    print("\n".join(rows))
    print(f"{images} images, {annotations} annotation records in {seconds:.1f} s under {out}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from mmrs.build import build_mmrs_1m, convert_source, statistics_table
    from mmrs.registry import SOURCES, get_source
    from mmrs.shards import join
    from mmrs.storage import SourceRoot

    if args.all == bool(args.source):
        print("give either one SOURCE or --all", file=sys.stderr)
        return 2
    if args.source:
        try:
            plan = [(get_source(args.source), args.root)]
        except KeyError as error:
            print(f"error: {error.args[0]}", file=sys.stderr)
            return 2
    else:
        names = args.only or list(SOURCES)
        unknown = [n for n in names if n not in SOURCES]
        if unknown:
            print(f"error: unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}", file=sys.stderr)
            return 2
        plan = [(SOURCES[n], join(args.root, SOURCES[n].release_folder)) for n in names]
        missing = [spec.name for spec, root in plan if not SourceRoot(root).exists("")]
        plan = [(spec, root) for spec, root in plan if spec.name not in missing]
        if not plan:
            looked = ", ".join(SOURCES[n].release_folder for n in names)
            print(f"error: no release found under {args.root} (looked for the folders {looked})", file=sys.stderr)
            return 2
        if missing:
            print(f"not found under {args.root}, skipped: {', '.join(missing)}", file=sys.stderr)
    manifests = []
    for spec, root in plan:
        with tqdm(desc=spec.name, unit="image", disable=args.quiet) as bar:
            try:
                manifest = convert_source(spec, root, args.out, progress=bar.update)
            except Exception as error:
                error.add_note(spec.name)  # the one-line error names the source
                raise
        manifests.append(manifest)
        if manifest["absent_splits"]:
            absent = "; ".join(f"{split} ({what})" for split, what in manifest["absent_splits"].items())
            print(f"{spec.name}: converted without its absent splits: {absent}", file=sys.stderr)
    if args.all and manifests:
        merged = build_mmrs_1m(args.out, [m["source"] for m in manifests])
        print(f"mmrs_1m: {merged['records']:,} records, {merged['rounds']:,} rounds -> "
              f"{join(args.out, 'mmrs_1m.json')}")
    print(statistics_table(manifests))
    return 0


def _chat(args: argparse.Namespace) -> int:
    # The model folder and the image are checked before torch is imported or the model loaded: a mistake is
    # answered in a second, not after the half minute those take.
    from mmrs.imaging import read_pixels
    from models.weights import check_model_folder

    check_model_folder(args.model)
    path = Path(args.image)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = read_pixels(path.read_bytes(), args.max_image_pixels, str(path))

    from models.inference import ChatSession, GenerationOptions
    from models.io import load_model

    model, tokenizer = load_model(args.model)
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


def _load_settings(args: argparse.Namespace):
    from pipelines.settings import load_settings, parse_override

    return load_settings(args.profile, dict(parse_override(item) for item in args.set or []))


def _settings(args: argparse.Namespace) -> int:
    import yaml

    from pipelines.settings import settings_document

    print(yaml.safe_dump(settings_document(_load_settings(args)), sort_keys=False), end="")
    return 0


def _sources(args: argparse.Namespace) -> int:
    from mmrs.registry import SOURCES
    from mmrs.shards import join

    settings = _load_settings(args)
    enabled = set(settings.mmrs.enabled)
    rows = [("source", "in profile", "modality", "tasks", "release folder")]
    for name, spec in SOURCES.items():
        root = settings.storage.raw_roots.get(name) or join(settings.storage.raw, spec.release_folder)
        rows.append((name, "yes" if name in enabled else "no", spec.modality, ", ".join(spec.tasks), root))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _train(args: argparse.Namespace) -> int:
    import json

    from mmrs.storage import SourceRoot
    from models.stages import TrainingContext, register_model, run_stage, train_tokenizer

    settings = _load_settings(args)
    layout = settings.storage.model_layout()
    ctx = TrainingContext(settings.train, layout, settings.storage.mmrs, settings.mlflow, settings.compute,
                          tags={"launched_by": "earthgpt train"})
    if args.stage == "text" and not settings.train.trains_text:
        print("error: the paper preset has no text stage (it starts from LLaMA-2)", file=sys.stderr)
        return 2
    if not SourceRoot(layout.tokenizer).exists("tokenizer_config.json"):
        print(f"training the tokenizer first -> {layout.tokenizer}", file=sys.stderr)
        train_tokenizer(ctx)
    outcome = run_stage(ctx, args.stage)
    summary = {"stage": outcome.stage, "run_id": outcome.run_id, "run_key": outcome.run_key,
               "steps": outcome.steps, "reused": outcome.reused, "resumed": outcome.resumed,
               "loss_last": outcome.losses[-1] if outcome.losses else None, "model_dir": outcome.model_dir}
    if args.stage == "stage3":
        registration = register_model(ctx, outcome)
        summary["registered_model"] = f"{registration['registered_model']} v{registration['version']}"
    print(json.dumps(summary))
    return 0



def _benchmarks(args: argparse.Namespace) -> int:
    import json

    from evaluation.scoring import benchmark_listing

    rows = benchmark_listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<29} {'table':<5} {'source':<14} {'split':<10} {'task':<14} {'setting':<10} metrics")
    for r in rows:
        print(f"{r['name']:<29} {r['table']:<5} {r['source']:<14} {r['split']:<10} {r['task']:<14} "
              f"{r['setting']:<10} {', '.join(r['metrics'])}")
    return 0


def _score(args: argparse.Namespace) -> int:
    import json

    from evaluation.predictions import EvaluationInputError
    from evaluation.scoring import score_files

    try:
        result = score_files(args.benchmark, args.references, args.predictions, train=args.train,
                             clip_model=args.clip, image_root=args.images)
    except EvaluationInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), ensure_ascii=False))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from evaluation.predictions import EvaluationInputError, prediction_lines, read_predictions, read_references
    from evaluation.scoring import benchmarks_for, image_root_of
    from mmrs.shards import atomic_write_bytes

    try:
        records = read_references(args.references)
        benchmarks = benchmarks_for(records, args.benchmark)
        image_root = args.images or image_root_of(args.references)
        if image_root is None:
            raise EvaluationInputError(f"no manifest.json beside {args.references}: give --images ROOT")
        out = Path(args.out)
        done = read_predictions(str(out), resume=True) if out.exists() else {}
    except EvaluationInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import torch

    from evaluation.predict import predict_benchmark
    from models.io import load_model
    from models.weights import MissingWeightsError

    try:
        model, tokenizer = load_model(args.model, args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (MissingWeightsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    atomic_write_bytes(str(out), prediction_lines(done.values()).encode("utf-8"))  # drops a line cut short
    resumed, written = len(done), 0
    with out.open("a", encoding="utf-8") as f:
        for benchmark in benchmarks:
            for prediction in tqdm(predict_benchmark(benchmark, model, tokenizer, image_root, records,
                                                     batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                                     done=done), desc=benchmark.name, unit="answer",
                                   disable=args.quiet):
                f.write(prediction_lines([prediction]))
                f.flush()
                written += 1
    print(f"{written} answers written, {resumed} kept from before, for {', '.join(b.name for b in benchmarks)} "
          f"-> {out}", file=sys.stderr)
    return 0


_ID_HELP = """prediction ids are "<record id>#<n>": #0 for the one question of a classification, captioning or
direct detection record; the record's n-th question (VQA, target.qa) or referring expression (grounding,
target.referrals), counted from 0; count-then-detect: #count (how many?) and #after_count (the detection
asked next, with the count as a hint)."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from mmrs.imaging import MAX_IMAGE_PIXELS

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
    sample.add_argument("--workers", type=_positive_int, default=1, help="datasets generated in parallel")
    sample.add_argument("--quiet", action="store_true", help="no progress bar")
    sample.set_defaults(func=_sample_data)

    convert = commands.add_parser("convert", help="convert source datasets into MMRS-1M shards")
    convert.add_argument("source", nargs="?", help="snake_case source name, e.g. dota, dior_rsvg, rsvqa_hr")
    convert.add_argument("--all", action="store_true", help="every registered source found under --root")
    convert.add_argument("--root", required=True,
                         help="the dataset's own top folder (with --all: the folder holding them), local or s3://")
    convert.add_argument("--out", required=True, help="output folder, local or s3://")
    convert.add_argument("--only", nargs="+", metavar="SOURCE", help="with --all: only these sources")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(func=_convert)

    settings_options = argparse.ArgumentParser(add_help=False)
    settings_options.add_argument("--profile", help="params.yaml profile (default: $EARTHGPT_PROFILE, else the "
                                                     "file's `profile`)")
    settings_options.add_argument("--set", action="append", metavar="KEY=VALUE",
                                  help="override one setting, e.g. --set train.stage3.lr=0.02 (repeatable; the "
                                       "value is read as YAML)")

    train = commands.add_parser("train", parents=[settings_options],
                                help="train one stage with the profile's settings (what the Dagster assets run)")
    train.add_argument("--stage", required=True, choices=["text", "stage2", "stage3"],
                       help="text: the tiny preset's LLM stand-in; stage2: alignment; stage3: instruction tuning")
    train.set_defaults(func=_train)

    sources = commands.add_parser("sources", parents=[settings_options],
                                  help="the registered sources: modality, tasks, release folder, in the profile?")
    sources.set_defaults(func=_sources)

    show = commands.add_parser("settings", parents=[settings_options],
                               help="print the resolved settings of a profile (YAML)")
    show.set_defaults(func=_settings)

    chat = commands.add_parser("chat", help="talk with a trained model about one image (multi-turn)")
    chat.add_argument("--model", required=True, help="saved model folder (local or s3://)")
    chat.add_argument("--image", required=True, help="image file (RGB, single-channel or 16-bit TIFF)")
    chat.add_argument("--prompt", help="ask this one question, print the answer and exit")
    chat.add_argument("--max-new-tokens", type=_positive_int, default=128)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    chat.add_argument("--max-image-pixels", type=_positive_int, default=MAX_IMAGE_PIXELS,
                      help=f"refuse images whose header announces more pixels (default {MAX_IMAGE_PIXELS:,})")
    chat.set_defaults(func=_chat)

    listing = commands.add_parser("benchmarks", help="list the paper's benchmarks (table, source, split, metrics)")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(func=_benchmarks)

    predict = commands.add_parser(
        "predict", help="answer the benchmark questions of a converted shard (REF) with a saved model",
        description="Writes PRED (JSON Lines, one {id, answer[, box_scores]} per line) for every benchmark "
                    "over REF's source and split (or --benchmark). An existing PRED is resumed: answered ids "
                    "are not asked again. " + _ID_HELP)
    predict.add_argument("--model", required=True, help="saved model folder (local or s3://)")
    predict.add_argument("--references", required=True, metavar="REF.jsonl", help="a converted MMRS shard")
    predict.add_argument("--out", required=True, metavar="PRED.jsonl", help="predictions file (resumed if present)")
    predict.add_argument("--batch-size", type=_positive_int, default=32)
    predict.add_argument("--benchmark", nargs="+", metavar="NAME", help="only these benchmarks")
    predict.add_argument("--images", metavar="ROOT", help="image root (default: from REF's manifest.json)")
    predict.add_argument("--max-new-tokens", type=_positive_int, help="default: per task (detection 384/640)")
    predict.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(func=_predict)

    score = commands.add_parser(
        "score", help="score a model's answers (PRED) against a converted shard (REF); prints one JSON object",
        description="Prints the benchmark's result as one JSON object (metrics, image-blind baseline, parse "
                    "failures, notes), the same numbers and names as the evaluation assets. Missing, unknown "
                    "or duplicate ids and malformed lines are an error (exit status 2). " + _ID_HELP)
    score.add_argument("benchmark", help="benchmark name (earthgpt benchmarks)")
    score.add_argument("--references", required=True, metavar="REF.jsonl", help="a converted MMRS shard")
    score.add_argument("--predictions", required=True, metavar="PRED.jsonl", help="one {id, answer} per line")
    score.add_argument("--train", nargs="+", metavar="TRAIN.jsonl",
                       help="training shard(s) for the image-blind baseline (default: the evaluated split's "
                            "statistics)")
    score.add_argument("--clip", metavar="DIR", help="CLIP model folder: detection confidence by CLIP similarity")
    score.add_argument("--images", metavar="ROOT", help="image root for --clip (default: from REF's manifest.json)")
    score.set_defaults(func=_score)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (anywhere on the "
                                                             "command line)")
    return parser


def exit_status(error: BaseException) -> int:
    """2 for bad input, 1 for a failure of the environment or of the program (module docstring)."""
    from mmrs.storage import is_environment_error

    if is_environment_error(error):
        return 1
    if isinstance(error, ValueError | FileNotFoundError | NotADirectoryError | IsADirectoryError | KeyError):
        return 2  # missing or malformed input, wrong settings or names (SettingsError, UnsafePathError, ... are
        #           ValueErrors; an unknown source or profile a KeyError)
    return 1


def describe(error: BaseException) -> str:
    """The one line an error is reported as: what it was about (the source being converted), its kind when it
    is not bad input, and its message."""
    from mmrs.storage import is_environment_error

    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    if is_environment_error(error):
        text = f"environment: {text}"
    elif exit_status(error) == 1:
        text = f"{type(error).__name__}: {text}"
    notes = getattr(error, "__notes__", None)
    return f"{': '.join(notes)}: {text}" if notes else text


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (--debug shows the traceback)"
        print(f"error: {describe(error)}{hint if exit_status(error) == 1 else ''}", file=sys.stderr)
        return exit_status(error)


if __name__ == "__main__":
    raise SystemExit(main())
