"""run_benchmark on converted sample-corpus sources with a small random model: what is asked, what is
scored, and the baselines. (That a trained model beats the baselines is the demo's evaluation_report.)"""

import json

import pytest
import torch

from evaluation.benchmarks import BENCHMARKS, BenchmarkResult, run_benchmark
from evaluation.report import render_report
from mmrs.build import convert_source
from mmrs.registry import SOURCES
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from models.config import tiny
from models.earthgpt import EarthGPT
from models.tokenization import train_bpe_tokenizer


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    for name in ("rsvqa_hr", "nwpu_captions"):
        generate_dataset(name, root / "raw")
        convert_source(SOURCES[name], str(root / "raw" / DATASETS[name].folder), str(root / "mmrs"))
    return root / "mmrs"


@pytest.fixture(scope="module")
def model_and_tokenizer(converted):
    texts = [t["value"] for path in converted.rglob("train-*.jsonl") for line in path.open()
             for t in json.loads(line)["conversations"]]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=400)
    torch.manual_seed(0)
    config = tiny()
    config.llm.vocab_size = len(tokenizer)
    return EarthGPT(config).eval(), tokenizer


def _records(converted, source, split):
    return [json.loads(line) for line in (converted / source / f"{split}-00000.jsonl").open()]


def test_rsvqa_hr_test_set_2_asks_presence_and_comparison_questions_only(converted, model_and_tokenizer):
    result = run_benchmark(BENCHMARKS["rsvqa_hr_phili"], *model_and_tokenizer, str(converted), max_new_tokens=4)
    kept = [qa for r in _records(converted, "rsvqa_hr", "test_phili") for qa in r["target"]["qa"]
            if qa["type"] in ("presence", "comp")]
    assert result.samples == len(kept) > 0
    assert {"presence", "comp", "OA", "presence balanced", "comp balanced"} <= set(result.metrics)
    assert result.baseline["presence balanced"] == 50.0  # a constant answer on yes/no questions
    answers = [qa["answer"] for r in _records(converted, "rsvqa_hr", "train") for qa in r["target"]["qa"]
               if qa["type"] == "presence"]
    majority = max(set(answers), key=answers.count)
    truth = [qa["answer"] for qa in kept if qa["type"] == "presence"]
    assert result.baseline["presence"] == pytest.approx(100 * truth.count(majority) / len(truth))


def test_captioning_scores_every_test_image_against_the_constant_caption(converted, model_and_tokenizer):
    result = run_benchmark(BENCHMARKS["nwpu_captions"], *model_and_tokenizer, str(converted), max_new_tokens=8)
    assert result.samples == len(_records(converted, "nwpu_captions", "test"))
    assert set(result.metrics) == set(result.baseline) == {"BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR",
                                                            "ROUGE_L", "CIDEr"}
    assert "constant caption" in result.notes["baseline"]
    report = render_report([BenchmarkResult.from_dict(json.loads(json.dumps(result.to_dict())))])
    assert "| BLEU4 | 65.50 |" in report and "| SPICE | 32.20 | n/a | - |" in report


def test_a_benchmark_without_records_is_a_clear_error(converted, model_and_tokenizer):
    with pytest.raises(ValueError, match="no converted nwpu_resisc45"):
        run_benchmark(BENCHMARKS["nwpu_resisc45"], *model_and_tokenizer, str(converted))
