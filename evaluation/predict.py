"""A model's answers to a benchmark's questions, in batches (each image decoded once per batch): the only
module of `evaluation` that runs the model.

- `predict_benchmark`: every question of a benchmark -> `Prediction`s, yielded batch by batch so a caller
  can store them as they come and resume (`done`: predictions already stored are not asked again).
- Detection answers also get `box_scores`: the mean log-probability of each box's tokens under the model
  that generated them (teacher-forced on the answer text, re-tokenised as training tokenises answers), the
  confidence AP ranks by when no CLIP model is configured.
- Count-then-detect: the count question first, then the detection question in the same conversation with
  the parsed count as a hint (`mmrs.templates.count_hint_prompt`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from evaluation.benchmarks import DETECTION, Benchmark, Question, after_count_id, benchmark_records, questions
from evaluation.parsing import parse_boxes, parse_count
from evaluation.predictions import Prediction
from mmrs.templates import count_hint_prompt
from models.earthgpt import EarthGPT
from models.image_transform import load_record_image, preprocess
from models.inference import GenerationOptions, predict
from models.tokenization import encode_prompt

# long enough for each task's answers: a detection answer writes ~12 (HBB) or ~24 (OBB) tokens per box
MAX_NEW_TOKENS = {"classification": 48, "captioning": 48, "vqa": 48, "grounding": 48,
                  "detection_hbb": 384, "detection_obb": 640}


def generation_settings(benchmark: Benchmark, max_new_tokens: int | None = None) -> dict[str, Any]:
    """What decides the answers besides the model and the data (a key for cached predictions)."""
    return {"decoding": "greedy", "max_new_tokens": max_new_tokens or MAX_NEW_TOKENS[benchmark.task],
            "prompting": benchmark.prompting, "box_scores": "mean token log-probability"
            if benchmark.task in DETECTION else None}


def _pixels(model: EarthGPT, image_root: str, images: Sequence[str]) -> torch.Tensor:
    decoded: dict[str, torch.Tensor] = {}
    for image in images:
        if image not in decoded:
            decoded[image] = preprocess(load_record_image(image_root, image), model.config)
    return torch.stack([decoded[image] for image in images])


def iter_answers(model: EarthGPT, tokenizer, image_root: str, questions_: Sequence[Question], batch_size: int = 32,
                 max_new_tokens: int = 48) -> Iterator[list[tuple[int, str]]]:
    """Greedy answers, one batch at a time: [(index into questions_, answer)]. Questions are batched by
    prompt length (less left padding)."""
    options = GenerationOptions(max_new_tokens=max_new_tokens)
    prompts = [encode_prompt(tokenizer, q.history, q.prompt) for q in questions_]
    order = sorted(range(len(questions_)), key=lambda i: (len(prompts[i]), i))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        pixels = _pixels(model, image_root, [questions_[i].image for i in chunk])
        yield list(zip(chunk, predict(model, tokenizer, pixels, [prompts[i] for i in chunk], options), strict=True))


@torch.no_grad()
def box_log_probs(model: EarthGPT, tokenizer, image_root: str, questions_: Sequence[Question],
                  answers: Sequence[str], oriented: bool, batch_size: int = 8) -> list[tuple[float, ...]]:
    """Per answer, the mean log-probability of each parsed box's tokens (those overlapping the box's
    characters), the answer fed back after its question as training feeds it (" " + answer)."""
    out: list[tuple[float, ...]] = []
    for start in range(0, len(questions_), batch_size):
        qs, texts = questions_[start:start + batch_size], answers[start:start + batch_size]
        spans = [parse_boxes(a, oriented).spans for a in texts]
        if not any(spans):
            out += [()] * len(qs)
            continue
        prompts = [encode_prompt(tokenizer, q.history, q.prompt) for q in qs]
        encoded = [tokenizer(" " + a, add_special_tokens=False, return_offsets_mapping=True) for a in texts]
        rows = [p + e["input_ids"] for p, e in zip(prompts, encoded, strict=True)]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # right padding: positions count from the first token
            ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
        device = next(model.parameters()).device
        pixels = _pixels(model, image_root, [q.image for q in qs]).to(device)
        logits = model(pixels, ids.to(device), mask.to(device)).logits
        visual = logits.shape[1] - width
        for i, (prompt, enc, box_spans) in enumerate(zip(prompts, encoded, spans, strict=True)):
            answer_ids = enc["input_ids"]
            positions = torch.arange(len(answer_ids), device=device) + visual + len(prompt) - 1
            log_probs = torch.log_softmax(logits[i, positions].float(), dim=-1)
            token_lp = log_probs.gather(1, torch.tensor(answer_ids, device=device)[:, None])[:, 0].tolist()
            chars = [(s - 1, e - 1) for s, e in enc["offset_mapping"]]  # offsets in the answer (" " dropped)
            scores = []
            for a, b in box_spans:
                inside = [lp for lp, (s, e) in zip(token_lp, chars, strict=True) if s < b and e > a]
                scores.append(sum(inside) / len(inside) if inside else sum(token_lp) / len(token_lp))
            out.append(tuple(scores))
    return out


def predict_benchmark(benchmark: Benchmark, model: EarthGPT, tokenizer, image_root: str,
                      records: Sequence[Mapping[str, Any]], batch_size: int = 32, max_new_tokens: int | None = None,
                      done: Mapping[str, Prediction] | None = None) -> Iterator[Prediction]:
    """Every answer the benchmark needs (`benchmarks.question_ids`), yielded as each batch is generated;
    ids in `done` are not asked again (their answers still feed count-then-detect's second question)."""
    done = dict(done or {})
    limit = max_new_tokens or MAX_NEW_TOKENS[benchmark.task]
    first = questions(benchmark, records)
    detection = benchmark.task in DETECTION and benchmark.prompting == "direct"
    yield from _ask(model, tokenizer, image_root, [q for q in first if q.id not in done], batch_size, limit,
                    benchmark.oriented if detection else None, done)
    if benchmark.prompting != "count_then_detect":
        return
    follow = []
    for record, question in zip(benchmark_records(benchmark, records), first, strict=True):
        count = parse_count(done[question.id].answer).value
        follow.append(Question(after_count_id(record["id"]), record["image"],
                               count_hint_prompt(benchmark.detect_class, count, benchmark.oriented),
                               history=((question.prompt, done[question.id].answer),)))
    yield from _ask(model, tokenizer, image_root, [q for q in follow if q.id not in done], batch_size, limit,
                    benchmark.oriented, done)


def _ask(model, tokenizer, image_root, todo: list[Question], batch_size: int, max_new_tokens: int,
         oriented: bool | None, done: dict[str, Prediction]) -> Iterator[Prediction]:
    """Answers of `todo` (with box log-probabilities when `oriented` is not None), recorded in `done`."""
    for batch in iter_answers(model, tokenizer, image_root, todo, batch_size, max_new_tokens):
        asked, answers = [todo[i] for i, _ in batch], [a for _, a in batch]
        scores: list[tuple[float, ...] | None] = [None] * len(batch)
        if oriented is not None:
            scores = list(box_log_probs(model, tokenizer, image_root, asked, answers, oriented,
                                        batch_size=min(batch_size, 8)))
        for question, answer, box_scores in zip(asked, answers, scores, strict=True):
            done[question.id] = prediction = Prediction(question.id, answer, box_scores)
            yield prediction
