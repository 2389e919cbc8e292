"""UCAS-AOD reader (datasets.md D7, section H row UCAS-AOD txt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.common import hash_split
from mmrs.readers.ucas_aod import SOURCES, read_ucas_aod
from mmrs.storage import MissingFileError, SourceRoot

SPEC = SOURCES[0]

CAR_LINE = ("2.763971e+02\t9.125021e+01\t2.911375e+02\t3.823406e+01\t3.308891e+02\t4.928647e+01\t3.161486e+02\t"
            "1.023026e+02\t1.055379e+02\t2.787673e+02\t3.876027e+01\t4.975157e+01\t6.301615e+01\t")
CAR_OBB = (276.3971, 91.25021, 291.1375, 38.23406, 330.8891, 49.28647, 316.1486, 102.3026)
PLANE_LINE = "1.0e+01\t2.0e+01\t5.0e+01\t2.0e+01\t5.0e+01\t6.0e+01\t1.0e+01\t6.0e+01\t0\t1.0e+01\t2.0e+01\t4e1\t4e1\t"


def png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path)


@pytest.fixture
def fixture(tmp_path: Path) -> Path:
    root = tmp_path / "UCAS_AOD"
    for image in ("CAR/P0001.png", "PLANE/P0001.png", "PLANE/P0002.png", "PLANE/P0003.png", "Neg/N0001.png"):
        png(root / image)
    # CRLF, a trailing tab on each line, a blank line, then a short line and a bad number.
    (root / "CAR/P0001.txt").write_bytes(
        f"{CAR_LINE}\r\n\r\n1.0e+00\t2.0e+00\t3.0e+00\t4.0e+00\t5.0e+00\t\r\n"
        f"1.0e+00\t2.0e+00\t3.0e+00\t4.0e+00\t5.0e+00\t6.0e+00\t7.0e+00\tnan?\t0\t0\t0\t0\t0\t\r\n".encode())
    (root / "PLANE/P0001.txt").write_text(f"{PLANE_LINE}\n{PLANE_LINE}\n")  # same stem as CAR/P0001
    (root / "PLANE/P0003.txt").write_text("")  # P0002 has no label file; P0003 an empty one
    return root


def read(root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(SPEC.name)
    return list(read_ucas_aod(SourceRoot(str(root)), SPEC, quarantine)), quarantine


def sample(key: str, objects: list[Box] | None = None) -> RawSample:
    return RawSample("ucas_aod", hash_split(key, {"train": 0.5, "val": 0.2, "test": 0.3}), key, f"{key}.png",
                     "optical", objects=objects or [])


def test_native_quirks(fixture):
    samples, quarantine = read(fixture)
    plane = Box("airplane", obb=(10, 20, 50, 20, 50, 60, 10, 60))
    assert samples == [
        sample("CAR/P0001", [Box("car", obb=CAR_OBB)]),
        sample("PLANE/P0001", [plane, plane]),
        sample("PLANE/P0003"),
        sample("Neg/N0001"),
    ]
    assert len({(s.split, s.key) for s in samples}) == len(samples)
    assert quarantine.summary() == {
        "skipped": {"bad number": 1, "fewer than 8 numbers": 1, "missing label file": 1}, "fixed": {}}


def test_without_negatives_folder(fixture):
    shutil.rmtree(fixture / "Neg")
    samples, _ = read(fixture)
    assert [s.key for s in samples] == ["CAR/P0001", "PLANE/P0001", "PLANE/P0003"]


def test_spec():
    assert (SPEC.name, SPEC.title, SPEC.paper_samples) == ("ucas_aod", "UCAS-AOD", 1510)
    assert SPEC.tasks == ("detection_hbb", "detection_obb") and SPEC.train_splits == ("train", "val")
    assert SPEC.options["hash_split"] == {"train": 0.5, "val": 0.2, "test": 0.3}


def test_missing_class_folder_is_named(fixture):
    shutil.rmtree(fixture / "PLANE")
    with pytest.raises(MissingFileError, match="PLANE"):
        read(fixture)
