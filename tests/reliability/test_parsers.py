"""The answer parsers of this branch against any text a model may generate, property-based: they never raise,
and what they return is what their contract says. (evaluation/parsing.py, the box and class parsers of the
evaluation work, is not in this branch; its tests belong with it.)"""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.answers import is_yes_no, normalise_label, normalise_vqa
from evaluation.vqa import VQAItem, score_vqa
from models.inference import parse_count

ANSWERS = st.text(max_size=60) | st.sampled_from(["Yes.", "no!", "There are 13 ships.", "nan", "NaN", "inf",
                                                   "9" * 5000, "eight", "٣ boats", "\x00", "", "  ", "Parking_Lot."])


@settings(max_examples=300, deadline=None)
@given(text=ANSWERS)
def test_normalisers_never_raise_and_are_idempotent(text, tried):
    tried("parsers: normalise_label / normalise_vqa")
    label = normalise_label(text)
    assert normalise_label(label) == label and label == label.strip() and "  " not in label
    for yes_no in (False, True):
        answer = normalise_vqa(text, yes_no=yes_no)
        assert answer == answer.strip() and answer == answer.lower()
        if yes_no and re.search(r"\b(yes|no)\b", text.lower()):
            assert answer in ("yes", "no")
    assert isinstance(is_yes_no(text), bool)


@settings(max_examples=300, deadline=None)
@given(text=ANSWERS)
def test_count_parser_never_raises(text, tried):
    """A count is a whole number or None, whatever the text (main raised ValueError on a 5,000-digit number)."""
    tried("parsers: parse_count")
    count = parse_count(text)
    assert count is None or (isinstance(count, int) and 0 <= count < 10 ** 9)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.tuples(ANSWERS, ANSWERS, st.sampled_from(["presence", "count", "comp"])), min_size=1,
                      max_size=8))
def test_vqa_scoring_never_raises_on_any_prediction(items, tried):
    tried("parsers: score_vqa")
    score = score_vqa([VQAItem(question="q", answer=a, prediction=p, type=t) for p, a, t in items])
    assert 0.0 <= score.overall <= 100.0 and score.samples == len(items)
