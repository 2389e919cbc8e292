"""All instruction and answer wording, in the paper's own phrasing (Sec. IV and Fig. 3). Nothing else in
the code base writes prompt text."""

from __future__ import annotations

import re

IMAGE_TOKEN = "<image>"  # where the visual tokens go: the first human turn of every record starts with it + "\n"


def with_image(question: str) -> str:
    """The first human turn of a record: the image token on its own line, then the instruction."""
    return f"{IMAGE_TOKEN}\n{question}"


def without_image(turn: str) -> str:
    """A turn's text with the image token removed."""
    return turn.replace(IMAGE_TOKEN, "").strip()


SHORT_ANSWER = "Answer the question using a single word or phrase."

BOX_KIND = {False: "horizontal bounding boxes", True: "oriented bounding boxes"}


def classification_prompt(categories: list[str]) -> str:
    """Category-to-instruction, with the dataset's reference categories."""
    return (f"What is the category of this remote sensing image? {SHORT_ANSWER} "
            f"Reference categories include {', '.join(categories)}.")


CAPTION_PROMPT = "Please provide a one-sentence caption for the provided remote sensing image in detail."
# stage 2 also aligns on natural images (COCO Caption, LAION-400M): the same instruction, not called remote sensing
NATURAL_CAPTION_PROMPT = "Please provide a one-sentence caption for the provided image in detail."


def caption_prompt(natural_images: bool = False) -> str:
    return NATURAL_CAPTION_PROMPT if natural_images else CAPTION_PROMPT


def vqa_prompt(question: str) -> str:
    """VQA-to-instruction: the original question plus the short-answer suffix."""
    return f"{question.strip()} {SHORT_ANSWER}"


def detection_prompt(oriented: bool) -> str:
    """Detect every object (all classes)."""
    return f"Detect all objects shown in the remote sensing image and describe using {BOX_KIND[oriented]}."


def category_detection_prompt(category_plural: str, oriented: bool) -> str:
    """Referring detection of one category."""
    return f"Detect all {category_plural} shown in the image and describe using {BOX_KIND[oriented]}."


def grounding_prompt(expression: str) -> str:
    return ("Please provide the horizontal bounding box coordinate of the region which is described as: "
            f"{expression.strip()}")


def region_caption_prompt(box_text: str) -> str:
    return f"Please provide a short caption for this region in this remote sensing image: {box_text}."


def count_question(category_plural: str) -> str:
    """First half of count-then-detect prompting."""
    return f"How many {category_plural} are there in the image? {SHORT_ANSWER}"


def count_hint_prompt(noun: str, count: int | None, oriented: bool) -> str:
    """Second half of count-then-detect: the referring detection prompt after the count as a hint, worded
    as the training answers word counts ("There is one plane in the image.", "There are two planes ...",
    "There are 13 planes ..."; no count: no hint). noun: the class in the singular."""
    prompt = category_detection_prompt(plural(noun), oriented)
    if count is None:
        return prompt
    counted = f"no {plural(noun)}" if count == 0 else count_noun(count, noun)
    return f"There {'is' if count == 1 else 'are'} {counted} in the image. {prompt}"


# --- training paraphrases (the tiny preset's prompt variation, `models.prompt_variation`) --------------------
# Other ways of asking the same thing, seen in training only when a stage turns prompt variation on. None is a
# held-out wording below: those stay unseen, so the held-out benchmarks measure transfer to new words.


def classification_paraphrases(categories: list[str]) -> tuple[str, ...]:
    listing = ", ".join(categories)
    return (classification_prompt(categories),
            f"What is the category of this remote sensing image? Reference categories include {listing}.",
            f"Classify this remote sensing image. {SHORT_ANSWER} Categories: {listing}.",
            f"Name the scene category of this image from the following list: {listing}.")


CAPTION_PARAPHRASES = (CAPTION_PROMPT, "Write a detailed one-sentence caption for this remote sensing image.",
                       "Caption this remote sensing image with one detailed sentence.")
VQA_SUFFIXES = (SHORT_ANSWER, "Answer with a word or a short phrase.", "Reply in as few words as possible.")


# --- held-out wordings (evaluation only) ------------------------------------------------------------------
# The same requests phrased as no training record phrases them: a benchmark's `reworded` variant asks these to
# measure how much of the model's skill survives a change of wording. Nothing writes them into MMRS-1M.

REWORDED_CAPTION_PROMPT = "Describe this remote sensing image in one sentence."
_CATEGORIES_PREFIX = " Reference categories include "


def reference_categories(prompt: str) -> list[str]:
    """The reference categories of a `classification_prompt` (its inverse); [] when it lists none."""
    _, found, listing = prompt.partition(_CATEGORIES_PREFIX)
    return [c.strip() for c in listing.rstrip().removesuffix(".").split(", ")] if found and listing.strip() else []


def reworded_classification_prompt(categories: list[str]) -> str:
    """Category-to-instruction in held-out words, without the answer-format sentence."""
    question = "Which scene does this remote sensing image show?"
    return f"{question} Choose one of: {', '.join(categories)}." if categories else question


def reworded_vqa_prompt(question: str) -> str:
    """The original question alone: without the short-answer sentence that every training question ends with."""
    return question.strip()


# --- answers ---------------------------------------------------------------------------------------------

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_IRREGULAR = {"person": "people", "people": "people", "aircraft": "aircraft", "sheep": "sheep"}


def number_text(n: int) -> str:
    """Counts as words up to ten, digits above ("There are eight ...", "There are 13 ...")."""
    return NUMBER_WORDS[n] if 0 <= n <= 10 else str(n)


# number_text's inverse, lenient: the words a model may use for a count
COUNT_WORDS = {w: i for i, w in enumerate(
    (*NUMBER_WORDS, "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
     "nineteen", "twenty"))} | {"no": 0, "none": 0}


def first_count(text: str) -> int | None:
    """The first count a text gives, as digits or a word ('There are eight planes' -> 8, 'none' -> 0)."""
    for token in re.findall(r"[a-z]+|\d+", text.lower()):
        if token.isdigit():  # more than nine digits is no count (and int() refuses thousands of them)
            return int(token) if len(token) <= 9 else None
        if token in COUNT_WORDS:
            return COUNT_WORDS[token]
    return None


def plural(noun: str) -> str:
    """English plural of a class name's last word: ship -> ships, bus -> buses, person -> people."""
    head, _, last = noun.rpartition(" ")
    lower = last.lower()
    if lower in _IRREGULAR:
        word = _IRREGULAR[lower]
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif lower.endswith("y") and lower[-2:-1] not in tuple("aeiou"):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def count_noun(n: int, noun: str) -> str:
    """'one ship', 'two ships', '13 ships'."""
    return f"{number_text(n)} {noun if n == 1 else plural(noun)}"


def detection_answer(groups: list[tuple[str, str]]) -> str:
    """All objects: groups of (class noun, formatted boxes '[..;..]') in a stable class order."""
    if not groups:
        return "There are no objects shown in the image."
    total = sum(boxes.count(";") + 1 for _, boxes in groups)
    parts = [f"{count_noun(boxes.count(';') + 1, noun)} {boxes}" for noun, boxes in groups]
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f", and {parts[-1]}"
    verb = "is" if total == 1 else "are"
    return f"There {verb} {count_noun(total, 'object')} shown in the image, including {listing}."


def category_detection_answer(noun: str, boxes: str) -> str:
    """Referring detection of one class: 'There are two ships [..;..] in the image.'"""
    n = boxes.count(";") + 1
    return f"There {'is' if n == 1 else 'are'} {count_noun(n, noun)} {boxes} in the image."
