"""Converted sample-corpus sources and a tiny random model, shared by the evaluation tests."""

import json

import pytest
import torch

from models.config import tiny
from models.earthgpt import EarthGPT
from models.io import save_model
from models.tokenization import train_bpe_tokenizer

EVALUATED = ("rsvqa_hr", "nwpu_captions", "mar20", "dior_rsvg", "clrs")


@pytest.fixture(scope="session")
def converted(sample_corpus):
    """MMRS output folder with these sources of the sample corpus, converted."""
    return sample_corpus(EVALUATED) / "mmrs"


@pytest.fixture(scope="session")
def model_and_tokenizer(converted):
    texts = [t["value"] for path in sorted(converted.rglob("train-*.jsonl")) for line in path.open()
             for t in json.loads(line)["conversations"]]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=400)
    torch.manual_seed(0)
    config = tiny()
    config.llm.vocab_size = len(tokenizer)
    return EarthGPT(config).eval(), tokenizer


@pytest.fixture(scope="session")
def model_dir(model_and_tokenizer, tmp_path_factory):
    """The tiny model saved as a model folder (what `earthgpt predict --model` reads)."""
    return save_model(*model_and_tokenizer, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="session")
def shard(converted):
    """shard(source, split) -> the records of that converted shard, in file order."""
    def read(source, split):
        return [json.loads(line) for line in (converted / source / f"{split}-00000.jsonl").open()]
    return read


def _boxes_text(boxes, decimals=2):
    return "[" + ";".join(",".join(f"{c:.{decimals}f}" for c in b) for b in boxes) + "]"


def crafted_answers(benchmark, records):
    """Answers a partly right model would give, by question id, for any benchmark: right, wrong, missing
    boxes, false boxes, unparsable text. Detection HBB answers carry box_scores (a log-probability
    ranking), OBB ones none (equal scores)."""
    from evaluation.benchmarks import after_count_id, benchmark_records, count_id, questions
    from evaluation.predictions import Prediction

    records = benchmark_records(benchmark, records)
    answers = {}
    if benchmark.task == "vqa":
        for n, q in enumerate(questions(benchmark, records)):
            record_id, _, i = q.id.rpartition("#")
            truth = next(r for r in records if r["id"] == record_id)["target"]["qa"][int(i)]["answer"]
            answers[q.id] = Prediction(q.id, truth if n % 3 else "yes")
    elif benchmark.task == "grounding":
        for n, q in enumerate(questions(benchmark, records)):
            record_id, _, i = q.id.rpartition("#")
            x1, y1, x2, y2 = next(r for r in records if r["id"] == record_id)["target"]["referrals"][int(i)]["box_norm"]
            shift = (x2 - x1) * (n % 4) / 6
            text = "no idea" if n % 5 == 4 else _boxes_text([(x1 + shift, y1, x2 + shift, y2)], 4)
            answers[q.id] = Prediction(q.id, text)
    elif benchmark.task == "captioning":
        for n, (q, r) in enumerate(zip(questions(benchmark, records), records, strict=True)):
            answers[q.id] = Prediction(q.id, r["target"]["captions"][n % len(r["target"]["captions"])])
    else:
        for n, r in enumerate(records):
            boxes = [tuple(b) for b in r["target"]["boxes_norm"]][: max(1, len(r["target"]["boxes_norm"]) - n % 2)]
            if n % 3 == 0:
                boxes.append((0.01, 0.01, 0.05, 0.01, 0.05, 0.04, 0.01, 0.04) if benchmark.oriented
                             else (0.01, 0.01, 0.05, 0.04))
            text = f"There are {len(boxes)} planes {_boxes_text(boxes)} in the image."
            scores = tuple(-0.1 * ((k * 7 + n) % 5) for k in range(len(boxes))) if not benchmark.oriented else None
            if benchmark.prompting == "count_then_detect":
                answers[count_id(r["id"])] = Prediction(count_id(r["id"]), str(len(r["target"]["boxes_norm"]) + n % 2))
                answers[after_count_id(r["id"])] = Prediction(after_count_id(r["id"]), text, scores)
            else:
                answers[f"{r['id']}#0"] = Prediction(f"{r['id']}#0", text, scores)
    return answers


@pytest.fixture(scope="session")
def crafted():
    return crafted_answers
