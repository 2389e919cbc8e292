"""Caption writers (RSICD Karpathy JSON, NWPU-Captions class-keyed JSON) against spec A0, A1, A5 and H."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples
from mmrs.synthetic.truth import captions

KARPATHY_IMAGE_KEYS = {"filename", "imgid", "split", "sentids", "sentences"}
KARPATHY_SENT_KEYS = {"tokens", "raw", "imgid", "sentid"}
NWPU_KEYS = ["filename", "imgid", "split", "raw", "sentids", *(f"{k}_{i}" for i in range(1, 5)
                                                               for k in ("raw", "sentids"))]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WriteReport]:
    out = tmp_path_factory.mktemp("captions")
    return {name: generate_dataset(name, out, seed=0, scale=1) for name in ("rsicd", "nwpu_captions")}


@pytest.fixture(scope="module")
def rsicd(generated: dict[str, WriteReport]) -> dict[str, Any]:
    return json.loads((generated["rsicd"].root / "dataset_rsicd.json").read_text(encoding="utf-8-sig"))


@pytest.fixture(scope="module")
def nwpu(generated: dict[str, WriteReport]) -> dict[str, Any]:
    return json.loads((generated["nwpu_captions"].root / "dataset_nwpu.json").read_text(encoding="utf-8-sig"))


def clean(raw: str) -> str:
    """A0 reader rule: strip, collapse the space before the final period."""
    return re.sub(r"\s+\.$", ".", raw.strip())


def words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.lower()))


def read_karpathy_captions(image: dict[str, Any]) -> list[str]:
    """A0 reader rule: cleaned `raw`, or the joined tokens when `raw` is empty; deduplicated, in order."""
    texts = [clean(s["raw"]) or " ".join(s["tokens"]) for s in image["sentences"]]
    return list(dict.fromkeys(texts))


def assert_same_image(path: Path, sample: GeneratedImage) -> None:
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (sample.width, sample.height)
        diff = np.abs(np.asarray(image).astype(int) - sample.pixels().astype(int))
    assert diff.mean() < 6.0, path  # JPEG q92 error; another scene differs by > 15


# --------------------------------------------------------------------------------------------- RSICD


def test_rsicd_schema(rsicd: dict[str, Any], generated: dict[str, WriteReport]) -> None:
    assert list(rsicd) == ["images", "dataset"] and rsicd["dataset"] == "rsicd"
    images = rsicd["images"]
    assert [im["imgid"] for im in images] == list(range(DATASETS["rsicd"].images))
    sentids = [s["sentid"] for im in images for s in im["sentences"]]
    assert sentids == list(range(len(sentids)))
    for im in images:
        assert set(im) >= KARPATHY_IMAGE_KEYS
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        assert all(set(s) == KARPATHY_SENT_KEYS and s["imgid"] == im["imgid"] for s in im["sentences"])
    report = generated["rsicd"]
    assert report.images == len(images) and report.annotations == len(sentids)
    assert report.splits == dict(Counter(im["split"] for im in images))


def test_rsicd_images_and_names(rsicd: dict[str, Any], generated: dict[str, WriteReport]) -> None:
    """A1: `RSICD_images/<scene>_<n>.jpg` (n per scene from 1) or 5-digit numeric names; the scene in the
    name is the dataset's class name of the sample."""
    folder = generated["rsicd"].root / "RSICD_images"
    spec = DATASETS["rsicd"]
    names = [im["filename"] for im in rsicd["images"]]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    numbers: Counter[str] = Counter()
    for sample, im in zip(iter_samples(spec, 0, 1), rsicd["images"], strict=True):
        assert im["split"] == sample.split
        if not re.fullmatch(r"\d{5}\.jpg", im["filename"]):
            cls = spec.classes[sample.scene_class]
            numbers[cls] += 1
            assert im["filename"] == f"{cls}_{numbers[cls]}.jpg"
        assert_same_image(folder / im["filename"], sample)
    assert {split for split, _ in spec.splits} == {im["split"] for im in rsicd["images"]}


def test_rsicd_captions_are_truth(rsicd: dict[str, Any]) -> None:
    """After the reader rules every image holds exactly its five true captions (empty raws recovered
    from tokens, so compared by words)."""
    for sample, im in zip(iter_samples(DATASETS["rsicd"], 0, 1), rsicd["images"], strict=True):
        truth = captions(sample.scene)
        read = read_karpathy_captions(im)
        assert {words(c) for c in read} == {words(c) for c in truth}
        assert all(clean(s["raw"]) in truth for s in im["sentences"] if s["raw"])
        assert all(s["tokens"] == list(words(s["raw"])) for s in im["sentences"] if s["raw"])


def test_rsicd_quirks(rsicd: dict[str, Any]) -> None:
    images = rsicd["images"]
    raws = [s["raw"] for im in images for s in im["sentences"]]
    assert any(len(im["sentences"]) > len(read_karpathy_captions(im)) for im in images)  # duplicates
    assert any(r.endswith(" .") for r in raws) and any(r.endswith(".") and not r.endswith(" .") for r in raws)
    assert any(r != r.strip() for r in raws if r)
    assert any(s["raw"] == "" and s["tokens"] for im in images for s in im["sentences"])
    assert any(set(im) - KARPATHY_IMAGE_KEYS for im in images)  # an unknown key
    assert any(re.fullmatch(r"\d{5}\.jpg", im["filename"]) for im in images)


# ------------------------------------------------------------------------------------- NWPU-Captions


def nwpu_records(nwpu: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`<class>/<filename>` -> record."""
    return {f"{cls}/{rec['filename']}": rec for cls, records in nwpu.items() for rec in records}


def test_nwpu_schema(nwpu: dict[str, Any], generated: dict[str, WriteReport]) -> None:
    """A5: class-keyed object, flat raw..raw_4 and scalar sentids..sentids_4 = 5 * imgid + k."""
    spec = DATASETS["nwpu_captions"]
    assert list(nwpu) == sorted(spec.classes.values())
    records = [rec for recs in nwpu.values() for rec in recs]
    assert all(list(rec) == NWPU_KEYS for rec in records)
    imgids = [rec["imgid"] for rec in records]
    assert sorted(imgids) == list(range(spec.images)) and imgids != sorted(imgids)  # not ordered by class
    for rec in records:
        assert [rec["sentids"], *(rec[f"sentids_{k}"] for k in range(1, 5))] == \
            [5 * rec["imgid"] + k for k in range(5)]
    assert {rec["split"] for rec in records} == {"train", "val", "test"}
    report = generated["nwpu_captions"]
    assert report.images == len(records) and report.annotations == 5 * len(records)


def test_nwpu_images_and_captions(nwpu: dict[str, Any], generated: dict[str, WriteReport]) -> None:
    """Images at `NWPU_images/<class>/<class>_<NNN>.jpg` (NNN per class from 001), each record's split and
    cleaned captions those of its sample."""
    spec = DATASETS["nwpu_captions"]
    folder = generated["nwpu_captions"].root / "NWPU_images"
    by_path = nwpu_records(nwpu)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg")) == sorted(by_path)
    numbers: Counter[str] = Counter()
    for sample in iter_samples(spec, 0, 1):
        cls = spec.classes[sample.scene_class]
        numbers[cls] += 1
        rel = f"{cls}/{cls}_{numbers[cls]:03d}.jpg"
        rec = by_path[rel]
        assert rec["split"] == sample.split
        raws = [rec["raw"], *(rec[f"raw_{k}"] for k in range(1, 5))]
        assert [clean(r) for r in raws] == captions(sample.scene)
        assert_same_image(folder / rel, sample)
    assert any(rec["raw"].endswith(" .") for rec in by_path.values())


def test_deterministic(generated: dict[str, WriteReport], tmp_path: Path) -> None:
    again = generate_dataset("nwpu_captions", tmp_path, seed=0, scale=1).root
    first = generated["nwpu_captions"].root
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (again / f).read_bytes() for f in files)
