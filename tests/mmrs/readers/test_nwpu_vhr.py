"""NWPU VHR-10 reader (datasets.md D4, section H row NWPU VHR-10 txt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.common import hash_split
from mmrs.readers.nwpu_vhr import SOURCES, read_nwpu_vhr
from mmrs.storage import MissingFileError, SourceRoot

SPEC = SOURCES[0]
POSITIVE, NEGATIVE, LABELS = "positive image set", "negative image set", "ground truth"

# Spaces after commas, CRLF, a blank line inside and a trailing one, then three bad lines.
LABELS_001 = (
    "(563,478),(630,573),1\r\n"
    "(112, 34),(160, 92),10\r\n"
    "\r\n"
    "( 5 , 6 ) , ( 7 , 8 ) , 3\r\n"
    "(1,2),(3,4),11\r\n"
    "(1,2),(3,4)\r\n"
    "(1,2),(3,x),2\r\n"
    "\r\n"
)


def jpg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path, format="JPEG")


@pytest.fixture
def fixture(tmp_path: Path) -> Path:
    root = tmp_path / "NWPU VHR-10 dataset"
    for stem in ("001", "002", "003"):
        jpg(root / POSITIVE / f"{stem}.jpg")
    jpg(root / NEGATIVE / "001.jpg")
    jpg(root / NEGATIVE / "002.jpg")
    (root / LABELS).mkdir()
    (root / LABELS / "001.txt").write_bytes(LABELS_001.encode())
    (root / LABELS / "002.txt").write_bytes(b"")  # an empty label file: a positive image without objects
    (root / "readme.txt").write_text("NWPU VHR-10 dataset\n")
    return root  # 003 has no label file


def read(root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(SPEC.name)
    return list(read_nwpu_vhr(SourceRoot(str(root)), SPEC, quarantine)), quarantine


def sample(key: str, image: str, objects: list[Box] | None = None) -> RawSample:
    return RawSample("nwpu_vhr10", hash_split(key, {"train": 0.6, "val": 0.2, "test": 0.2}), key, image, "optical",
                     objects=objects or [])


def test_native_quirks(fixture):
    samples, quarantine = read(fixture)
    assert samples == [
        sample("positive/001", f"{POSITIVE}/001.jpg", [
            Box("airplane", hbb=(563, 478, 630, 573)),
            Box("vehicle", hbb=(112, 34, 160, 92)),
            Box("storage tank", hbb=(5, 6, 7, 8)),
        ]),
        sample("positive/002", f"{POSITIVE}/002.jpg"),
        sample("negative/001", f"{NEGATIVE}/001.jpg"),
        sample("negative/002", f"{NEGATIVE}/002.jpg"),
    ]
    assert quarantine.summary() == {
        "skipped": {"bad number": 1, "malformed line": 1, "missing label file": 1, "unknown class": 1},
        "fixed": {},
    }


def test_spec():
    assert (SPEC.name, SPEC.title, SPEC.paper_samples) == ("nwpu_vhr10", "NWPU VHR-10", 3190)
    assert SPEC.tasks == ("detection_hbb",) and SPEC.train_splits == ("train", "val")
    assert list(SPEC.options["classes"].values()) == [
        "airplane", "ship", "storage tank", "baseball diamond", "tennis court", "basketball court",
        "ground track field", "harbor", "bridge", "vehicle"]
    assert sum(SPEC.options["hash_split"].values()) == pytest.approx(1.0)


def test_missing_ground_truth_is_named(fixture):
    shutil.rmtree(fixture / LABELS)
    with pytest.raises(MissingFileError, match="ground truth"):
        read(fixture)
