import random
import string

import pytest

from evaluation.parsing import (
    CLAMPED,
    EMPTY,
    NO_BOX,
    NO_CLASS,
    NO_COUNT,
    NO_YES_NO,
    REVERSED,
    WRONG_COUNT,
    ZERO_AREA,
    is_yes_no,
    normalise_label,
    normalise_vqa,
    parse_boxes,
    parse_class,
    parse_count,
    parse_hbbs,
    parse_obbs,
    parse_short_answer,
)

CLASSES = ["airport", "parking_lot", "bare-land", "storage tank"]


@pytest.mark.parametrize(("text", "expected"), [
    ("parking_lot", "parking lot"), ("Parking Lot.", "parking lot"), ("bare-land", "bare land"),
    ("  Dense   Residential ", "dense residential"), ("tennis court!", "tennis court"),
])
def test_normalise_label_matches_names_written_with_underscores_hyphens_case_and_punctuation(text, expected):
    assert normalise_label(text) == expected


def test_normalise_vqa_takes_the_first_yes_no_word_only_for_yes_no_questions():
    assert normalise_vqa("Yes, there is.", yes_no=True) == "yes"
    assert normalise_vqa("No.", yes_no=True) == "no"
    assert normalise_vqa("Yes, there is.") == "yes, there is"
    assert normalise_vqa("Harbor.") == "harbor"
    assert normalise_vqa("maybe", yes_no=True) == "maybe"
    assert is_yes_no(" Yes ") and not is_yes_no("3")


@pytest.mark.parametrize(("text", "value", "failure"), [
    ("Parking Lot.", "parking lot", None), ("bare land", "bare land", None), ("BARE-LAND", "bare land", None),
    ("parkinglot", None, NO_CLASS),  # the trap: names are never matched by removing spaces
    ("bareland", None, NO_CLASS), ("It is an airport.", None, NO_CLASS), ("  ", None, EMPTY),
    ("storage tanks", "storage tank", None),  # through the alias table
])
def test_parse_class_is_strict_on_normalised_names_with_aliases(text, value, failure):
    parsed = parse_class(text, CLASSES, aliases={"storage tanks": "storage tank"})
    assert (parsed.value, parsed.failure) == (value, failure)


def test_parse_short_answer_and_count():
    assert parse_short_answer("Yes, there is.", yes_no=True).value == "yes"
    assert parse_short_answer("maybe", yes_no=True).failure == NO_YES_NO
    assert parse_short_answer(" . ").failure == EMPTY
    assert parse_short_answer("Harbor.").value == "harbor"
    assert [parse_count(t).value for t in ("There are eight planes.", "13", "none", "two ships and 3 cars")] == [
        8, 13, 0, 2]
    assert parse_count("many").failure == NO_COUNT and parse_count("").failure == EMPTY


TWO = [(0.12, 0.33, 0.45, 0.67), (0.5, 0.51, 0.62, 0.7)]


@pytest.mark.parametrize("text", [
    "[0.12,0.33,0.45,0.67;0.50,0.51,0.62,0.70]",
    "There are two ships [0.12,0.33,0.45,0.67;0.50,0.51,0.62,0.70] in the image.",
    "<p>two ships</p>[0.12,0.33,0.45,0.67;0.50,0.51,0.62,0.70]",
    "[0.12 0.33 0.45 0.67; 0.50 0.51 0.62 0.70]",
    "[ 0.12, 0.33, 0.45, 0.67 ] and [0.50,0.51,0.62,0.70]",
    "boxes: [x1=0.12, y1=0.33, x2=0.45, y2=0.67; x1=0.50, y1=0.51, x2=0.62, y2=0.70] done",
    "0.12,0.33,0.45,0.67 and 0.50 0.51 0.62 0.70",  # no brackets: runs of four numbers
    "[0.45,0.67,0.12,0.33;0.62,0.70,0.50,0.51]",  # corners reversed
])
def test_hbbs_in_every_written_form(text):
    parsed = parse_hbbs(text)
    assert parsed.ok and parsed.value == TWO
    for (start, end), box in zip(parsed.spans, parsed.value, strict=True):
        assert parse_hbbs("[" + text[start:end] + "]").value == [box]  # each span holds its box


def test_boxes_are_clamped_ordered_and_zero_area_ones_dropped():
    parsed = parse_hbbs("[0.2,-0.1,1.3,0.4;0.5,0.5,0.5,0.9;0.9,0.8,0.1,0.2]")
    assert parsed.value == [(0.2, 0.0, 1.0, 0.4), (0.1, 0.2, 0.9, 0.8)]
    assert parsed.notes == (CLAMPED, ZERO_AREA, REVERSED)
    assert parse_hbbs("[0.1,0.1,0.1,0.5]").failure == ZERO_AREA
    assert parse_hbbs("[1.2,0.1,1.5,0.5]").failure == ZERO_AREA  # clamped onto the edge: no width left


def test_wrong_numbers_of_coordinates_missing_boxes_and_cut_answers():
    assert parse_hbbs("[0.1,0.2,0.3]").failure == WRONG_COUNT
    assert parse_hbbs("There are 13 ships in the image.").failure == NO_BOX
    assert parse_hbbs("").failure == EMPTY
    cut = parse_hbbs("There are two ships [0.10,0.20,0.30,0.40;0.50,0.6")  # generation stopped mid-box
    assert cut.value == [(0.1, 0.2, 0.3, 0.4)] and cut.notes == (WRONG_COUNT,)
    assert parse_hbbs("The A10 at [0.1,0.2,0.3,0.4]").value == [(0.1, 0.2, 0.3, 0.4)]  # "A10" is no number


def test_obbs_are_groups_of_eight_numbers_and_flat_ones_are_dropped():
    text = "There are two a1s [0.53,0.15,0.56,0.10,0.63,0.14,0.60,0.19;0.10,0.22,0.15,0.26,0.09,0.33,0.04,0.28]."
    parsed = parse_obbs(text)
    assert parsed.value == [(0.53, 0.15, 0.56, 0.10, 0.63, 0.14, 0.60, 0.19),
                            (0.10, 0.22, 0.15, 0.26, 0.09, 0.33, 0.04, 0.28)]
    assert parse_obbs("[0.1,0.1,0.2,0.2,0.3,0.3,0.4,0.4]").failure == ZERO_AREA  # collinear
    assert parse_obbs("[0.1,0.2,0.3,0.4]").failure == WRONG_COUNT
    assert parse_boxes("[0.1,0.2,0.3,0.4]", oriented=False).ok


def test_the_parsers_never_raise():
    rng = random.Random(0)
    alphabet = string.printable + "[];,.-+eE0123456789<>/p" * 4 + "\u00e9\u4e2d"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        for parsed in (parse_hbbs(text), parse_obbs(text), parse_count(text), parse_short_answer(text, True),
                       parse_class(text, CLASSES)):
            assert parsed.ok == (parsed.value is not None) == (parsed.failure is None)
    assert parse_hbbs("[1e999,0,0.5,0.5]").value == [(0.5, 0.0, 1.0, 0.5)]  # inf clamped
