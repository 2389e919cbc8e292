import pytest

from evaluation.answers import is_yes_no, normalise_label, normalise_vqa


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
