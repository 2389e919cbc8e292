import numpy as np
import torch

from models.image_transform import preprocess
from models.inference import (
    ChatSession,
    GenerationOptions,
    answer_questions,
    left_pad,
    predict,
)
from models.tokenization import encode_prompt

IMAGE = np.random.default_rng(0).integers(0, 255, size=(80, 60, 3), dtype=np.uint8)


def test_left_pad():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_greedy_with_and_without_kv_cache_agree(model, tokenizer):
    pixels = preprocess(IMAGE, model.config).unsqueeze(0)
    prompt = [encode_prompt(tokenizer, [], "How many ships are there?")]
    cached = predict(model, tokenizer, pixels, prompt, GenerationOptions(max_new_tokens=12, use_cache=True))
    plain = predict(model, tokenizer, pixels, prompt, GenerationOptions(max_new_tokens=12, use_cache=False))
    assert cached == plain and cached[0]


def test_a_batch_answers_as_each_prompt_alone(model, tokenizer):
    images = [IMAGE, np.flipud(IMAGE).copy(), IMAGE[..., 0].copy()]  # the last one single-channel
    questions = ["How many ships are there?", "Is there a plane in the image?", "Describe it."]
    options = GenerationOptions(max_new_tokens=8)
    batched = answer_questions(model, tokenizer, images, questions, options)
    alone = [answer_questions(model, tokenizer, [i], [q], options)[0] for i, q in zip(images, questions, strict=True)]
    assert batched == alone


def test_generation_stops_at_end_of_turn(model, tokenizer):
    with torch.no_grad():  # make </s> the most likely next token everywhere
        model.llm.lm_head.bias = torch.nn.Parameter(torch.zeros(model.llm.config.vocab_size))
        model.llm.lm_head.bias[tokenizer.eos_token_id] = 1e4
    pixels = preprocess(IMAGE, model.config).unsqueeze(0)
    new = model.generate(pixels, *left_pad([encode_prompt(tokenizer, [], "Hi")], 0), max_new_tokens=10,
                         eos_token_id=tokenizer.eos_token_id)
    assert new.shape[1] == 1 and new[0, 0] == tokenizer.eos_token_id


def test_sampling_is_seeded(model, tokenizer):
    pixels = preprocess(IMAGE, model.config).unsqueeze(0)
    prompt = [encode_prompt(tokenizer, [], "Describe it.")]
    options = GenerationOptions(max_new_tokens=10, do_sample=True, temperature=1.5)
    torch.manual_seed(3)
    a = predict(model, tokenizer, pixels, prompt, options)
    torch.manual_seed(3)
    assert predict(model, tokenizer, pixels, prompt, options) == a


def test_chat_keeps_history_and_count_then_detect_asks_twice(model, tokenizer):
    chat = ChatSession(model, tokenizer, IMAGE, GenerationOptions(max_new_tokens=6))
    first = chat.ask("What is the category of this image?")
    chat.ask("And how many planes?")
    assert chat.history[0] == ("What is the category of this image?", first) and len(chat.history) == 2
    count, detection = chat.count_then_detect("plane")
    assert len(chat.history) == 4
    assert chat.history[2][0].startswith("How many planes")
    assert chat.history[3][0].endswith("describe using horizontal bounding boxes.")
    assert (count is None) == ("There are" not in chat.history[3][0])
    assert detection == chat.history[3][1]
