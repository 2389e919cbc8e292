"""Prompt variation (tiny preset): training paraphrases chosen by (seed, record id), never a held-out wording,
and the data module's batches carrying them."""

import re

import pytest

from mmrs import templates
from models.prompt_variation import MIN_CATEGORIES, vary_record
from models.stages import ModelSettings, StageSettings, TrainSettings, WeightFolders

CATEGORIES = ["airport", "bare land", "beach", "bridge", "desert", "forest", "meadow", "river", "storage tank"]


def _classification(i: int, label: str = "forest") -> dict:
    return {"id": f"whu/train/{i}/classification", "task": "classification", "conversations": [
        {"from": "human", "value": templates.with_image(templates.classification_prompt(CATEGORIES))},
        {"from": "gpt", "value": label}]}


def _vqa(i: int) -> dict:
    return {"id": f"lr/train/{i}/vqa", "task": "vqa", "conversations": [
        {"from": "human", "value": templates.with_image(templates.vqa_prompt("Is there a road?"))},
        {"from": "gpt", "value": "yes"},
        {"from": "human", "value": templates.vqa_prompt("How many ships are there?")},
        {"from": "gpt", "value": "3"}]}


def _caption(i: int) -> dict:
    return {"id": f"cap/train/{i}/captioning", "task": "captioning", "conversations": [
        {"from": "human", "value": templates.with_image(templates.CAPTION_PROMPT)},
        {"from": "gpt", "value": "Many planes are parked."}]}


def test_the_choice_is_a_pure_function_of_seed_and_record_id():
    record = _classification(7)
    assert vary_record(record, 0) == vary_record(record, 0)
    prompts = [vary_record(_classification(i), 0)["conversations"][0]["value"] for i in range(200)]
    kept = prompts.count(_classification(0)["conversations"][0]["value"])
    assert 70 < kept < 130  # about half keep the paper's wording (KEEP_SHARE)
    assert len(set(prompts)) - 1 > 0.9 * (200 - kept)  # the others: nearly every one its own wording and list
    assert {vary_record(record, s)["conversations"][0]["value"] for s in range(10)} != {
        vary_record(record, 0)["conversations"][0]["value"]}
    assert record["conversations"][0]["value"].endswith(f"{', '.join(CATEGORIES)}.")  # the input is untouched


def test_a_varied_class_list_keeps_the_answer_and_enough_categories():
    for i in range(200):
        varied = vary_record(_classification(i, label=CATEGORIES[i % len(CATEGORIES)]), 3)
        question, answer = templates.without_image(varied["conversations"][0]["value"]), varied["conversations"][1]
        assert answer["value"] == CATEGORIES[i % len(CATEGORIES)]
        listed = re.split(r": |include ", question.rstrip("."))[-1].split(", ")
        assert answer["value"] in listed and set(listed) <= set(CATEGORIES)
        assert len(listed) >= MIN_CATEGORIES and len(set(listed)) == len(listed)
        assert question in templates.classification_paraphrases(listed)
        assert varied["conversations"][0]["value"].startswith(templates.IMAGE_TOKEN + "\n")


def test_variation_never_writes_a_held_out_wording():
    held_out = {templates.REWORDED_CAPTION_PROMPT, templates.reworded_vqa_prompt("Is there a road?"),
                templates.reworded_vqa_prompt("How many ships are there?")}
    seen = set()
    for i in range(300):
        for record in (_classification(i), _vqa(i), _caption(i)):
            for turn in vary_record(record, i % 4)["conversations"][0::2]:
                question = templates.without_image(turn["value"])
                seen.add(question)
                assert question not in held_out
                assert not question.startswith("Which scene does this remote sensing image show?")
    suffixes = {q.rsplit("?", 1)[1].strip() for q in seen if q.startswith("Is there a road?")}
    assert suffixes == set(templates.VQA_SUFFIXES)  # every training suffix is used
    assert set(templates.CAPTION_PARAPHRASES) <= seen
    assert templates.with_image(templates.CAPTION_PROMPT) not in [
        t["value"] for t in vary_record(_vqa(1), 0)["conversations"][2::2]]  # only the first turn has the image


def test_other_tasks_and_untemplated_questions_are_left_as_they_are():
    grounding = {"id": "g/1", "task": "grounding", "conversations": [
        {"from": "human", "value": templates.with_image(templates.grounding_prompt("the ship"))},
        {"from": "gpt", "value": "[0.10,0.20,0.30,0.40]"}]}
    assert vary_record(grounding, 0) == grounding
    odd = _vqa(1)
    odd["conversations"][0]["value"] = templates.with_image("What colour is the roof?")
    assert vary_record(odd, 0)["conversations"][0]["value"] == odd["conversations"][0]["value"]


def test_the_paper_preset_refuses_prompt_variation():
    with pytest.raises(ValueError, match="paper preset trains on the paper's wording"):
        TrainSettings(model=ModelSettings(preset="paper", weights=WeightFolders("llama", "dinov2", "convnext")),
                      stage3=StageSettings(prompt_variation=True))
    assert TrainSettings(stage3=StageSettings(prompt_variation=True)).stage3.prompt_variation
