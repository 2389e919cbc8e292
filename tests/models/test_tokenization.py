import pytest

from models.earthgpt import IGNORE_INDEX
from models.tokenization import encode_conversation, encode_prompt, load_tokenizer, save_tokenizer

TURNS = [
    {"from": "human", "value": "<image>\nHow many ships are there?"},
    {"from": "gpt", "value": "five"},
    {"from": "human", "value": "Is there a plane in the image?"},
    {"from": "gpt", "value": "no"},
]


def test_special_token_ids_follow_the_llama_layout(tokenizer):
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == \
        (0, 1, 2, 3)


def test_loss_only_on_assistant_answers_and_end_of_turn(tokenizer):
    enc = encode_conversation(tokenizer, TURNS, max_tokens=512)
    assert enc.rounds == 2 and enc.input_ids[0] == tokenizer.bos_token_id
    supervised = [tok for tok, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX]
    assert tokenizer.decode(supervised) == " five</s> no</s>"
    assert "<image>" not in tokenizer.decode(enc.input_ids)


def test_inference_prompt_is_the_training_prefix(tokenizer):
    enc = encode_conversation(tokenizer, TURNS, max_tokens=512)
    prompt = encode_prompt(tokenizer, [("How many ships are there?", "five")], "Is there a plane in the image?")
    assert enc.input_ids[: len(prompt)] == prompt
    assert enc.labels[len(prompt)] != IGNORE_INDEX  # the very next token is the answer


def test_truncation_drops_whole_rounds_then_cuts_only_the_first_answer(tokenizer):
    full = encode_conversation(tokenizer, TURNS, max_tokens=512)
    one_round = encode_conversation(tokenizer, TURNS[:2], max_tokens=512)
    cut = encode_conversation(tokenizer, TURNS, max_tokens=len(full.input_ids) - 1)
    assert cut.rounds == 1 and cut.input_ids == one_round.input_ids
    tight = encode_conversation(tokenizer, TURNS, max_tokens=len(one_round.input_ids) - 1)
    assert tight.rounds == 1 and len(tight.input_ids) == len(one_round.input_ids) - 1
    with pytest.raises(ValueError, match="first question alone"):
        encode_conversation(tokenizer, TURNS, max_tokens=5)


def test_turns_must_alternate(tokenizer):
    with pytest.raises(ValueError, match="alternate"):
        encode_conversation(tokenizer, TURNS[1:3], max_tokens=512)


def test_saved_tokenizer_reloads_identically(tokenizer, tmp_path):
    save_tokenizer(tokenizer, tmp_path)
    again = load_tokenizer(str(tmp_path))
    text = "There are 13 ships [0.12,0.33,0.45,0.67]."
    assert again.encode(text) == tokenizer.encode(text)
    assert again.eos_token_id == tokenizer.eos_token_id
