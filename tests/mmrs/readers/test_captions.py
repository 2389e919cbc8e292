"""Caption readers (Karpathy JSON, NWPU-Captions) against datasets.md A0-A5, H and the sample corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.captions import SOURCES, clean_caption
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import iter_samples
from mmrs.synthetic.truth import captions as true_captions
from mmrs.synthetic.writers.captions import QUIRK_PERIOD, tokenize

SPECS = {spec.name: spec for spec in SOURCES}


def read(name: str, root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(name)
    return list(SPECS[name].reader(SourceRoot(str(root)), SPECS[name], quarantine)), quarantine


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def write_image(path: Path, size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 60)).save(path)


def sent(raw: Any, tokens: list[str] | None = None, sentid: int = 0) -> dict[str, Any]:
    return {"tokens": tokens if tokens is not None else tokenize(raw or ""), "raw": raw, "imgid": 0, "sentid": sentid}


def image(filename: str, split: str, raws: list[Any] | str, **extra: Any) -> dict[str, Any]:
    sentences = [r if isinstance(r, dict) else sent(r) for r in raws] if isinstance(raws, list) else raws
    return {"filename": filename, "imgid": 0, "split": split, "sentids": list(range(len(raws))),
            "sentences": sentences, **extra}


def sample(name: str, split: str, key: str, image_path: str, label: str | None, texts: list[str]) -> RawSample:
    return RawSample(source=name, split=split, key=key, image=image_path, modality="optical", label=label,
                     captions=texts)


# ------------------------------------------------------------------------------------------ unit rules


@pytest.mark.parametrize(("raw", "clean"), [
    ("There is a piece of farmland .", "There is a piece of farmland."),
    ("  Many planes are parked .  ", "Many planes are parked."),
    ("A road .  A river .", "A road. A river."),
    ("Many   trees\tare green.", "Many trees are green."),
    ("An area of 0.5 km .", "An area of 0.5 km."),
])
def test_clean_caption(raw: str, clean: str) -> None:
    assert clean_caption(raw) == clean


# ----------------------------------------------------------------------------------------- Karpathy


def rsicd_fixture(root: Path) -> None:
    """H Karpathy-json: train/val/test, duplicated captions, trailing ' .', empty raw (tokens fallback), an
    unknown key, a numeric RSICD name, plus malformed records."""
    write_json(root / "dataset_rsicd.json", {"images": [
        image("airport_1.jpg", "train", ["Many planes are parked .", "Many planes are parked .",
                                         " A runway crosses the airport . ", "Many planes are parked ."]),
        image("denseresidential_12.jpg", "val",
              [sent("", ["many", "houses", "are", "dense"]), "Houses are dense.", sent(None, ["a", "road"]),
               sent("   ", [])], cocoid=7),
        image("00433.jpg", "test", ["A bridge over a river ."]),
        image("volcano_3.jpg", "train", ["A mountain ."]),  # prefix outside the 30 RSICD scenes
        "not a record",
        {"imgid": 9, "split": "train", "sentences": []},  # no filename
        image("beach_2.jpg", "restval", ["A beach."]),  # split outside the release's names
        image("airport_1.jpg", "train", ["A copy."]),  # same image twice
        image("beach_4.jpg", "train", [sent("", []), "  "]),  # only empty captions
        image("bridge_5.jpg", "test", "not a list"),
    ], "dataset": "rsicd"})
    for name in ("airport_1.jpg", "denseresidential_12.jpg", "00433.jpg"):
        write_image(root / "RSICD_images" / name)


def test_rsicd_quirks(tmp_path: Path) -> None:
    rsicd_fixture(tmp_path)
    samples, quarantine = read("rsicd", tmp_path)
    assert samples == [
        sample("rsicd", "train", "airport_1", "RSICD_images/airport_1.jpg", "airport",
               ["Many planes are parked.", "Many planes are parked.", "A runway crosses the airport.",
                "Many planes are parked."]),
        sample("rsicd", "val", "denseresidential_12", "RSICD_images/denseresidential_12.jpg", "denseresidential",
               ["many houses are dense", "Houses are dense.", "a road"]),
        sample("rsicd", "test", "00433", "RSICD_images/00433.jpg", None, ["A bridge over a river."]),
        sample("rsicd", "train", "volcano_3", "RSICD_images/volcano_3.jpg", None, ["A mountain."]),
    ]
    assert quarantine.skipped == Counter({"malformed record": 2, "unknown split": 1, "duplicate image": 1,
                                          "empty caption": 3, "no captions": 2})


def test_rsicd_quarantine_entries_name_the_file(tmp_path: Path) -> None:
    rsicd_fixture(tmp_path)
    sink = (tmp_path / "q.jsonl").open("w")
    quarantine = Quarantine("rsicd", sink)
    list(SPECS["rsicd"].reader(SourceRoot(str(tmp_path)), SPECS["rsicd"], quarantine))
    sink.close()
    entries = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert {e["path"] for e in entries} == {"dataset_rsicd.json"}
    assert {"filename": "beach_4.jpg"} in [e["record"] for e in entries if e["reason"] == "no captions"]


def test_rsicd_accepts_any_dataset_json(tmp_path: Path) -> None:
    write_json(tmp_path / "dataset_rsicd_modified.json", {"images": [image("port_2.jpg", "train", ["A port ."])]})
    samples, _ = read("rsicd", tmp_path)
    assert [(s.key, s.label, s.captions) for s in samples] == [("port_2", "port", ["A port."])]
    # the canonical file wins when both are there
    write_json(tmp_path / "dataset_rsicd.json", {"images": [image("pond_1.jpg", "val", ["A pond."])]})
    assert [s.key for s in read("rsicd", tmp_path)[0]] == ["pond_1"]


@pytest.mark.parametrize(("name", "annotation"), [("rsicd", "dataset_rsicd.json"), ("ucm_captions", "dataset.json"),
                                                  ("rsitmd", "dataset_RSITMD.json"),
                                                  ("nwpu_captions", "dataset_nwpu.json")])
def test_missing_annotation_names_the_file(tmp_path: Path, name: str, annotation: str) -> None:
    (tmp_path / "RSICD_images").mkdir()
    with pytest.raises(MissingFileError, match=annotation):
        read(name, tmp_path)


def test_invalid_and_malformed_json_are_quarantined(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text('{"images": [', encoding="utf-8")
    samples, quarantine = read("ucm_captions", tmp_path)
    assert samples == [] and quarantine.skipped == Counter({"invalid json": 1})
    write_json(tmp_path / "dataset.json", {"images": {"1.tif": []}})
    samples, quarantine = read("ucm_captions", tmp_path)
    assert samples == [] and quarantine.skipped == Counter({"malformed file": 1})
    write_json(tmp_path / "dataset_nwpu.json", [{"filename": "a.jpg"}])
    samples, quarantine = read("nwpu_captions", tmp_path)
    assert samples == [] and quarantine.skipped == Counter({"malformed file": 1})


def test_karpathy_bom_and_missing_dataset_key(tmp_path: Path) -> None:
    document = {"images": [image("1.tif", "train", ["A field ."])]}
    (tmp_path / "dataset.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(document).replace(",", ",\r\n").encode())
    samples, _ = read("ucm_captions", tmp_path)
    assert [s.captions for s in samples] == [["A field."]]


@pytest.mark.parametrize("folder", ["imgs", "images"])
def test_ucm_captions_folder_and_scene_blocks(tmp_path: Path, folder: str) -> None:
    names = ["1.tif", "100.tif", "101.tif", "1350.tif", "2100.tif", "2101.tif"]
    write_json(tmp_path / "dataset.json", {"images": [image(n, s, ["A scene ."]) for n, s in
                                                      zip(names, ["train", "train", "val", "test", "train", "test"],
                                                          strict=True)]})
    (tmp_path / folder).mkdir()
    samples, quarantine = read("ucm_captions", tmp_path)
    assert [(s.split, s.key, s.image, s.label) for s in samples] == [
        ("train", "1", f"{folder}/1.tif", "agricultural"), ("train", "100", f"{folder}/100.tif", "agricultural"),
        ("val", "101", f"{folder}/101.tif", "airplane"), ("test", "1350", f"{folder}/1350.tif", "mobilehomepark"),
        ("train", "2100", f"{folder}/2100.tif", "tenniscourt"), ("test", "2101", f"{folder}/2101.tif", None),
    ]
    assert quarantine.total_skipped == 0


def test_sydney_captions_scene_blocks(tmp_path: Path) -> None:
    names = ["1.tif", "242.tif", "243.tif", "315.tif", "359.tif", "451.tif", "547.tif", "613.tif", "x.tif"]
    write_json(tmp_path / "dataset.json", {"images": [image(n, "train", ["A scene."]) for n in names]})
    samples, _ = read("sydney_captions", tmp_path)
    assert [(s.key, s.image, s.label) for s in samples] == [
        ("1", "imgs/1.tif", "residential"), ("242", "imgs/242.tif", "residential"),
        ("243", "imgs/243.tif", "airport"), ("315", "imgs/315.tif", "river"), ("359", "imgs/359.tif", "river"),
        ("451", "imgs/451.tif", "ocean"), ("547", "imgs/547.tif", "industrial"), ("613", "imgs/613.tif", "runway"),
        ("x", "imgs/x.tif", None),
    ]


def test_rsitmd_train_test_only(tmp_path: Path) -> None:
    """A4: only train/test; keyword annotations ignored; blank sentences of older copies skipped."""
    write_json(tmp_path / "dataset_RSITMD.json", {"images": [
        image("baseballfield_452.tif", "train", ["A baseball field .", sent("", [])], keywords=["baseball", "field"]),
        image("boat_3.tif", "test", ["Two boats ."], keywords=[]),
        image("center_9.tif", "val", ["A center."]),
    ]})
    samples, quarantine = read("rsitmd", tmp_path)
    assert samples == [
        sample("rsitmd", "train", "baseballfield_452", "images/baseballfield_452.tif", "baseballfield",
               ["A baseball field."]),
        sample("rsitmd", "test", "boat_3", "images/boat_3.tif", "boat", ["Two boats."]),
    ]
    assert quarantine.skipped == Counter({"empty caption": 1, "unknown split": 1})


# -------------------------------------------------------------------------------------- NWPU-Captions


def nwpu_record(filename: str, imgid: int, split: str, raws: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"filename": filename, "imgid": imgid, "split": split}
    for k, raw in enumerate(raws):
        suffix = f"_{k}" if k else ""
        record[f"raw{suffix}"] = raw
        record[f"sentids{suffix}"] = 5 * imgid + k
    return record


def test_nwpu_captions(tmp_path: Path) -> None:
    """H NWPU-Captions json: 2 class keys, raw..raw_4 / sentids..sentids_4, all three splits."""
    shuffled = {"raw_2": "C .", "sentids_2": 2, "raw": "A .", "sentids": 0, "raw_1": "B .", "sentids_1": 1,
                "filename": "airplane_002.jpg", "imgid": 30801, "split": "val"}
    write_json(tmp_path / "dataset_nwpu.json", {
        "airplane": [nwpu_record("airplane_001.jpg", 30800, "train",
                                 ["Two planes are parked on the apron .", "A plane .", "", " Planes . ", "Planes."]),
                     shuffled],
        "baseball_diamond": [nwpu_record("baseball_diamond_001.jpg", 12, "test", ["A diamond ."] * 5),
                             nwpu_record("baseball_diamond_002.jpg", 13, "train", ["", "", "", "", ""]),
                             nwpu_record("baseball_diamond_003.jpg", 14, "all", ["A field."])],
        "beach": {"filename": "beach_001.jpg"},
    })
    samples, quarantine = read("nwpu_captions", tmp_path)
    assert samples == [
        sample("nwpu_captions", "train", "airplane_001", "NWPU_images/airplane/airplane_001.jpg", "airplane",
               ["Two planes are parked on the apron.", "A plane.", "Planes.", "Planes."]),
        sample("nwpu_captions", "val", "airplane_002", "NWPU_images/airplane/airplane_002.jpg", "airplane",
               ["A.", "B.", "C."]),
        sample("nwpu_captions", "test", "baseball_diamond_001",
               "NWPU_images/baseball_diamond/baseball_diamond_001.jpg", "baseball_diamond", ["A diamond."] * 5),
    ]
    assert quarantine.skipped == Counter({"empty caption": 6, "no captions": 1, "unknown split": 1,
                                          "malformed record": 1})


def test_karpathy_over_s3(tmp_path: Path, s3_bucket: str) -> None:
    """Every access goes through SourceRoot, so an s3:// root reads the same as a local one."""
    import fsspec

    rsicd_fixture(tmp_path)
    fs = fsspec.filesystem("s3")
    fs.put(str(tmp_path / "dataset_rsicd.json"), f"{s3_bucket}/RSICD/dataset_rsicd.json")
    fs.put(str(tmp_path / "RSICD_images" / "00433.jpg"), f"{s3_bucket}/RSICD/RSICD_images/00433.jpg")
    quarantine = Quarantine("rsicd")
    remote = list(SPECS["rsicd"].reader(SourceRoot(f"s3://{s3_bucket}/RSICD"), SPECS["rsicd"], quarantine))
    assert remote == read("rsicd", tmp_path)[0]


# ------------------------------------------------------------------------------------- sample corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    for name in ("rsicd", "nwpu_captions"):
        generate_dataset(name, out, seed=0, scale=1)
    return out


def test_rsicd_corpus_matches_ground_truth(corpus: Path) -> None:
    """Writer quirks (module docstring of writers/captions.py): spaced periods and padding spaces undone,
    index % 10 == 1 keeps its duplicate, == 2 has one caption from tokens, == 5 has a numeric name."""
    dataset = DATASETS["rsicd"]
    samples, quarantine = read("rsicd", corpus / dataset.folder)
    truth = list(iter_samples(dataset, 0, 1))
    assert len(samples) == len(truth) and quarantine.total_skipped == 0
    numbers: Counter[str] = Counter()
    for got, want in zip(samples, truth, strict=True):
        scene = dataset.classes[want.scene_class]
        quirk = want.index % QUIRK_PERIOD
        if quirk == 5:
            key, label = f"{want.index + 1:05d}", None
        else:
            numbers[scene] += 1
            key, label = f"{scene}_{numbers[scene]}", scene
        assert (got.source, got.split, got.key, got.image, got.label) == \
            ("rsicd", want.split, key, f"RSICD_images/{key}.jpg", label)
        texts = true_captions(want.scene)
        if quirk == 1:
            assert got.captions[:5] == texts and got.captions[5] in texts and len(got.captions) == 6
        elif quirk == 2:
            from_tokens = [k for k, (g, t) in enumerate(zip(got.captions, texts, strict=True)) if g != t]
            assert len(from_tokens) == 1 and got.captions[from_tokens[0]] == " ".join(tokenize(texts[from_tokens[0]]))
        else:
            assert got.captions == texts
        assert (corpus / dataset.folder / got.image).is_file()


def test_nwpu_captions_corpus_matches_ground_truth(corpus: Path) -> None:
    dataset = DATASETS["nwpu_captions"]
    samples, quarantine = read("nwpu_captions", corpus / dataset.folder)
    assert quarantine.total_skipped == 0
    expected = []
    numbers: Counter[str] = Counter()
    for want in iter_samples(dataset, 0, 1):
        scene = dataset.classes[want.scene_class]
        numbers[scene] += 1
        key = f"{scene}_{numbers[scene]:03d}"
        expected.append(sample("nwpu_captions", want.split, key, f"NWPU_images/{scene}/{key}.jpg", scene,
                               true_captions(want.scene)))
    # the file groups images by class (keys sorted), each class in sample order
    assert samples == sorted(expected, key=lambda s: s.label or "")
    assert all((corpus / dataset.folder / s.image).is_file() for s in samples)
