"""VisDrone-DET reader (datasets.md D8, section H row VisDrone txt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.visdrone import SCORE_ZERO, SOURCES, read_visdrone
from mmrs.storage import MissingFileError, SourceRoot

SPEC = SOURCES[0]
TRAIN, VAL, TEST_DEV = "VisDrone2019-DET-train", "VisDrone2019-DET-val", "VisDrone2019-DET-test-dev"
STEM = "0000002_00005_d_0000014"

# An ignored region (category 0, score 0), an "others" row (11), a score-0 row of a real class, a trailing
# comma, CRLF and a blank line; then an unknown category, a short row and a bad number.
TRAIN_ROWS = (
    "684,8,273,116,0,0,0,0\r\n"
    "406,119,265,70,1,4,0,1\r\n"
    "10,20,5,6,1,11,0,0\r\n"
    "30,40,5,6,0,1,0,0\r\n"
    "1,2,3,4,1,10,1,2,\r\n"
    "\r\n"
    "1,2,3,4,1,12,0,0\r\n"
    "1,2,3,4,1\r\n"
    "1,2,x,4,1,3,0,0\r\n"
)


def jpg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path, format="JPEG")


@pytest.fixture
def fixture(tmp_path: Path) -> Path:
    root = tmp_path / "VisDrone"
    for folder in (TRAIN, VAL, TEST_DEV):
        (root / folder / "annotations").mkdir(parents=True)
    jpg(root / TRAIN / "images" / f"{STEM}.jpg")
    jpg(root / TRAIN / "images" / "0000003_00000_d_0000001.jpg")  # no annotation file
    (root / TRAIN / "annotations" / f"{STEM}.txt").write_bytes(TRAIN_ROWS.encode())
    jpg(root / VAL / "images" / "0000001_02999_d_0000005.jpg")
    (root / VAL / "annotations" / "0000001_02999_d_0000005.txt").write_text("")
    jpg(root / TEST_DEV / "images" / "9999938_00000_d_0000207.jpg")
    (root / TEST_DEV / "annotations" / "9999938_00000_d_0000207.txt").write_text("5,5,10,10,1,9,0,0")
    jpg(root / "VisDrone2019-DET-test-challenge/images/0000006_00159_d_0000001.jpg")  # no annotations
    return root


def read(root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(SPEC.name)
    return list(read_visdrone(SourceRoot(str(root)), SPEC, quarantine)), quarantine


def test_native_quirks(fixture):
    samples, quarantine = read(fixture)
    assert samples == [
        RawSample("visdrone", "train", STEM, f"{TRAIN}/images/{STEM}.jpg", "optical",
                  objects=[Box("car", hbb=(406, 119, 671, 189)), Box("motor", hbb=(1, 2, 4, 6))]),
        RawSample("visdrone", "val", "0000001_02999_d_0000005", f"{VAL}/images/0000001_02999_d_0000005.jpg",
                  "optical"),
        RawSample("visdrone", "test_dev", "9999938_00000_d_0000207",
                  f"{TEST_DEV}/images/9999938_00000_d_0000207.jpg", "optical",
                  objects=[Box("bus", hbb=(5, 5, 15, 15))]),
    ]
    assert quarantine.summary() == {
        "skipped": {"bad number": 1, "fewer than 6 fields": 1, "missing annotation file": 1, "unknown class": 1},
        "fixed": {"category others dropped": 1, "ignored region dropped": 1, SCORE_ZERO: 1},
    }


def test_spec():
    assert (SPEC.name, SPEC.title, SPEC.paper_samples) == ("visdrone", "VisDrone", 186810)
    assert SPEC.tasks == ("detection_hbb",) and SPEC.train_splits == ("train", "val")
    assert list(SPEC.options["splits"]) == ["train", "val", "test_dev"]
    assert len(SPEC.options["classes"]) == 10


def test_missing_annotations_folder_is_named(fixture):
    """A split without its folders is passed over and named; a copy with no split at all is an error."""
    shutil.rmtree(fixture / VAL / "annotations")
    samples, quarantine = read(fixture)
    assert samples and "val" not in {s.split for s in samples}
    assert "VisDrone2019-DET-val/annotations" in quarantine.absent["val"]
    for folder in (TRAIN, TEST_DEV):
        shutil.rmtree(fixture / folder)
    with pytest.raises(MissingFileError, match="VisDrone2019-DET-val/annotations"):
        read(fixture)
