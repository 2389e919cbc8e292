import numpy as np
import pytest

from mmrs.synthetic.scene import SCENE_CLASSES, sample_scene
from mmrs.synthetic.truth import (
    captions,
    count_phrase,
    main_kind,
    number_text,
    referring_expressions,
    resolve,
    vqa_pairs,
)


def _scene(cls, seed=0, sensor="optical"):
    return sample_scene(np.random.default_rng(seed), cls, sensor, 512, 512, 0.8 if cls != "street" else 0.06)


def test_number_words_up_to_ten_then_digits():
    assert [number_text(n) for n in (0, 1, 8, 10, 11, 13)] == ["zero", "one", "eight", "ten", "11", "13"]
    assert count_phrase(1, "storage_tank") == "one storage tank"
    assert count_phrase(13, "ship") == "13 ships"


@pytest.mark.parametrize("cls", [c for c, r in SCENE_CLASSES.items() if "optical" in r.sensors])
def test_five_captions_that_state_the_true_count(cls):
    scene = _scene(cls, seed=1)
    caps = captions(scene)
    assert len(caps) == 5 and all(c.endswith(".") for c in caps)
    kind = main_kind(scene)
    if kind is None:
        assert not any(str(n) in " ".join(caps) for n in range(1, 10))
    else:
        assert any(count_phrase(scene.count(kind), kind).lower() in c.lower() for c in caps)


def test_vqa_answers_follow_the_scene():
    scene = _scene("harbor", seed=2)
    rng = np.random.default_rng(0)
    for qa in vqa_pairs(scene, rng, ("presence", "count", "comp", "rural_urban", "area", "scene", "count_left"),
                        per_type=4):
        if qa.qtype == "count":
            kind_plural = qa.question.removeprefix("How many ").removesuffix(" are there?")
            n = sum(1 for o in scene.objects if o.kind.replace("_", " ") + "s" == kind_plural
                    or (o.kind == "storage_tank" and kind_plural == "storage tanks"))
            assert qa.answer == str(n)
        elif qa.qtype == "rural_urban":
            assert qa.answer == "urban"
        elif qa.qtype == "scene":
            assert qa.answer == "harbor"
        elif qa.qtype == "area":
            assert qa.answer.endswith("m2") and int(qa.answer[:-2]) >= 0
        else:
            assert qa.answer in ("yes", "no") or qa.answer.isdigit()


def test_presence_answers_are_balanced_over_many_scenes():
    answers = []
    for seed in range(20):
        scene = _scene("airport", seed=seed)
        answers += [qa.answer for qa in vqa_pairs(scene, np.random.default_rng(seed), ("presence",), 4)]
    assert 0.3 < answers.count("yes") / len(answers) < 0.8


def test_first_yes_no_answer_is_not_always_yes():
    """Single-question evaluation asks every question first: the first answer must not give itself away."""
    firsts = []
    for seed in range(40):
        scene = _scene("airport", seed=seed)
        pairs = vqa_pairs(scene, np.random.default_rng(seed), ("presence",), 4)
        if {qa.answer for qa in pairs} == {"yes", "no"}:
            firsts.append(pairs[0].answer)
    assert len(firsts) >= 20
    assert 0.25 < firsts.count("yes") / len(firsts) < 0.75


def test_an_images_questions_open_with_every_type():
    """Evaluation asks each question as the first turn: training conversations must not always open with one
    question type (they did: presence first, comparisons never first, and comparisons were not learned)."""
    types = ("presence", "comp", "count")
    firsts = {vqa_pairs(_scene("airport", seed=seed), np.random.default_rng(seed), types, 4)[0].qtype
              for seed in range(30)}
    assert firsts == set(types)


@pytest.mark.parametrize("seed", range(5))
def test_referring_expressions_identify_exactly_one_object(seed):
    scene = _scene("parking_lot", seed=seed)
    refs = referring_expressions(scene)
    assert refs, "a busy parking lot always has some uniquely describable vehicle"
    for ref in refs:
        assert resolve(scene, ref.kind, ref.colour, ref.superlative) == [ref.index]
        assert ref.kind.replace("_", " ") in ref.text
        if ref.colour:
            assert ref.colour in ref.text


def test_largest_is_really_the_largest():
    for seed in range(10):
        scene = _scene("harbor", seed=seed)
        for ref in referring_expressions(scene):
            if ref.superlative == "largest" and ref.colour is None:
                same = [o for o in scene.objects if o.kind == ref.kind]
                assert scene.objects[ref.index].area_px == max(o.area_px for o in same)
                return
    pytest.fail("no 'largest' expression in ten harbors")
