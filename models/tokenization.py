"""Tokenizers and the one conversation template used for training and inference.

Template (multi-turn, Vicuna style; the visual tokens precede all of it):

    <s>{system} USER: {question} ASSISTANT: {answer}</s>USER: {question} ASSISTANT: {answer}</s>...

Each piece is tokenised on its own and the ids concatenated, so a prompt built for inference is exactly the
prefix the model saw in training. Labels are IGNORE_INDEX everywhere except assistant answers and their
closing </s> (the end-of-turn token generation stops at).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mmrs.templates import without_image
from models.earthgpt import IGNORE_INDEX
from models.weights import localize

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
SYSTEM_PROMPT = "A chat between a user and an assistant that interprets remote sensing images."


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts`, with ids pad 0, bos 1, eos 2, unk 3 (the LLaMA layout)."""
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def load_tokenizer(path: str) -> PreTrainedTokenizerFast:
    """A saved tokenizer folder (ours, or LLaMA's with tokenizer.json), local or s3://."""
    tokenizer = AutoTokenizer.from_pretrained(localize(path, "tokenizer"))
    if tokenizer.pad_token is None:  # LLaMA ships without one; pad with unk as is customary
        tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: Path) -> None:
    tokenizer.save_pretrained(str(folder))


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    rounds: int  # conversation rounds kept after truncation


def tokenizer_digest(tokenizer: PreTrainedTokenizerFast) -> str:
    """SHA-256 of the whole tokenizer (vocabulary, merges, normaliser, special tokens)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def _ids(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def encode_conversation(tokenizer: PreTrainedTokenizerFast, turns: Sequence[dict[str, str]],
                        max_tokens: int) -> Encoded:
    """MMRS `conversations` ([{from: human|gpt, value}], alternating) -> ids and labels, <= max_tokens.

    Truncation drops whole trailing rounds; if even the first round does not fit, its answer is cut
    (never the question). Visual tokens are not part of this budget, so they are never cut.
    """
    if len(turns) % 2 or any(t["from"] != ("human" if i % 2 == 0 else "gpt") for i, t in enumerate(turns)):
        raise ValueError("conversations must alternate human / gpt turns, starting with human")
    # every piece in one batched call to the Rust tokenizer: ~10x faster than one call per piece
    pieces = [SYSTEM_PROMPT]
    for human, gpt in zip(turns[0::2], turns[1::2], strict=True):
        pieces += [f" USER: {without_image(human['value'])} ASSISTANT:", " " + gpt["value"].strip()]
    encoded = tokenizer(pieces, add_special_tokens=False)["input_ids"]
    ids = [tokenizer.bos_token_id, *encoded[0]]
    labels = [IGNORE_INDEX] * len(ids)
    rounds = 0
    for prompt, answer_ids in zip(encoded[1::2], encoded[2::2], strict=True):
        answer = [*answer_ids, tokenizer.eos_token_id]
        if len(ids) + len(prompt) + len(answer) > max_tokens:
            if rounds == 0:
                room = max_tokens - len(ids) - len(prompt)
                if room < 1:
                    raise ValueError(f"the first question alone needs more than {max_tokens} tokens")
                ids += prompt + answer[:room]
                labels += [IGNORE_INDEX] * len(prompt) + answer[:room]
                rounds = 1
            break
        ids += prompt + answer
        labels += [IGNORE_INDEX] * len(prompt) + answer
        rounds += 1
    return Encoded(ids, labels, rounds)


def encode_prompt(tokenizer: PreTrainedTokenizerFast, history: Sequence[tuple[str, str]], question: str) -> list[int]:
    """Ids for inference: past (question, answer) rounds, then the new question up to 'ASSISTANT:'."""
    turns = [{"from": f, "value": v} for q, a in history for f, v in (("human", q), ("gpt", a))]
    past = encode_conversation(tokenizer, turns, max_tokens=10**9).input_ids if turns else \
        [tokenizer.bos_token_id, *_ids(tokenizer, SYSTEM_PROMPT)]
    return past + _ids(tokenizer, f" USER: {without_image(question)} ASSISTANT:")
