"""Our caption scoring is pycocoevalcap's scorers, called one by one; these pin the wiring and the x100."""

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from evaluation.captioning import constant_caption, score_captions

REFERENCES = {
    "a": ["A yellow desert with many dunes.", "The desert is covered by sand dunes."],
    "b": ["Six planes are parked at the airport.", "An airport with six planes beside a runway."],
    "c": ["A river runs through the green forest.", "A blue river crosses the forest."],
}


def test_scores_equal_the_toolkit_on_pre_tokenised_text():
    predictions = {"a": "a yellow desert with dunes", "b": "six planes at the airport", "c": "a river in a forest"}
    ours = score_captions(predictions, REFERENCES, meteor=False)
    gts = {i: [r.lower().rstrip(".") for r in refs] for i, refs in REFERENCES.items()}
    res = {i: [p] for i, p in predictions.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert [ours[f"BLEU{n}"] for n in range(1, 5)] == pytest.approx([100 * b for b in bleu], abs=1e-6)
    assert ours["CIDEr"] == pytest.approx(100 * Cider().compute_score(gts, res)[0], abs=1e-6)


def test_a_reference_as_prediction_scores_bleu_100_and_meteor_runs_offline():
    scores = score_captions({i: refs[0] for i, refs in REFERENCES.items()}, REFERENCES)
    assert scores["BLEU4"] == pytest.approx(100.0, abs=1e-3)
    assert 50.0 < scores["METEOR"] <= 100.0
    assert set(scores) == {"BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR", "ROUGE_L", "CIDEr"}  # never SPICE


def test_ids_must_match_and_the_constant_caption_is_the_most_frequent():
    with pytest.raises(ValueError, match="same image ids"):
        score_captions({"a": "x"}, REFERENCES)
    assert constant_caption([["b", "a"], ["a", "c"], ["b"]]) == "a"  # a and b tie at 2: alphabetical


def test_meteor_is_the_corpus_statistic_not_the_mean_of_per_image_scores(monkeypatch):
    # the trap: averaging METEOR per image gives another number than METEOR 1.5's corpus score
    from pycocoevalcap.meteor.meteor import Meteor

    predictions = {"a": "a yellow desert with many dunes", "b": "planes", "c": "a green forest with a blue river"}
    ours = score_captions(predictions, REFERENCES)["METEOR"]
    gts = {i: [r.lower().rstrip(".") for r in refs] for i, refs in REFERENCES.items()}
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Duser.language=en -Duser.country=US")
    corpus, per_image = Meteor().compute_score(gts, {i: [p] for i, p in predictions.items()})
    assert ours == pytest.approx(100 * corpus, abs=1e-6)
    assert abs(ours - 100 * sum(per_image) / len(per_image)) > 1.0
