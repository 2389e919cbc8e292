"""Wording of counts: number words as the training answers write them, read back by first_count."""

import pytest

from mmrs.templates import (
    CAPTION_PROMPT,
    NATURAL_CAPTION_PROMPT,
    REWORDED_CAPTION_PROMPT,
    SHORT_ANSWER,
    classification_prompt,
    count_hint_prompt,
    first_count,
    number_text,
    reference_categories,
    reworded_classification_prompt,
    reworded_vqa_prompt,
    vqa_prompt,
)


@pytest.mark.parametrize(("count", "hint"), [
    (1, "There is one plane in the image. "), (2, "There are two planes in the image. "),
    (13, "There are 13 planes in the image. "), (0, "There are no planes in the image. "), (None, "")])
def test_the_count_hint_words_counts_as_the_training_answers_do(count, hint):
    assert count_hint_prompt("plane", count, oriented=True) == (
        hint + "Detect all planes shown in the image and describe using oriented bounding boxes.")


@pytest.mark.parametrize(("text", "count"), [("There are eight tennis courts", 8), ("13", 13), ("none", 0),
                                             ("two ships and 3 cars", 2), ("many", None), ("twenty planes", 20)])
def test_first_count_reads_what_number_text_writes(text, count):
    assert first_count(text) == count


def test_number_text_and_first_count_are_inverses():
    assert all(first_count(f"There are {number_text(n)} ships") == n for n in range(40))


def test_reference_categories_reads_back_what_classification_prompt_lists():
    categories = ["bare land", "storage tank", "airport"]
    assert reference_categories(classification_prompt(categories)) == categories
    assert reference_categories(CAPTION_PROMPT) == []


def test_held_out_wordings_differ_from_the_training_wording():
    categories = ["forest", "river"]
    assert reworded_classification_prompt(categories) == ("Which scene does this remote sensing image show? "
                                                          "Choose one of: forest, river.")
    assert reworded_classification_prompt([]) == "Which scene does this remote sensing image show?"
    assert SHORT_ANSWER not in reworded_classification_prompt(categories)
    assert reworded_vqa_prompt(" Is there a road? ") == "Is there a road?" != vqa_prompt("Is there a road?")
    assert REWORDED_CAPTION_PROMPT not in (CAPTION_PROMPT, NATURAL_CAPTION_PROMPT)
