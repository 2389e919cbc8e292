"""run_benchmark on converted sample-corpus sources with a small random model, and score_benchmark on
answers of known quality: what is asked, what is scored, the baselines. (That a trained model beats the
baselines is the demo's paper_tables.)"""

import json

import pytest

from evaluation.benchmarks import (
    BENCHMARKS,
    Benchmark,
    BenchmarkResult,
    Question,
    classification_aliases,
    load_benchmark_data,
    question_ids,
    questions,
    run_benchmark,
    score_benchmark,
)
from evaluation.predictions import EvaluationInputError, Prediction
from evaluation.tables import benchmark_table
from mmrs.templates import reference_categories


def test_the_registry_holds_every_table_of_the_paper():
    assert {b.table for b in BENCHMARKS.values()} == {"II", "III", "IV", "V", "VI", "VII", "VIII", "IX"}
    assert BENCHMARKS["dior_rsvg"].paper["cIoU"] == 81.54
    assert BENCHMARKS["mar20_obb"].paper == {"AP@40": 90.53, "AP@50": 87.86}
    assert BENCHMARKS["mar20_hbb_count_then_detect"].metrics == ("AP@40", "AP@50", "count accuracy")


def test_rsvqa_hr_test_set_2_asks_presence_and_comparison_questions_only(converted, model_and_tokenizer, shard):
    result = run_benchmark(BENCHMARKS["rsvqa_hr_phili"], *model_and_tokenizer, str(converted), max_new_tokens=4)
    kept = [qa for r in shard("rsvqa_hr", "test_phili") for qa in r["target"]["qa"]
            if qa["type"] in ("presence", "comp")]
    assert result.samples == result.answers == len(kept) > 0
    assert {"presence", "comp", "OA", "presence balanced", "comp balanced"} <= set(result.metrics)
    assert result.baseline["presence balanced"] == 50.0  # a constant answer on yes/no questions
    answers = [qa["answer"] for r in shard("rsvqa_hr", "train") for qa in r["target"]["qa"]
               if qa["type"] == "presence"]
    majority = max(set(answers), key=answers.count)
    truth = [qa["answer"] for qa in kept if qa["type"] == "presence"]
    assert result.baseline["presence"] == pytest.approx(100 * truth.count(majority) / len(truth))


def test_captioning_scores_every_test_image_against_the_constant_caption(converted, model_and_tokenizer, shard):
    result = run_benchmark(BENCHMARKS["nwpu_captions"], *model_and_tokenizer, str(converted), max_new_tokens=8)
    assert result.samples == len(shard("nwpu_captions", "test"))
    assert set(result.metrics) == set(result.baseline) == {"BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR",
                                                            "ROUGE_L", "CIDEr"}
    assert "constant caption" in result.notes["baseline"]
    table = benchmark_table(BenchmarkResult.from_dict(json.loads(json.dumps(result.to_dict()))))
    assert "| BLEU4 | 65.50 |" in table and "| SPICE | 32.20 | n/a | - |" in table


def test_grounding_and_detection_run_with_the_model_and_count_parse_failures(converted, model_and_tokenizer):
    for name in ("dior_rsvg", "mar20_hbb", "mar20_obb_count_then_detect"):
        result = run_benchmark(BENCHMARKS[name], *model_and_tokenizer, str(converted), max_new_tokens=12)
        assert set(result.metrics) == set(BENCHMARKS[name].metrics)
        asked = 2 if BENCHMARKS[name].prompting == "count_then_detect" else 1
        assert sum(result.parse_failures.values()) <= result.answers == asked * result.samples > 0
    # a random model writes no boxes: every answer is a parse failure, and AP is 0
    assert result.parse_failure_percent() == 100.0 and result.metrics["AP@50"] == 0.0


def test_grounding_scores_answers_by_question_with_the_mean_training_box_as_baseline(converted, crafted):
    benchmark = BENCHMARKS["dior_rsvg"]
    data = load_benchmark_data(benchmark, str(converted))
    answers = crafted(benchmark, data.records)
    result = score_benchmark(benchmark, data.records, answers, data.train)
    questions = sum(len(r["target"]["referrals"]) for r in data.records)
    assert result.samples == questions and result.parse_failures == {"no box": len(range(4, questions, 5))}
    assert 0 < result.metrics["Pr@0.9"] < result.metrics["Pr@0.5"] < 100
    assert result.metrics["mIoU"] > result.baseline["mIoU"] > 0
    assert "mean training box" in result.notes["baseline"]
    assert run_benchmark(benchmark, None, None, str(converted), predictions=answers).to_dict() == result.to_dict()


def test_detection_scores_every_box_as_a_plane_with_the_chosen_confidence(converted, crafted):
    for name, confidence in (("mar20_hbb", "log-probability"), ("mar20_obb", "equal scores")):
        benchmark = BENCHMARKS[name]
        data = load_benchmark_data(benchmark, str(converted))
        result = score_benchmark(benchmark, data.records, crafted(benchmark, data.records), data.train)
        assert confidence in result.notes["confidence"]
        assert result.samples == len(data.records) and result.parse_failures == {}
        assert 50 < result.metrics["AP@50"] <= result.metrics["AP@40"] < 100
        assert result.notes["truths"] == sum(len(r["target"]["boxes_norm"]) for r in data.records)
        assert list(result.notes["pr_curves"]["AP@50"]) == ["plane"]
        assert result.baseline["AP@50"] < result.metrics["AP@50"]
        assert "mean training size" in result.notes["baseline"]


def test_count_then_detect_scores_the_detection_after_the_count_and_the_count_itself(converted, crafted):
    benchmark = BENCHMARKS["mar20_hbb_count_then_detect"]
    data = load_benchmark_data(benchmark, str(converted))
    answers = crafted(benchmark, data.records)
    result = score_benchmark(benchmark, data.records, answers, data.train)
    direct = score_benchmark(BENCHMARKS["mar20_hbb"], data.records, crafted(BENCHMARKS["mar20_hbb"], data.records),
                             data.train)
    assert result.metrics["AP@50"] == direct.metrics["AP@50"]  # the same detection answers
    assert result.metrics["count accuracy"] == pytest.approx(100 * len(range(0, len(data.records), 2))
                                                             / len(data.records))


def test_missing_and_unknown_ids_are_errors_not_partial_scores(converted, crafted):
    benchmark = BENCHMARKS["mar20_obb"]
    data = load_benchmark_data(benchmark, str(converted))
    answers = crafted(benchmark, data.records)
    first = question_ids(benchmark, data.records)[0]
    with pytest.raises(EvaluationInputError, match=f"1 of {len(data.records)} questions have no prediction"):
        score_benchmark(benchmark, data.records, {k: v for k, v in answers.items() if k != first})
    with pytest.raises(EvaluationInputError, match="1 prediction ids match no question"):
        score_benchmark(benchmark, data.records, {**answers, "mar20/test/x/detection_obb#0": Prediction("x", "")})
    # answers to the other MAR20 benchmarks over the same records are not unknown
    siblings = {**answers, **crafted(BENCHMARKS["mar20_obb_count_then_detect"], data.records)}
    assert score_benchmark(benchmark, data.records, siblings).metrics == score_benchmark(
        benchmark, data.records, answers).metrics


def test_classification_is_scored_with_the_alias_table(converted, crafted):
    benchmark = BENCHMARKS["clrs"]
    data = load_benchmark_data(benchmark, str(converted))
    aliases = classification_aliases(benchmark, ["port", "storage tank", "parking", "bare land"])
    assert aliases == {"ports": "port", "storage tanks": "storage tank", "parkings": "parking",
                       "bare lands": "bare land", "harbor": "port", "harbour": "port", "parking lot": "parking"}
    said = {"port": "Harbor.", "storage-tank": "storage tanks", "bare-land": "Bare_Land", "parking": "parkinglot"}
    answers = {f"{r['id']}#0": Prediction(f"{r['id']}#0", said.get(r["target"]["label"], r["target"]["label"]))
               for r in data.records}
    result = score_benchmark(benchmark, data.records, answers)
    wrong = sum(r["target"]["label"] == "parking" for r in data.records)  # "parkinglot" is no class
    assert result.metrics["Top-1"] == pytest.approx(100 * (len(data.records) - wrong) / len(data.records))
    assert result.parse_failures == {"names no class": wrong} and wrong > 0
    assert result.notes["confusion_matrix"]["matrix"][-1][-1] == 0


def test_a_benchmark_without_records_is_a_clear_error(converted, model_and_tokenizer):
    with pytest.raises(ValueError, match="no converted nwpu_resisc45"):
        run_benchmark(BENCHMARKS["nwpu_resisc45"], *model_and_tokenizer, str(converted))


def test_a_reworded_variant_asks_the_same_questions_in_held_out_words(converted):
    base, variant = BENCHMARKS["clrs"], Benchmark(**{**BENCHMARKS["clrs"].__dict__, "name": "clrs_reworded",
                                                     "wording": "reworded"})
    records = load_benchmark_data(base, str(converted)).records
    asked, reworded = questions(base, records), questions(variant, records)
    assert [q.image for q in reworded] == [q.image for q in asked]
    assert [q.id.replace("#r", "#") for q in reworded] == [q.id for q in asked]
    assert reworded[0].prompt.startswith("Which scene does this remote sensing image show? Choose one of: ")
    assert reference_categories(asked[0].prompt) == reworded[0].prompt.split(": ", 1)[1].rstrip(".").split(", ")
    # the same answers under the held-out ids score the same
    said = [r["target"]["label"] if n % 3 else "forest" for n, r in enumerate(records)]
    answers = {q.id: Prediction(q.id, a) for q, a in zip(asked, said, strict=True)}
    moved = {q.id: Prediction(q.id, a) for q, a in zip(reworded, said, strict=True)}
    assert score_benchmark(variant, records, moved).metrics == score_benchmark(base, records, answers).metrics
    assert 0 < score_benchmark(variant, records, moved).metrics["Top-1"] < 100


def test_the_registry_rewords_vqa_without_the_answer_format_sentence(converted):
    variant = BENCHMARKS["crsvqa_reworded"]
    assert variant.wording == "reworded" and variant.paper == BENCHMARKS["crsvqa"].paper
    records = [{"id": "crsvqa/test/1/vqa", "task": "vqa", "image": "1.png",
                "target": {"qa": [{"question": "Is there a ship?", "answer": "yes", "type": "presence"}]}}]
    assert questions(variant, records) == [Question("crsvqa/test/1/vqa#r0", "1.png", "Is there a ship?")]
    assert question_ids(BENCHMARKS["crsvqa"], records) == ["crsvqa/test/1/vqa#0"]


def test_only_classification_captioning_and_vqa_have_held_out_wordings():
    with pytest.raises(ValueError, match="no held-out wording for grounding"):
        Benchmark(**{**BENCHMARKS["dior_rsvg"].__dict__, "wording": "reworded"})
    with pytest.raises(ValueError, match="wording must be one of"):
        Benchmark(**{**BENCHMARKS["clrs"].__dict__, "wording": "casual"})
