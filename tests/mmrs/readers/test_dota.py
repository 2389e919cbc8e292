"""DOTA-txt reader (datasets.md D1, section H row DOTA-txt): native bytes, quirks, and the sample corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmrs.geometry import clip_hbb
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.dota import HBB_FROM_OBB, SOURCES, read_dota
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, DOTA_OBJECTS, generate_dataset
from mmrs.synthetic.samples import GeneratedImage, iter_samples
from mmrs.synthetic.writers.dota import LabelQuirks, difficulty

SPEC = SOURCES[0]
TASK1 = "labelTxt-v1.0/labelTxt"
TASK2 = "labelTxt-v1.0/Train_Task2_gt/trainset_reclabelTxt"

# CRLF, gsd null, int and float coordinates, a 9-token line (case variant of the class), difficult 2 and 1,
# a polygon partly outside the 64 x 48 image, and three bad lines (too short, unknown class, bad number).
P0001_TASK1 = (
    "imagesource:GoogleEarth\r\n"
    "gsd:null\r\n"
    "10 20 30 20 30 40 10 40 plane 0\r\n"
    "40.5 10.0 70.5 10.0 70.5 30.0 40.5 30.0 small-vehicle 2\r\n"
    "5 5 15 5 15 15 5 15 Small-Vehicle\r\n"
    "-5 -5 10 -5 10 10 -5 10 ship 1\r\n"
    "1 2 3 4 5 6 plane 0\r\n"
    "1 2 3 4 5 6 7 8 car 0\r\n"
    "1 2 3 4 5 6 7 x plane 0\r\n"
)
# Task2: same object lines in the same order; the 9-token line's Task2 class disagrees (-> HBB derived later).
P0001_TASK2 = (
    "imagesource:GoogleEarth\r\n"
    "gsd:null\r\n"
    "10 20 30 20 30 40 10 40 plane 0\r\n"
    "40.5 10.0 64 10.0 64 30.0 40.5 30.0 small-vehicle 2\r\n"
    "5 5 15 5 15 15 5 15 large-vehicle\r\n"
    "0 0 10 0 10 10 0 10 ship 1\r\n"
    "1 2 3 4 5 6 plane 0\r\n"
    "1 2 3 4 5 6 7 8 car 0\r\n"
    "1 2 3 4 5 6 7 x plane 0\r\n"
)
HEADER_ONLY = "imagesource:GF2\ngsd:0.5\n"
P0003_TASK1 = "\ufeffgsd:None\n\n 1 1 9 1 9 9 1 9  harbor 0 \n"  # BOM, no imagesource, blank line, extra spaces
VAL_TASK1 = "imagesource:JL1\ngsd:1.2e-01\n3 3 6 3 6 6 3 6 bridge 0\n"


def png(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


@pytest.fixture
def fixture(tmp_path: Path) -> Path:
    root = tmp_path / "DOTA"
    for stem in ("P0001", "P0002", "P0003", "P0004"):
        png(root / "train/images" / f"{stem}.png")
    (root / "train/images/.DS_Store").write_bytes(b"\0")
    write(root / "train" / TASK1 / "P0001.txt", P0001_TASK1)
    write(root / "train" / TASK2 / "P0001.txt", P0001_TASK2)
    write(root / "train" / TASK1 / "P0002.txt", HEADER_ONLY)
    write(root / "train" / TASK2 / "P0002.txt", HEADER_ONLY)
    write(root / "train" / TASK1 / "P0003.txt", P0003_TASK1)  # no Task2 file
    # P0004 has no label file at all; val has no Task2 folder; test has images only (not listed).
    png(root / "val/images/P0100.png")
    write(root / "val" / TASK1 / "P0100.txt", VAL_TASK1)
    png(root / "test/images/P0200.png")
    return root


def read(root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(SPEC.name)
    return list(read_dota(SourceRoot(str(root)), SPEC, quarantine)), quarantine


def sample(split: str, key: str, objects: list[Box], meta: dict[str, str]) -> RawSample:
    return RawSample("dota", split, key, f"{split}/images/{key}.png", "optical", objects=objects, meta=meta)


def test_native_quirks(fixture):
    samples, quarantine = read(fixture)
    assert samples == [
        sample("train", "P0001", [
            Box("plane", hbb=(10, 20, 30, 40), obb=(10, 20, 30, 20, 30, 40, 10, 40)),
            Box("small-vehicle", hbb=(40.5, 10, 64, 30), obb=(40.5, 10, 70.5, 10, 70.5, 30, 40.5, 30),
                difficult=True),
            Box("small-vehicle", obb=(5, 5, 15, 5, 15, 15, 5, 15)),
            Box("ship", hbb=(0, 0, 10, 10), obb=(-5, -5, 10, -5, 10, 10, -5, 10), difficult=True),
        ], {"imagesource": "GoogleEarth"}),
        sample("train", "P0002", [], {"imagesource": "GF2", "gsd": "0.5"}),
        sample("train", "P0003", [Box("harbor", obb=(1, 1, 9, 1, 9, 9, 1, 9))], {}),
        sample("val", "P0100", [Box("bridge", obb=(3, 3, 6, 3, 6, 6, 3, 6))], {"imagesource": "JL1", "gsd": "1.2e-01"}),
    ]
    assert quarantine.summary() == {
        "skipped": {"bad number": 1, "fewer than 9 tokens": 1, "missing label file": 1, "unknown class": 1},
        "fixed": {HBB_FROM_OBB: 1},
    }


def test_task2_with_a_different_line_count_is_not_paired(fixture):
    write(fixture / "train" / TASK2 / "P0001.txt", "10 20 30 20 30 40 10 40 plane 0\n")
    samples, quarantine = read(fixture)
    assert all(box.hbb is None for box in samples[0].objects)
    assert quarantine.fixed[HBB_FROM_OBB] == 4


def test_spec():
    assert SPEC.name == "dota" and SPEC.title == "DOTA" and SPEC.paper_samples == 163486
    assert SPEC.tasks == ("detection_hbb", "detection_obb") and SPEC.train_splits == ("train", "val")
    assert (SPEC.tile.size, SPEC.tile.overlap, SPEC.tile.min_visible) == (1024, 200, 0.7)
    assert "test" not in SPEC.options["splits"]  # labels withheld: nothing to convert


def test_missing_label_folder_is_named(fixture):
    """A copy without val/ (test labels are never published; many download train only) converts train and
    names what is absent; a copy with no labelled split at all is an error naming the folders."""
    (fixture / "val" / TASK1 / "P0100.txt").unlink()
    (fixture / "val" / TASK1).rmdir()
    samples, quarantine = read(fixture)
    assert samples and {s.split for s in samples} == {"train"}
    assert "val/labelTxt-v1.0/labelTxt" in quarantine.absent["val"]
    shutil.rmtree(fixture / "train")
    with pytest.raises(MissingFileError, match="val/labelTxt-v1.0/labelTxt"):
        read(fixture)


# --- the sample corpus --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_dataset("dota", out, seed=0, scale=1)
    return out / DATASETS["dota"].folder


def truth() -> list[tuple[str, str, GeneratedImage, LabelQuirks]]:
    """(split, key, sample, quirks) of every labelled sample, in the reader's order."""
    rows, labelled = [], 0
    for s in iter_samples(DATASETS["dota"], 0, 1):
        if s.split == "test":
            continue
        rows.append((s.split, f"P{s.index:04d}", s, LabelQuirks.of(labelled)))
        labelled += 1
    order = list(SPEC.options["splits"])
    return sorted(rows, key=lambda r: (order.index(r[0]), r[1]))


def test_corpus_matches_ground_truth(corpus):
    samples, quarantine = read(corpus)
    expected = truth()
    assert [(s.split, s.key, s.image) for s in samples] == [
        (split, key, f"{split}/images/{key}.png") for split, key, _, _ in expected]
    assert quarantine.summary() == {"skipped": {}, "fixed": {}}
    for got, (_, _, s, quirks) in zip(samples, expected, strict=True):
        scene = s.scene
        tol = 0.05 + 1e-6 if quirks.float_coords else 0.5 + 1e-6
        assert got.meta["imagesource"] == "GoogleEarth"
        if quirks.gsd_null:
            assert "gsd" not in got.meta
        else:
            assert float(got.meta["gsd"]) == pytest.approx(scene.gsd, rel=1e-9)
        objects = [o for o in scene.objects if o.kind in DOTA_OBJECTS]
        assert len(got.objects) == len(objects)
        for box, obj in zip(got.objects, objects, strict=True):
            assert box.label == DOTA_OBJECTS[obj.kind]
            assert box.obb == pytest.approx([c for point in obj.corners for c in point], abs=tol)
            assert box.hbb == pytest.approx(clip_hbb(obj.hbb, scene.width, scene.height), abs=tol)
            assert box.difficult == (difficulty(obj, scene.width, scene.height) >= 1)
    assert any(not s.objects for s in samples)  # farmland scenes: header-only files
