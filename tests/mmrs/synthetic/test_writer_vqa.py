"""VQA writers (RSVQA-LR, RSVQA-HR JSON trios; CRSVQA txt) against spec B2, B3, B5 and H."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples
from mmrs.synthetic.scene import OBJECT_KINDS
from mmrs.synthetic.truth import vqa_pairs

IMAGE_KEYS = {"id", "date_added", "original_name", "sensor", "upperleft_map-x", "upperleft_map-y", "res-x",
              "res-y", "people_id", "type", "questions_ids", "active"}
QUESTION_KEYS = {"id", "date_added", "img_id", "people_id", "type", "question", "answers_ids", "active"}
ANSWER_KEYS = {"id", "date_added", "question_id", "people_id", "answer", "active"}
# dataset -> (json prefix, image folder, question types); the generator asks two questions per type
RSVQA = {"rsvqa_lr": ("LR", "Images_LR", ("presence", "comp", "count", "rural_urban")),
         "rsvqa_hr": ("USGS", "Data", ("presence", "comp", "count", "area"))}
PER_TYPE = 12
CRSVQA_TYPES = ("scene", "count_left", "presence")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WriteReport]:
    out = tmp_path_factory.mktemp("vqa")
    return {name: generate_dataset(name, out, seed=0, scale=1) for name in ("rsvqa_lr", "rsvqa_hr", "crsvqa")}


def load_trio(root: Path, prefix: str, split: str) -> dict[str, list[dict[str, Any]]]:
    """{"images": [...], "questions": [...], "answers": [...]} of one split."""
    return {key: json.loads((root / f"{prefix}_split_{split}_{key}.json").read_text(encoding="utf-8-sig"))[key]
            for key in ("images", "questions", "answers")}


def read_rsvqa(trio: dict[str, list[dict[str, Any]]]) -> list[tuple[int, list[tuple[str, str, str]]]]:
    """Robust B2/B3 reader: id maps, active images and questions only, answer by `answers_ids[0]`.
    Returns (image id, [(question, answer, type)]) per active image in id order."""
    questions = {q["id"]: q for q in trio["questions"]}
    answers = {a["id"]: a for a in trio["answers"]}
    out = []
    for image in sorted(trio["images"], key=lambda im: im["id"]):
        if not image["active"]:
            continue
        pairs = []
        for qid in image["questions_ids"]:
            q = questions[qid]
            if q["active"]:
                answer = answers[q["answers_ids"][0]]
                assert answer["question_id"] == qid and answer["active"]
                pairs.append((q["question"], answer["answer"], q["type"]))
        out.append((image["id"], pairs))
    return out


def assert_exact_pixels(path: Path, sample: GeneratedImage) -> None:
    """TIFF and PNG are lossless: the file holds exactly the rendered scene."""
    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), sample.pixels()), path


# --------------------------------------------------------------------------------------------- RSVQA


@pytest.mark.parametrize("name", list(RSVQA))
def test_rsvqa_layout(generated: dict[str, WriteReport], name: str) -> None:
    prefix, image_dir, _ = RSVQA[name]
    root = generated[name].root
    splits = [split for split, _ in DATASETS[name].splits]
    expected = {f"{prefix}_split_{s}_{k}.json" for s in splits for k in ("images", "questions", "answers")}
    assert {p.name for p in root.iterdir() if p.is_file()} == expected
    assert [p.name for p in root.iterdir() if p.is_dir()] == [image_dir]
    assert all(re.fullmatch(r"\d+\.tif", p.name) for p in (root / image_dir).iterdir())


def samples_by_image_id(name: str, root: Path) -> dict[int, GeneratedImage]:
    """Per split, active images in id order are that split's samples in index order."""
    prefix, _, _ = RSVQA[name]
    samples = list(iter_samples(DATASETS[name], 0, 1))
    out: dict[int, GeneratedImage] = {}
    for split, _ in DATASETS[name].splits:
        ids = sorted(im["id"] for im in load_trio(root, prefix, split)["images"] if im["active"])
        out.update(zip(ids, [s for s in samples if s.split == split], strict=True))
    return out


@pytest.mark.parametrize("name", list(RSVQA))
def test_rsvqa_answers_are_truth(generated: dict[str, WriteReport], name: str) -> None:
    """Pixels, questions, answers and types of every active image equal the truth of its sample; the
    report counts what the files hold."""
    prefix, image_dir, types = RSVQA[name]
    spec, root = DATASETS[name], generated[name].root
    by_id = samples_by_image_id(name, root)
    n_pairs = 0
    for split, _ in spec.splits:
        read = read_rsvqa(load_trio(root, prefix, split))
        assert len(read) == generated[name].splits[split]
        for img_id, pairs in read:
            sample = by_id[img_id]
            assert sample.split == split
            assert_exact_pixels(root / image_dir / f"{img_id}.tif", sample)
            truth = vqa_pairs(sample.scene, sample.rng("vqa"), types, PER_TYPE)
            assert pairs == [(qa.question, qa.answer, qa.qtype) for qa in truth]
            n_pairs += len(pairs)
    assert generated[name].images == len(by_id) == spec.images == len(list((root / image_dir).iterdir()))
    assert generated[name].annotations == n_pairs


@pytest.mark.parametrize("name", list(RSVQA))
def test_rsvqa_quirks(generated: dict[str, WriteReport], name: str) -> None:
    """H: full record fields, ids with a gap, an inactive image (no file) and an inactive question whose
    answer is still true of its image."""
    prefix, image_dir, _ = RSVQA[name]
    spec, root = DATASETS[name], generated[name].root
    trios = [load_trio(root, prefix, split) for split, _ in spec.splits]
    images = [im for t in trios for im in t["images"]]
    questions = [q for t in trios for q in t["questions"]]
    answers = {a["id"]: a for t in trios for a in t["answers"]}
    assert all(set(im) == IMAGE_KEYS for im in images)
    assert all(set(q) == QUESTION_KEYS for q in questions) and all(set(a) == ANSWER_KEYS for a in answers.values())
    for ids in ([im["id"] for im in images], [q["id"] for q in questions]):
        assert len(set(ids)) == len(ids) and max(ids) + 1 > len(ids)  # unique, with a gap
    inactive_images = [im for im in images if not im["active"]]
    assert len(inactive_images) == 1 and not (root / image_dir / f"{inactive_images[0]['id']}.tif").exists()
    inactive_questions = [q for q in questions if not q["active"]]
    assert len(inactive_questions) == 1
    question = inactive_questions[0]
    answer = answers[question["answers_ids"][0]]
    assert not answer["active"] and question["type"] == "presence"
    match = re.fullmatch(r"Is there a (.+) in the image\?", question["question"])
    assert match
    kind = next(k for k, spec_ in OBJECT_KINDS.items() if spec_.name.replace("_", " ") == match.group(1))
    owner = next(im for im in images if im["id"] == question["img_id"])
    assert owner["active"] and question["id"] in owner["questions_ids"]
    scene = samples_by_image_id(name, root)[question["img_id"]].scene
    assert answer["answer"] == ("yes" if scene.count(kind) else "no")


def test_rsvqa_answer_vocabulary(generated: dict[str, WriteReport]) -> None:
    """B2/B3: LR and HR types; yes/no, rural/urban, raw integer counts, HR areas like "1234m2"."""
    for name, (prefix, _, types) in RSVQA.items():
        trios = [load_trio(generated[name].root, prefix, split) for split, _ in DATASETS[name].splits]
        answers = {a["question_id"]: a["answer"] for t in trios for a in t["answers"]}
        qa = [(q["type"], answers[q["id"]]) for t in trios for q in t["questions"]]
        assert {qtype for qtype, _ in qa} == set(types)
        pattern = {"presence": r"yes|no", "comp": r"yes|no", "count": r"\d+", "rural_urban": r"rural|urban",
                   "area": r"\d+m2"}
        assert all(re.fullmatch(pattern[qtype], answer) for qtype, answer in qa)
        if name == "rsvqa_hr":
            areas = [answer for qtype, answer in qa if qtype == "area"]
            assert "0m2" in areas and any(answer != "0m2" for answer in areas)


# ------------------------------------------------------------------------------------------- CRSVQA


def read_crsvqa(path: Path) -> list[tuple[str, str]]:
    """B5 reader: `\r\n` lines alternating question / answer, full-width ？ normalised to ?."""
    lines = path.read_text(encoding="utf-8-sig").replace("\r", "").split("\n")
    assert lines[-1] == ""
    lines = [line.replace("\uff1f", "?") for line in lines[:-1]]
    return list(zip(lines[0::2], lines[1::2], strict=True))


def test_crsvqa(generated: dict[str, WriteReport]) -> None:
    report = generated["crsvqa"]
    data = report.root / "data"
    assert sorted(p.name for p in report.root.iterdir()) == ["data"]
    assert sorted(p.name for p in data.iterdir()) == ["image", "text"]
    samples = list(iter_samples(DATASETS["crsvqa"], 0, 1))
    names = [f"{s.index + 1:05d}" for s in samples]
    assert sorted(p.name for p in (data / "image").iterdir()) == [f"{n}.png" for n in names]
    assert sorted(p.name for p in (data / "text").iterdir()) == [f"{n}.txt" for n in names]
    n_pairs = 0
    for name, sample in zip(names, samples, strict=True):
        assert_exact_pixels(data / "image" / f"{name}.png", sample)
        raw = (data / "text" / f"{name}.txt").read_bytes()
        assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n")
        truth = vqa_pairs(sample.scene, sample.rng("vqa"), CRSVQA_TYPES)
        assert read_crsvqa(data / "text" / f"{name}.txt") == [(qa.question, qa.answer) for qa in truth]
        n_pairs += len(truth)
    assert report.images == len(samples) and report.annotations == n_pairs and report.splits == {"all": 30}
    texts = [p.read_text(encoding="utf-8") for p in (data / "text").iterdir()]
    assert any("\uff1f" in t for t in texts) and any("?" in t for t in texts)


def test_deterministic(generated: dict[str, WriteReport], tmp_path: Path) -> None:
    """Same seed, same bytes (TIFF encoder and JSON trio)."""
    again = generate_dataset("rsvqa_lr", tmp_path, seed=0, scale=1).root
    first = generated["rsvqa_lr"].root
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (again / f).read_bytes() for f in files)
