"""DSCR csv reader (datasets.md C7 and section H): the misleading `class,label` header, augmented copies,
the uncertain image layout, malformed rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PIL import Image

from mmrs.convert import to_records
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.dscr import SOURCES, read_dscr
from mmrs.storage import MissingFileError, SourceRoot

SPEC = SOURCES[0]

TRAIN_CSV = (
    "\ufeffclass,label\r\n"  # BOM, CRLF, the misleading header
    "rotate_90201904211954317415_.bmp,aircraft carrier\r\n"
    "crop_lu201904211947567311_.bmp,destroyer\r\n"
    "lightness_P0001_3.bmp,civil,\r\n"  # trailing comma
    "other,transpose201904211947567311_.bmp\r\n"  # columns in the other order
    "\r\n"
    "P0002_1.bmp\r\n"  # one column: malformed
    "P0003_1.bmp,submarine\r\n"  # not a DSCR class
    "rotate_90201904211954317415_.bmp,destroyer\r\n"  # the same chip again
    "missing_chip.bmp,combat\r\n"  # listed, but no such image
)
VAL_CSV = "P0004_2.bmp,Assault\n"  # no header; class case differs
TEST_CSV = "class,label\nP0004_2.bmp,cruiser\n"  # the same chip name as in val, another split


def _write_dataset(root: Path) -> None:
    (root / "annotations").mkdir(parents=True)
    for split, text in (("train", TRAIN_CSV), ("val", VAL_CSV), ("test", TEST_CSV)):
        (root / "annotations" / f"{split}.csv").write_bytes(text.encode("utf-8"))
    for rel in ("images/train/rotate_90201904211954317415_.bmp", "images/train/crop_lu201904211947567311_.bmp",
                "images/train/lightness_P0001_3.bmp", "images/extra/transpose201904211947567311_.bmp",
                "images/val/P0004_2.bmp", "images/test/P0004_2.bmp"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (5, 3)).save(path, format="BMP")


def _read(root: Path, spec=SPEC) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine("dscr")
    return list(read_dscr(SourceRoot(str(root)), spec, quarantine)), quarantine


def _sample(split: str, key: str, image: str, label: str) -> RawSample:
    return RawSample("dscr", split, key, image, "optical", label=label)


def test_rows_and_images(tmp_path: Path) -> None:
    _write_dataset(tmp_path)
    samples, quarantine = _read(tmp_path)
    assert samples == [
        _sample("train", "rotate_90201904211954317415_", "images/train/rotate_90201904211954317415_.bmp",
                "aircraft carrier"),
        _sample("train", "crop_lu201904211947567311_", "images/train/crop_lu201904211947567311_.bmp", "destroyer"),
        _sample("train", "lightness_P0001_3", "images/train/lightness_P0001_3.bmp", "civil"),
        _sample("train", "transpose201904211947567311_", "images/extra/transpose201904211947567311_.bmp", "other"),
        _sample("val", "P0004_2", "images/val/P0004_2.bmp", "assault"),  # the copy in the split's folder
        _sample("test", "P0004_2", "images/test/P0004_2.bmp", "cruiser"),
    ]
    assert quarantine.skipped == {"malformed row": 1, "unknown class": 1, "duplicate key": 1, "image not found": 1}


def test_image_dir_option(tmp_path: Path) -> None:
    """An explicit layout places every chip without looking for it."""
    _write_dataset(tmp_path)
    spec = dataclasses.replace(SPEC, options={**SPEC.options, "image_dir": "{split}_set"})
    samples, quarantine = _read(tmp_path, spec)
    assert [s.image for s in samples if s.split != "train"] == ["val_set/P0004_2.bmp", "test_set/P0004_2.bmp"]
    assert len(samples) == 7 and "image not found" not in quarantine.skipped


def test_paper_class_names_in_prompts(tmp_path: Path) -> None:
    _write_dataset(tmp_path)
    samples, _ = _read(tmp_path)
    record = to_records(samples[2], SPEC, 5, 3, Quarantine("dscr"))[0]
    prompt, answer = (turn["value"] for turn in record["conversations"])
    assert answer == "civilian ship"
    assert prompt.endswith("aircraft carrier, destroyer, assault ship, combat ship, cruiser, other military ship, "
                           "civilian ship.")


def test_missing_csv_is_named(tmp_path: Path) -> None:
    _write_dataset(tmp_path)
    (tmp_path / "annotations" / "val.csv").unlink()
    with pytest.raises(MissingFileError, match="annotations/val.csv"):
        _read(tmp_path)


def test_source() -> None:
    assert (SPEC.name, SPEC.title, SPEC.paper_samples, SPEC.train_splits) == ("dscr", "DSCR", 11951, ("train", "val"))
    assert SPEC.categories == ("aircraft carrier", "destroyer", "assault", "combat", "cruiser", "other", "civil")
