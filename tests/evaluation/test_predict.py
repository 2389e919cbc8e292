"""Answers of the model to a benchmark's questions: ids, count-then-detect, resuming, box log-probabilities."""

import math

import pytest
import torch

from evaluation.benchmarks import Question, load_benchmark_data, question_ids
from evaluation.parsing import parse_count, parse_hbbs
from evaluation.predict import box_log_probs, predict_benchmark
from evaluation.scoring import get_benchmark
from models.earthgpt import IGNORE_INDEX
from models.image_transform import load_record_image, preprocess
from models.tokenization import encode_prompt

ANSWER = "There are two planes [0.10,0.20,0.30,0.40;0.50,0.60,0.70,0.80] in the image."


def test_box_log_probs_are_the_models_mean_log_probability_of_each_boxs_tokens(converted, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    data = load_benchmark_data(get_benchmark("mar20_hbb"), str(converted))
    question = Question("q#0", data.records[0]["image"], "Detect all planes shown in the image and describe using "
                                                         "horizontal bounding boxes.")
    other = Question("p#0", data.records[1]["image"], "How many planes are there in the image?")
    scores = box_log_probs(model, tokenizer, data.image_root, [question, other, question],
                           [ANSWER, "none", "[0.10,0.20,0.30,0.40]"], oriented=False)
    assert len(scores[0]) == 2 and scores[1] == () and len(scores[2]) == 1
    assert all(s < 0 and math.isfinite(s) for s in scores[0])
    # each box's score is minus the model's own loss with only that box's tokens labelled
    prompt = encode_prompt(tokenizer, [], question.prompt)
    encoded = tokenizer(" " + ANSWER, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([prompt + encoded["input_ids"]])
    pixels = preprocess(load_record_image(data.image_root, question.image), model.config)[None]
    for (start, end), score in zip(parse_hbbs(ANSWER).spans, scores[0], strict=True):
        labels = torch.full_like(ids, IGNORE_INDEX)
        for j, (s, e) in enumerate(encoded["offset_mapping"]):
            if s - 1 < end and e - 1 > start:
                labels[0, len(prompt) + j] = ids[0, len(prompt) + j]
        with torch.no_grad():
            loss = model(pixels, ids, torch.ones_like(ids), labels=labels).loss
        assert score == pytest.approx(-loss.item(), abs=1e-4)


def test_count_then_detect_asks_the_count_then_detection_with_the_hint_in_the_same_conversation(
        converted, model_and_tokenizer, monkeypatch):
    model, tokenizer = model_and_tokenizer
    benchmark = get_benchmark("mar20_obb_count_then_detect")
    data = load_benchmark_data(benchmark, str(converted))
    asked = []
    import evaluation.predict as predict_module

    real = predict_module.iter_answers

    def recording(model_, tokenizer_, root, questions_, *args, **kwargs):
        asked.extend(questions_)
        yield from real(model_, tokenizer_, root, questions_, *args, **kwargs)

    monkeypatch.setattr(predict_module, "iter_answers", recording)
    predictions = list(predict_benchmark(benchmark, model, tokenizer, data.image_root, data.records, batch_size=4,
                                         max_new_tokens=6))
    by_id = {p.id: p for p in predictions}
    assert sorted(by_id) == sorted(question_ids(benchmark, data.records))
    counts = [q for q in asked if q.id.endswith("#count")]
    follow = [q for q in asked if q.id.endswith("#after_count")]
    assert len(counts) == len(follow) == len(data.records)
    assert counts[0].prompt.startswith("How many planes are there in the image?")
    for question in follow:
        record_id = question.id.rsplit("#", 1)[0]
        count_answer = by_id[f"{record_id}#count"].answer
        assert question.history == ((counts[0].prompt, count_answer),)
        assert question.prompt.endswith("Detect all planes shown in the image and describe using oriented bounding "
                                        "boxes.")
        assert question.prompt.startswith("There") == (parse_count(count_answer).value is not None)
        assert by_id[question.id].box_scores is not None and by_id[f"{record_id}#count"].box_scores is None


def test_predictions_already_made_are_not_asked_again(converted, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    benchmark = get_benchmark("mar20_hbb_count_then_detect")
    data = load_benchmark_data(benchmark, str(converted))
    run = dict(model=model, tokenizer=tokenizer, image_root=data.image_root, records=data.records, batch_size=4,
               max_new_tokens=6)
    full = list(predict_benchmark(benchmark, **run))
    done = {p.id: p for p in full[:len(full) // 2 + 1]}  # interrupted after a few answers
    rest = list(predict_benchmark(benchmark, **run, done=done))
    assert not {p.id for p in rest} & set(done)
    assert {p.id: p for p in [*done.values(), *rest]} == {p.id: p for p in full}
