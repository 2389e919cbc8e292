"""End to end: sample corpus (native formats) -> readers -> conversion; the MMRS answers equal the
generator's ground truth, and every quality check passes."""

import re
from collections import Counter

import pytest

from evaluation.parsing import parse_boxes
from mmrs.quality import check_source
from mmrs.readers.common import display_name
from mmrs.shards import iter_source_records
from mmrs.synthetic.corpus import DATASETS, DIOR_OBJECTS, HIT_UAV_OBJECTS
from mmrs.synthetic.samples import iter_samples
from mmrs.synthetic.truth import captions, referring_expressions
from mmrs.templates import number_text

NAMES = ["nwpu_resisc45", "rsicd", "rsvqa_lr", "dior", "dior_rsvg", "hrsid", "hit_uav", "dota", "air_sarship_2"]


@pytest.fixture(scope="module")
def converted(sample_corpus):
    return sample_corpus(NAMES) / "mmrs"


def _records(out, name, task=None):
    return [r for r in iter_source_records(str(out / name)) if task is None or r["task"] == task]


@pytest.mark.parametrize("name", NAMES)
def test_quality_checks_pass(converted, name):
    report = check_source(str(converted), name)
    assert report.records > 0
    assert (report.schema_errors.count, report.out_of_range.count, report.duplicate_ids.count,
            report.leaked_images.count) == (0, 0, 0, 0)
    assert report.quarantine_rate < 0.1


def test_classification_answers(converted):
    spec = DATASETS["nwpu_resisc45"]
    expected = Counter(display_name(spec.classes[s.scene_class]) for s in iter_samples(spec, 0, 1))
    assert Counter(r["conversations"][1]["value"] for r in _records(converted, "nwpu_resisc45")) == expected


def _words(text):
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_caption_answers(converted):
    """The five true captions per image; duplicates removed; an empty `raw` recovered from its tokens
    (lower-case, no punctuation, hence the comparison by words)."""
    expected = Counter(_words(c) for s in iter_samples(DATASETS["rsicd"], 0, 1) for c in captions(s.scene))
    got = Counter(_words(t["value"]) for r in _records(converted, "rsicd") for t in r["conversations"][1::2])
    assert got == expected


def test_vqa_answers(converted):
    got = Counter((qa["question"], qa["answer"]) for r in _records(converted, "rsvqa_lr") for qa in r["target"]["qa"])
    assert sum(got.values()) >= 25 * 40
    from mmrs.synthetic.truth import vqa_pairs
    from mmrs.synthetic.writers.vqa import LR_LAYOUT

    expected = Counter((qa.question, qa.answer) for s in iter_samples(DATASETS["rsvqa_lr"], 0, 1)
                       for qa in vqa_pairs(s.scene, s.rng("vqa"), LR_LAYOUT.types, LR_LAYOUT.per_type))
    assert got == expected


@pytest.mark.parametrize(("name", "class_map"), [("dior", DIOR_OBJECTS), ("hit_uav", HIT_UAV_OBJECTS),
                                                 ("hrsid", {"ship": "ship"}), ("air_sarship_2", {"ship": "ship"})])
def test_detection_counts_per_class(converted, name, class_map):
    expected = Counter(class_map[o.kind] for s in iter_samples(DATASETS[name], 0, 1) for o in s.scene.objects
                       if o.kind in class_map)
    for task in ("detection_hbb", "detection_obb"):
        got = Counter(label for r in _records(converted, name, task) for label in r["target"]["labels"])
        assert got == expected, task


def test_detection_answer_text_states_the_counts(converted):
    for record in _records(converted, "dior", "detection_hbb"):
        n = len(record["target"]["labels"])
        first = record["conversations"][1]["value"]
        assert first.count(";") + first.count("[") == n  # boxes = groups + separators inside groups
        assert first.startswith(f"There {'is' if n == 1 else 'are'} {number_text(n) if n else 'no'} object")


def test_dota_scenes_become_tiles_with_every_labelled_object(converted):
    records = _records(converted, "dota", "detection_obb")
    assert records and all(r["image"].startswith("tiles/") for r in records)
    labelled = {s.index for s in iter_samples(DATASETS["dota"], 0, 1) if s.split != "test"}
    assert {r["id"].split("/")[2].split("__")[0] for r in records} == {f"P{i:04d}" for i in labelled}


def test_grounding_answers(converted):
    spec = DATASETS["dior_rsvg"]
    expected = Counter(ref.text for s in iter_samples(spec, 0, 1) for ref in referring_expressions(s.scene))
    got = Counter(t["value"] for r in _records(converted, "dior_rsvg", "region_caption")
                  for t in r["conversations"][1::2])
    assert got == expected


@pytest.mark.parametrize("name", ["dota", "dior", "dior_rsvg", "hrsid", "air_sarship_2"])
def test_every_box_an_answer_writes_has_an_area(converted, name):
    """Two decimals collapse objects under 1 % of the side; their written boxes are widened (visible_box)."""
    written = 0
    for record in _records(converted, name):
        if record["task"] not in ("detection_hbb", "detection_obb", "grounding"):
            continue
        oriented = record["task"] == "detection_obb"
        for answer in record["conversations"][1::2]:
            for group in re.findall(r"\[([0-9.,;]+)\]", answer["value"]):
                parsed = parse_boxes(f"[{group}]", oriented)
                assert parsed.ok and len(parsed.value) == group.count(";") + 1, (record["id"], group)
                written += len(parsed.value)
    assert written > 0
