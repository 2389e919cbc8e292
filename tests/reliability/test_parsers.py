"""The answer parsers (evaluation/parsing.py) against any text a model may generate, property-based: they never
raise (their contract: a failure is a value with a reason), and what they return is what the contract says."""

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.parsing import (
    is_yes_no,
    normalise_label,
    normalise_vqa,
    parse_boxes,
    parse_class,
    parse_count,
    parse_short_answer,
)
from mmrs.templates import first_count

NUMBERS = st.sampled_from(["0.12", "1", "-3", "1e400", "nan", "inf", "9" * 5000, ".5", "0.5.5", "1e-400", "٣"])
PIECES = NUMBERS | st.sampled_from(["[", "]", ";", ",", " ", "<p>", "</p>", "two ships", "\n", "x1", "A10"])
BOXES = st.lists(PIECES, max_size=40).map("".join)
ANSWERS = (st.text(max_size=60) | BOXES
           | st.sampled_from(["Yes.", "no!", "There are 13 ships.", "nan", "NaN", "inf", "9" * 5000, "eight",
                              "٣ boats", "\x00", "", "  ", "Parking_Lot."]))


@settings(max_examples=300, deadline=None)
@given(text=ANSWERS)
def test_label_and_short_answer_parsers_never_raise(text, tried):
    tried("parsers: normalise_* / parse_class / parse_short_answer")
    label = normalise_label(text)
    assert normalise_label(label) == label and label == label.strip() and "  " not in label
    for yes_no in (False, True):
        answer = normalise_vqa(text, yes_no=yes_no)
        assert answer == answer.strip() and answer == answer.lower()
        parsed = parse_short_answer(text, yes_no)
        assert (parsed.value is None) == (parsed.failure is not None)
        if yes_no and parsed.ok:
            assert parsed.value in ("yes", "no")
    assert isinstance(is_yes_no(text), bool)
    parsed = parse_class(text, ["parking lot", "airport"], {"parking": "parking lot"})
    assert parsed.value in (None, "parking lot", "airport")


@settings(max_examples=300, deadline=None)
@given(text=ANSWERS)
def test_count_parser_never_raises(text, tried):
    """A count is a whole number or a failure, whatever the text (a 5,000-digit number made int() raise)."""
    tried("parsers: parse_count")
    parsed = parse_count(text)
    assert parsed.ok == (parsed.value is not None)
    assert parsed.value is None or (isinstance(parsed.value, int) and 0 <= parsed.value < 10 ** 9)
    assert first_count(text) == parsed.value or not text.strip()


@settings(max_examples=300, deadline=None)
@given(text=BOXES | ANSWERS, oriented=st.booleans())
def test_box_parser_never_raises_and_keeps_boxes_in_the_unit_square(text, oriented, tried):
    tried("parsers: parse_boxes")
    parsed = parse_boxes(text, oriented)
    assert (parsed.value is None) == (parsed.failure is not None)
    for box in parsed.value or []:
        assert len(box) == (8 if oriented else 4)
        assert all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in box), box
    assert all(0 <= start <= end <= len(text) for start, end in parsed.spans)
    assert not re.search("nan", str(parsed.value or ""))
