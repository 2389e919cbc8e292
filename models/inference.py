"""Batched prediction, multi-turn chat sessions and the paper's count-then-detect prompting."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mmrs.templates import count_hint_prompt, count_question, first_count, plural
from models.earthgpt import EarthGPT
from models.image_transform import preprocess
from models.tokenization import encode_prompt


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 64
    do_sample: bool = False  # greedy by default
    temperature: float = 1.0
    top_p: float = 1.0
    use_cache: bool = True


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to (B, T) ids and attention mask: generation continues at the right edge."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq):] = 1
    return ids, mask


def predict(model: EarthGPT, tokenizer, pixels: torch.Tensor, prompts: list[list[int]],
            options: GenerationOptions = GenerationOptions()) -> list[str]:
    """pixels (B, 3, S, S), B prompt id lists -> B answers (text up to end of turn)."""
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    new = model.generate(pixels.to(device), ids.to(device), mask.to(device), max_new_tokens=options.max_new_tokens,
                         do_sample=options.do_sample, temperature=options.temperature, top_p=options.top_p,
                         use_cache=options.use_cache, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]


def answer_questions(model: EarthGPT, tokenizer, images: list[np.ndarray], questions: list[str],
                     options: GenerationOptions = GenerationOptions()) -> list[str]:
    """One single-turn question per image, answered in one batch."""
    pixels = torch.stack([preprocess(image, model.config) for image in images])
    prompts = [encode_prompt(tokenizer, [], q) for q in questions]
    return predict(model, tokenizer, pixels, prompts, options)


@dataclass
class ChatSession:
    """A multi-turn dialogue about one image; the history is replayed as context at every turn."""

    model: EarthGPT
    tokenizer: object
    image: np.ndarray
    options: GenerationOptions = GenerationOptions()
    history: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pixels = preprocess(self.image, self.model.config).unsqueeze(0)

    def ask(self, question: str) -> str:
        prompt = encode_prompt(self.tokenizer, self.history, question)
        (answer,) = predict(self.model, self.tokenizer, self._pixels, [prompt], self.options)
        self.history.append((question, answer))
        return answer

    def count_then_detect(self, noun: str, oriented: bool = False) -> tuple[int | None, str]:
        """The paper's prompting for dense scenes: ask the count first, then detect with it as a hint.
        noun: the class in the singular ("plane").

        Returns (parsed count or None, detection answer). Without a parsable count, plain detection is asked.
        """
        count = first_count(self.ask(count_question(plural(noun))))
        return count, self.ask(count_hint_prompt(noun, count, oriented))
