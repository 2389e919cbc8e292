import pytest

from evaluation.vqa import VQAItem, prior_answers, score_vqa


def _items():
    return [
        VQAItem("Is there a ship?", "yes", "presence", "Yes."),
        VQAItem("Is there a plane?", "no", "presence", "no"),
        VQAItem("Is there a car?", "no", "presence", "yes"),
        VQAItem("Is there a truck?", "no", "presence", "no"),
        VQAItem("More ships than planes?", "yes", "comp", "yes"),
        VQAItem("What scene?", "harbor", "scene", "a harbor"),
    ]


def test_per_type_balanced_pooled_and_strict_accuracy():
    score = score_vqa(_items())
    assert score.per_type == {"comp": 100.0, "presence": 75.0, "scene": 0.0}
    # presence: recall on "yes" 1/1, on "no" 2/3 -> mean 83.33
    assert score.balanced["presence"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert score.overall == pytest.approx(100 * 4 / 6)
    assert score.strict == pytest.approx(100 * 3 / 6)  # "Yes." is not "yes" without normalising
    assert score.samples == 6


def test_substring_matches_do_not_count():
    # the trap of public evaluators: "prediction in answer" would count "no" inside "not now"
    assert score_vqa([VQAItem("q", "not now", "other", "no")]).overall == 0.0


def test_a_constant_answer_gets_half_the_balanced_accuracy_on_yes_no():
    items = [VQAItem("q", a, "presence", "no") for a in ["no"] * 9 + ["yes"]]
    score = score_vqa(items)
    assert score.per_type["presence"] == 90.0 and score.balanced["presence"] == 50.0


def test_prior_answers_are_each_types_most_common_normalised_answer():
    assert prior_answers([("presence", "No"), ("presence", "no."), ("presence", "yes"), ("count", "3")]) == {
        "presence": "no", "count": "3"}
    with pytest.raises(ValueError):
        score_vqa([])


def test_answers_without_a_usable_reply_are_counted_by_reason():
    items = [VQAItem("q", "yes", "presence", "maybe"), VQAItem("q", "3", "count", " "),
             VQAItem("q", "no", "presence", "No.")]
    score = score_vqa(items)
    assert score.failures == {"no yes/no word": 1, "empty answer": 1} and score.overall == pytest.approx(100 / 3)
