"""VQA readers (FloodNet, RSVQA-LR/HR, RSIVQA, CRSVQA) against datasets.md B1-B5, H and the sample corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import QAPair, RawSample
from mmrs.readers.common import hash_split
from mmrs.readers.vqa import SOURCES
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import iter_samples
from mmrs.synthetic.truth import vqa_pairs
from mmrs.synthetic.writers.vqa import CRSVQA_TYPES, GAP_INDEX, HR_LAYOUT, INACTIVE_INDEX, LR_LAYOUT

SPECS = {spec.name: spec for spec in SOURCES}


def read(name: str, root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(name)
    return list(SPECS[name].reader(SourceRoot(str(root)), SPECS[name], quarantine)), quarantine


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def write_text(path: Path, text: str, newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (40, 80, 120)).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


def vqa_sample(name: str, split: str, key: str, image: str, qa: list[QAPair], **meta: str) -> RawSample:
    return RawSample(source=name, split=split, key=key, image=image, modality="optical", qa=qa, meta=dict(meta))


# ------------------------------------------------------------------------------------------- FloodNet


def floodnet_fixture(root: Path, test_name: str = "Test_Question.json") -> None:
    """H FloodNet json: keys "0", "1", ..., int and str Ground_Truth, all four Question_Types, JSON file
    names with spaces, an image name with a space, an Image_ID whose extension case differs from the file."""
    write_json(root / "Questions" / "Training Question.json", {
        "0": {"Image_ID": "10165.jpg", "Question": "What is the overall condition of the given image?",
              "Ground_Truth": "non flooded", "Question_Type": "Condition_Recognition"},
        "1": {"Image_ID": "10165.jpg", "Question": "How many buildings are in the image?", "Ground_Truth": 4,
              "Question_Type": "Simple_Counting"},
        "2": {"Image_ID": "7 b.jpg", "Question": " Is the entire road  flooded? ", "Ground_Truth": "Yes",
              "Question_Type": "Yes_No"},
        "3": {"Image_ID": "10165.jpg", "Question": "How many buildings are flooded in this image?",
              "Ground_Truth": 2.0, "Question_Type": "Complex_Counting"},
        "4": "not a record",
        "5": {"Image_ID": "7 b.jpg", "Question": "", "Ground_Truth": "No", "Question_Type": "Yes_No"},
        "6": {"Question": "Is there water?", "Ground_Truth": "No", "Question_Type": "Yes_No"},
        "7": {"Image_ID": "7 b.jpg", "Question": "Is there water?", "Ground_Truth": True, "Question_Type": "Yes_No"},
    })
    write_json(root / "Questions" / "Valid Question.json", {
        "0": {"Image_ID": "10170.JPG", "Question": "How many buildings are non flooded?", "Ground_Truth": 0,
              "Question_Type": "Complex_Counting"},
    })
    write_json(root / "Questions" / test_name, {
        "0": {"Image_ID": "20001.jpg", "Question": "Is the entire road non flooded?", "Question_Type": "Yes_No"},
        "1": {"Image_ID": "20002.jpg", "Question": "What is the overall condition of the given image?",
              "Ground_Truth": "flooded,non flooded", "Question_Type": "Condition_Recognition"},
    })
    for rel in ("Train_Image/10165.jpg", "Train_Image/7 b.jpg", "Valid_Image/10170.jpg", "Test_Image/20002.jpg"):
        write_image(root / "Images" / rel)


def test_floodnet(tmp_path: Path) -> None:
    floodnet_fixture(tmp_path)
    samples, quarantine = read("floodnet", tmp_path)
    assert samples == [
        vqa_sample("floodnet", "train", "10165", "Images/Train_Image/10165.jpg", [
            QAPair("What is the overall condition of the given image?", "non flooded", "Condition_Recognition"),
            QAPair("How many buildings are in the image?", "4", "Simple_Counting"),
            QAPair("How many buildings are flooded in this image?", "2", "Complex_Counting")]),
        vqa_sample("floodnet", "train", "7 b", "Images/Train_Image/7 b.jpg",
                   [QAPair("Is the entire road flooded?", "Yes", "Yes_No")]),
        vqa_sample("floodnet", "val", "10170", "Images/Valid_Image/10170.jpg",
                   [QAPair("How many buildings are non flooded?", "0", "Complex_Counting")]),
        vqa_sample("floodnet", "test", "20002", "Images/Test_Image/20002.jpg",
                   [QAPair("What is the overall condition of the given image?", "flooded,non flooded",
                           "Condition_Recognition")]),
    ]
    assert quarantine.skipped == Counter({"malformed record": 1, "missing question": 1, "missing image id": 1,
                                          "malformed answer": 1, "missing answer": 1})


def test_floodnet_test_file_name_variant(tmp_path: Path) -> None:
    floodnet_fixture(tmp_path, test_name="Test Question.json")
    samples, _ = read("floodnet", tmp_path)
    assert [s.key for s in samples if s.split == "test"] == ["20002"]


def test_floodnet_missing_file_names_it(tmp_path: Path) -> None:
    floodnet_fixture(tmp_path)
    (tmp_path / "Questions" / "Valid Question.json").unlink()
    samples, quarantine = read("floodnet", tmp_path)
    assert samples and "val" not in {s.split for s in samples}
    assert "Valid Question.json" in quarantine.absent["val"]
    for name in ("Training Question.json", "Test_Question.json"):
        (tmp_path / "Questions" / name).unlink()
    with pytest.raises(MissingFileError, match="Valid Question.json"):
        read("floodnet", tmp_path)


# ---------------------------------------------------------------------------------------------- RSVQA


def trio(root: Path, prefix: str, split: str, images: list[Any], questions: list[Any], answers: list[Any]) -> None:
    for part, records in (("images", images), ("questions", questions), ("answers", answers)):
        write_json(root / f"{prefix}_split_{split}_{part}.json", {part: records})


def question(qid: int, img_id: int, qtype: str, text: str, active: bool = True, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "date_added": 0, "img_id": img_id, "people_id": 0, "type": qtype, "question": text,
            "answers_ids": [qid], "active": active, **extra}


def answer(aid: int, text: Any, active: bool = True, link: str = "question_id") -> dict[str, Any]:
    return {"id": aid, "date_added": 0, link: aid, "people_id": 0, "answer": text, "active": active}


def rsvqa_lr_fixture(root: Path) -> None:
    """H RSVQA json trio: ids with a gap and positions that are not ids, an inactive image and question,
    raw and pre-bucketed counts, `quesiton_id`, an answer found through the question link only."""
    trio(root, "LR", "train",
         images=[{"id": 3, "questions_ids": [12, 10, 11], "active": True},
                 {"id": 4, "questions_ids": [13], "active": False},
                 {"id": 0, "questions_ids": [0, 1, 2, 3], "active": True}],
         questions=[question(3, 0, "rural_urban", "Is it a rural or an urban area?", answers_ids=[]),
                    question(0, 0, "presence", "Is there a road?"),
                    question(1, 0, "count", "How many buildings are there?"),
                    question(2, 0, "comp", "Are there more roads than buildings?", active=False),
                    question(10, 3, "count", "How many water areas are there?"),
                    question(11, 3, "comp", "Is the number of roads equal to the number of buildings?"),
                    question(12, 3, "presence", "Is there a farmland?"),
                    question(13, 4, "presence", "Is there a road?")],
         answers=[answer(12, "no"), answer(11, "yes", link="quesiton_id"), answer(10, "between 1 and 10"),
                  answer(3, "rural", link="quesiton_id"), answer(0, "yes"), answer(1, 12), answer(2, "no", False),
                  answer(13, "yes")])
    trio(root, "LR", "val",
         images=[{"id": 5, "questions_ids": [20, 99], "active": True},  # 99: no such question
                 {"id": 6, "questions_ids": [21, 22], "active": True},  # one without answer, one without text
                 {"id": 7, "questions_ids": [23], "active": True},  # only an inactive question
                 {"questions_ids": [24], "active": True},  # no id
                 {"id": 5, "questions_ids": [20], "active": True}],  # same image again
         questions=[question(20, 5, "presence", "Is there a road?"), question(21, 6, "count", "How many?"),
                    question(22, 6, "count", ""), question(23, 7, "count", "How many roads?", active=False),
                    {"question": "no id"}],
         answers=[answer(20, "no"), answer(22, "3"), answer(23, "1")])
    trio(root, "LR", "test", images=[{"id": 8, "questions_ids": [30], "active": True}],
         questions=[question(30, 8, "presence", "Is there a road?")], answers=[answer(30, "yes")])


def test_rsvqa_lr(tmp_path: Path) -> None:
    rsvqa_lr_fixture(tmp_path)
    samples, quarantine = read("rsvqa_lr", tmp_path)
    assert samples == [
        vqa_sample("rsvqa_lr", "train", "3", "Images_LR/3.tif", [
            QAPair("Is there a farmland?", "no", "presence"),
            QAPair("How many water areas are there?", "between 1 and 10", "count"),
            QAPair("Is the number of roads equal to the number of buildings?", "yes", "comp")]),
        vqa_sample("rsvqa_lr", "train", "0", "Images_LR/0.tif", [
            QAPair("Is there a road?", "yes", "presence"), QAPair("How many buildings are there?", "12", "count"),
            QAPair("Is it a rural or an urban area?", "rural", "rural_urban")]),
        vqa_sample("rsvqa_lr", "val", "5", "Images_LR/5.tif", [QAPair("Is there a road?", "no", "presence")]),
        vqa_sample("rsvqa_lr", "test", "8", "Images_LR/8.tif", [QAPair("Is there a road?", "yes", "presence")]),
    ]
    assert quarantine.skipped == Counter({"unknown question": 1, "missing answer": 1, "missing question": 1,
                                          "no questions": 2, "malformed record": 2, "duplicate image": 1})


def test_rsvqa_image_folder_variant(tmp_path: Path) -> None:
    rsvqa_lr_fixture(tmp_path)
    (tmp_path / "Images").mkdir()
    assert {s.image.split("/")[0] for s in read("rsvqa_lr", tmp_path)[0]} == {"Images"}
    (tmp_path / "Images_LR").mkdir()
    assert {s.image.split("/")[0] for s in read("rsvqa_lr", tmp_path)[0]} == {"Images_LR"}


def test_rsvqa_missing_split_file_names_it(tmp_path: Path) -> None:
    rsvqa_lr_fixture(tmp_path)
    (tmp_path / "LR_split_val_answers.json").unlink()
    samples, quarantine = read("rsvqa_lr", tmp_path)
    assert samples and "val" not in {s.split for s in samples}
    assert "LR_split_val_answers.json" in quarantine.absent["val"]
    for path in tmp_path.glob("LR_split_*_questions.json"):
        path.unlink()
    with pytest.raises(MissingFileError, match="LR_split_val_answers.json"):
        read("rsvqa_lr", tmp_path)


def test_rsvqa_malformed_file_is_quarantined(tmp_path: Path) -> None:
    rsvqa_lr_fixture(tmp_path)
    write_json(tmp_path / "LR_split_val_questions.json", {"question": []})
    (tmp_path / "LR_split_test_images.json").write_text("{", encoding="utf-8")
    samples, quarantine = read("rsvqa_lr", tmp_path)
    assert {s.split for s in samples} == {"train"}
    assert quarantine.skipped == Counter({"malformed file": 1, "invalid json": 1})


def test_rsvqa_hr_area_and_test_phili(tmp_path: Path) -> None:
    for offset, split in enumerate(("train", "val", "test", "test_phili")):
        trio(tmp_path, "USGS", split, images=[{"id": offset, "questions_ids": [offset], "active": True}],
             questions=[question(offset, offset, "area", "What is the area covered by buildings?")],
             answers=[answer(offset, f"{1234 * offset}m2")])
    (tmp_path / "Data").mkdir()
    write_json(tmp_path / "USGSquestions.json", {"questions": []})  # unsplit master files are ignored
    samples, quarantine = read("rsvqa_hr", tmp_path)
    assert [(s.split, s.key, s.image, s.qa) for s in samples] == [
        (split, str(k), f"Data/{k}.tif", [QAPair("What is the area covered by buildings?", f"{1234 * k}m2", "area")])
        for k, split in enumerate(("train", "val", "test", "test_phili"))]
    assert quarantine.total_skipped == 0
    assert SPECS["rsvqa_hr"].evaluation_only and SPECS["rsvqa_hr"].paper_samples is None


# --------------------------------------------------------------------------------------------- RSIVQA

RSIVQA_FILES = {
    "UCM/ucm_vqa.txt": "12.tif:what is the theme of this picture?farmland\n"
                       "13.tif:what is the theme of this picture?medium residential\n\n",
    "UCM/ucm_res.txt": "12.tif:How many trees are there in this picture?eight\n"
                       "12.tif:What is the location of the  in this picture?center\n"
                       "12.tif:What is the location of the tree in this picture?top left corner\n"
                       "12.tif no colon here?yes\n"
                       "13.tif:is this a question without mark\n"
                       "13.tif:does this picture contain airplane?\n",
    "Sydney/sydney_vqa.txt": "600.tif:what is the theme of this picture?runway\n",
    "AID/rsicd_vqa.txt": "airport_12.jpg:what is the theme of this picture?airport\n"
                         "00433.jpg:what is the theme of this picture?bridge\n",
    "HRRSD/opt_val_vqa.txt": "00001: does this picture contain airplane?yes\n"
                             "00001: how many T junctions are there in this picture?2\n",
    "DOTA/dota_train_vqa2.txt": "P0003: how many small vehicles are there in this picture?15\n",
    "DOTA/dota_val_vqa2.txt": "P0003: does this picture contain container crane?no\r\n",
}


def rsivqa_expected() -> list[RawSample]:
    def qa(question: str, answer: str, qtype: str | None) -> QAPair:
        return QAPair(question, answer, qtype)

    theme = "what is the theme of this picture?"

    def split(key: str) -> str:
        return hash_split(key, {"train": 0.6, "test": 0.4})

    return [
        vqa_sample("rsivqa", split("AID/airport_12"), "AID/airport_12", "../RSICD/RSICD_images/airport_12.jpg",
                   [qa(theme, "airport", "scene")], subset="AID"),
        vqa_sample("rsivqa", split("AID/00433"), "AID/00433", "../RSICD/RSICD_images/00433.jpg",
                   [qa(theme, "bridge", "scene")], subset="AID"),
        vqa_sample("rsivqa", "train", "DOTA/P0003", "../DOTA/train/images/P0003.png",
                   [qa("how many small vehicles are there in this picture?", "15", "count")], subset="DOTA"),
        vqa_sample("rsivqa", "val", "DOTA/P0003", "../DOTA/val/images/P0003.png",
                   [qa("does this picture contain container crane?", "no", "presence")], subset="DOTA"),
        vqa_sample("rsivqa", split("HRRSD/00001"), "HRRSD/00001", "../TGRS-HRRSD-Dataset/OPT2017/JPEGImages/00001.jpg",
                   [qa("does this picture contain airplane?", "yes", "presence"),
                    qa("how many T junctions are there in this picture?", "2", "count")], subset="HRRSD"),
        vqa_sample("rsivqa", split("Sydney/600"), "Sydney/600", "../Sydney_captions/imgs/600.tif",
                   [qa(theme, "runway", "scene")], subset="Sydney"),
        # files sorted: ucm_res.txt before ucm_vqa.txt, both merged per image
        vqa_sample("rsivqa", split("UCM/12"), "UCM/12", "../UCM_captions/imgs/12.tif",
                   [qa("How many trees are there in this picture?", "eight", "count"),
                    qa("What is the location of the tree in this picture?", "top left corner", "location"),
                    qa(theme, "farmland", "scene")], subset="UCM"),
        vqa_sample("rsivqa", split("UCM/13"), "UCM/13", "../UCM_captions/imgs/13.tif",
                   [qa(theme, "medium residential", "scene")], subset="UCM"),
    ]


def test_rsivqa(tmp_path: Path) -> None:
    """H RSIVQA txt: `1.tif:` and `P0003: ` keys, a word count, the double-space template; DOTA official
    train/val, other sub-folders hash-split by image."""
    for rel, text in RSIVQA_FILES.items():
        write_text(tmp_path / rel, text)
    samples, quarantine = read("rsivqa", tmp_path)
    assert samples == rsivqa_expected()
    assert quarantine.skipped == Counter({"empty template slot": 1, "malformed line": 2, "missing answer": 1})


def test_rsivqa_missing_folder_names_it(tmp_path: Path) -> None:
    for rel, text in RSIVQA_FILES.items():
        if not rel.startswith("HRRSD"):
            write_text(tmp_path / rel, text)
    samples, quarantine = read("rsivqa", tmp_path)
    assert samples and "HRRSD" in quarantine.absent
    with pytest.raises(MissingFileError, match="HRRSD"):
        read("rsivqa", tmp_path / "nothing-here")


def test_rsivqa_image_paths_resolve_beside_the_release(tmp_path: Path) -> None:
    """Relative image roots point into the other releases unpacked beside RSIVQA."""
    for rel, text in RSIVQA_FILES.items():
        write_text(tmp_path / "RSIVQA" / rel, text)
    write_image(tmp_path / "UCM_captions" / "imgs" / "12.tif")
    root = SourceRoot(str(tmp_path / "RSIVQA"))
    samples = list(SPECS["rsivqa"].reader(root, SPECS["rsivqa"], Quarantine("rsivqa")))
    ucm_12 = next(s for s in samples if s.key == "UCM/12")
    assert root.exists(ucm_12.image) and root.image_size(ucm_12.image) == (8, 6)


# --------------------------------------------------------------------------------------------- CRSVQA


def test_crsvqa(tmp_path: Path) -> None:
    """B5: CRLF, full-width `？`, alternating lines; a dangling question, a blank answer, an empty file."""
    text = tmp_path / "data" / "text"
    write_text(text / "00002.txt", "What is the main scene in this image？\nharbor\n"
                                   "How many ships are on the left of the bridge?\n3\n"
                                   "Is there a bridge?\nyes\n\n\n", newline="\r\n")
    write_text(text / "00001.txt", "What shape is the pool?\nround\nIs there a road?\n \nWhat theme?\n", "\r\n")
    write_text(text / "00003.txt", "\r\n")
    write_text(text / "notes.md", "not a QA file")
    write_image(tmp_path / "data" / "image" / "00001.PNG")
    write_image(tmp_path / "data" / "image" / "00002.png")
    samples, quarantine = read("crsvqa", tmp_path)

    def split(key: str) -> str:
        return hash_split(key, {"train": 0.9, "test": 0.1})

    assert samples == [
        vqa_sample("crsvqa", split("00001"), "00001", "data/image/00001.PNG",
                   [QAPair("What shape is the pool?", "round", "object")]),
        vqa_sample("crsvqa", split("00002"), "00002", "data/image/00002.png",
                   [QAPair("What is the main scene in this image?", "harbor", "scene"),
                    QAPair("How many ships are on the left of the bridge?", "3", "object"),
                    QAPair("Is there a bridge?", "yes", "other")]),
    ]
    assert quarantine.skipped == Counter({"missing answer": 2, "no questions": 1})


def test_crsvqa_missing_text_folder_names_it(tmp_path: Path) -> None:
    (tmp_path / "data" / "image").mkdir(parents=True)
    with pytest.raises(MissingFileError, match="data/text"):
        read("crsvqa", tmp_path)


# ------------------------------------------------------------------------------------- sample corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    for name in ("rsvqa_lr", "rsvqa_hr", "crsvqa"):
        generate_dataset(name, out, seed=0, scale=1)
    return out


def rsvqa_image_id(index: int) -> int:
    """The writer's ids (writers/vqa.py docstring): an inactive placeholder takes an id before
    INACTIVE_INDEX and one id is skipped before GAP_INDEX."""
    return index + (index >= INACTIVE_INDEX) + (index >= GAP_INDEX)


@pytest.mark.parametrize(("name", "layout"), [("rsvqa_lr", LR_LAYOUT), ("rsvqa_hr", HR_LAYOUT)])
def test_rsvqa_corpus_matches_ground_truth(corpus: Path, name: str, layout: Any) -> None:
    dataset = DATASETS[name]
    samples, quarantine = read(name, corpus / dataset.folder)
    assert quarantine.total_skipped == 0  # the inactive image and question are left out silently
    order = [split for split, _ in dataset.splits]
    expected = []
    for want in sorted(iter_samples(dataset, 0, 1), key=lambda s: order.index(s.split)):
        image_id = rsvqa_image_id(want.index)
        pairs = vqa_pairs(want.scene, want.rng("vqa"), layout.types, layout.per_type)
        expected.append(vqa_sample(name, want.split, str(image_id), f"{layout.image_dir}/{image_id}.tif",
                                   [QAPair(p.question, p.answer, p.qtype) for p in pairs]))
    assert samples == expected
    assert all((corpus / dataset.folder / s.image).is_file() for s in samples)


def test_crsvqa_corpus_matches_ground_truth(corpus: Path) -> None:
    dataset = DATASETS["crsvqa"]
    samples, quarantine = read("crsvqa", corpus / dataset.folder)
    assert quarantine.total_skipped == 0
    derived = {"scene": "scene", "count_left": "object", "presence": "other"}  # the authors' keyword rule
    expected = []
    for want in iter_samples(dataset, 0, 1):
        key = f"{want.index + 1:05d}"
        pairs = vqa_pairs(want.scene, want.rng("vqa"), CRSVQA_TYPES)
        expected.append(vqa_sample("crsvqa", hash_split(key, {"train": 0.9, "test": 0.1}), key,
                                   f"data/image/{key}.png",
                                   [QAPair(p.question, p.answer, derived[p.qtype]) for p in pairs]))
    assert samples == expected
    assert {s.split for s in samples} == {"train", "test"}
