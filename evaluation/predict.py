"""Answers of a model to single-turn questions about images, in batches (each image decoded once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.earthgpt import EarthGPT
from models.image_transform import load_record_image, preprocess
from models.inference import GenerationOptions, predict
from models.tokenization import encode_prompt


@dataclass(frozen=True)
class Question:
    image: str  # relative to the image root, as in the record
    prompt: str  # the instruction exactly as in training (templates.py wording)


def answer_questions(model: EarthGPT, tokenizer, image_root: str, questions: Sequence[Question],
                     batch_size: int = 32, max_new_tokens: int = 48) -> list[str]:
    """One greedy answer per question, in the given order. Questions are batched by prompt length (less
    left padding); images are decoded once per batch even when several questions share one."""
    options = GenerationOptions(max_new_tokens=max_new_tokens)
    prompts = [encode_prompt(tokenizer, [], q.prompt) for q in questions]
    order = sorted(range(len(questions)), key=lambda i: (len(prompts[i]), i))
    answers: list[str] = [""] * len(questions)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        decoded: dict[str, torch.Tensor] = {}
        for i in chunk:
            image = questions[i].image
            if image not in decoded:
                decoded[image] = preprocess(load_record_image(image_root, image), model.config)
        pixels = torch.stack([decoded[questions[i].image] for i in chunk])
        for i, answer in zip(chunk, predict(model, tokenizer, pixels, [prompts[i] for i in chunk], options),
                             strict=True):
            answers[i] = answer
    return answers
