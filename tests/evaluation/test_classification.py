import pytest

from evaluation.classification import score_classification

CLASSES = ["airport", "parking_lot", "bare-land", "forest"]


def test_top1_unmatched_and_majority_baseline_on_a_fixture():
    labels = ["airport", "parking_lot", "bare-land", "forest", "forest"]
    answers = ["Airport.", "parking lot", "bare land", "airport", "a forest"]
    score = score_classification(answers, labels, CLASSES)
    assert score.top1 == pytest.approx(60.0)
    assert score.unmatched == pytest.approx(20.0)  # "a forest" names no class
    assert score.majority_baseline == pytest.approx(40.0)
    assert score.samples == 5
    assert ("forest", "airport", 1) in score.confusions


def test_aliases_map_synonyms_onto_class_names():
    score = score_classification(["parking lots"], ["parking_lot"], CLASSES, aliases={"parking lots": "parking lot"})
    assert score.top1 == 100.0 and score.unmatched == 0.0


def test_removing_spaces_is_not_how_names_are_matched():
    # the trap of public evaluators: "parkinglot" must not count as "parking_lot"
    assert score_classification(["parkinglot"], ["parking_lot"], CLASSES).top1 == 0.0


def test_mismatched_lengths_and_empty_input_are_errors():
    with pytest.raises(ValueError, match="predictions"):
        score_classification(["a"], [], CLASSES)
    with pytest.raises(ValueError, match="no samples"):
        score_classification([], [], CLASSES)


def test_failures_and_the_confusion_matrix():
    labels = ["airport", "parking_lot", "bare-land", "forest"]
    answers = ["airport", "airport", "", "the forest"]
    score = score_classification(answers, labels, CLASSES)
    assert score.failures == {"empty answer": 1, "names no class": 1}
    assert score.classes == ("airport", "parking lot", "bare land", "forest")
    assert score.matrix == ((1, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1))
