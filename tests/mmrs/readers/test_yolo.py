"""Generic YOLO-txt reader (datasets.md F1 YOLO variant, F3-F7 fallback): the three folder arrangements,
class lists from data.yaml or classes.txt, negatives, malformed lines, sizes from the image headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.yolo import SOURCES, read_yolo
from mmrs.storage import MissingFileError, SourceRoot

SPEC = SourceSpec("ir_test", "IR test", ("detection_hbb",), "infrared", read_yolo,
                  options={"fractions": {"train": 1.0}})


def _image(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size).save(path, format="PNG" if path.suffix == ".png" else "JPEG")


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _read(root: Path, spec: SourceSpec = SPEC) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(spec.name)
    return list(read_yolo(SourceRoot(str(root)), spec, quarantine)), quarantine


def test_ultralytics_layout(tmp_path: Path) -> None:
    """images/<split>/ + labels/<split>/, data.yaml with an {index: name} mapping."""
    _text(tmp_path / "data.yaml", "path: .\ntrain: images/train\nval: images/valid\nnames:\n  0: person\n  1: car\n")
    _image(tmp_path / "images/train/a.jpg", (640, 512))
    _text(tmp_path / "labels/train/a.txt",
          "0 0.5 0.5 0.25 0.5\r\n"
          "1.0 0.125 0.25 0.25 0.125\n"  # float class index
          "\n"
          "2 0.5 0.5 0.1 0.1\n"  # index outside the list
          "1 0.5 0.5 0.1\n"  # four numbers
          "x 0.5 0.5 0.1 0.1\n")
    _image(tmp_path / "images/valid/b.png", (100, 50))  # no label file: a negative
    _image(tmp_path / "images/valid/c.png", (100, 50))
    _text(tmp_path / "labels/valid/c.txt", "")  # empty label file: a negative
    _text(tmp_path / "labels/valid/orphan.txt", "0 0.5 0.5 0.1 0.1\n")
    _image(tmp_path / "images/train/.hidden.jpg", (4, 4))
    samples, quarantine = _read(tmp_path)
    assert samples == [
        RawSample("ir_test", "train", "images/train/a", "images/train/a.jpg", "infrared", 640, 512, objects=[
            Box("person", (240.0, 128.0, 400.0, 384.0)),
            Box("car", (0.0, 96.0, 160.0, 160.0)),
        ]),
        RawSample("ir_test", "val", "images/valid/b", "images/valid/b.png", "infrared"),
        RawSample("ir_test", "val", "images/valid/c", "images/valid/c.png", "infrared", 100, 50),
    ]
    assert quarantine.skipped == {"unknown class": 1, "malformed line": 2, "image not found": 1}


def test_roboflow_layout_and_classes_txt(tmp_path: Path) -> None:
    """<split>/images/ + <split>/labels/ and a classes.txt; an unreadable image and a duplicate key are
    quarantined."""
    _text(tmp_path / "classes.txt", "ship\n\nboat\n")
    _image(tmp_path / "test/images/s1.jpg", (200, 100))
    _text(tmp_path / "test/labels/s1.txt", "1 0.5 0.5 1.0 1.0\n")
    _image(tmp_path / "test/images/s1.png", (200, 100))  # same key as s1.jpg
    _text(tmp_path / "test/images/bad.jpg", "not an image")
    _text(tmp_path / "test/labels/bad.txt", "0 0.5 0.5 0.1 0.1\n")
    samples, quarantine = _read(tmp_path)
    assert samples == [RawSample("ir_test", "test", "test/images/s1", "test/images/s1.jpg", "infrared", 200, 100,
                                 objects=[Box("boat", (0.0, 0.0, 200.0, 100.0))])]
    assert quarantine.skipped == {"duplicate key": 1, "unreadable image": 1}


def test_flat_layout_is_hash_split_and_names_kept(tmp_path: Path) -> None:
    """images/ + labels/ without split folders; labelImg's classes.txt inside labels/; a data.yaml with a
    names list."""
    _text(tmp_path / "labels/classes.txt", "Person\nOther Vehicle\n")
    _image(tmp_path / "images/f.jpg", (10, 10))
    _text(tmp_path / "labels/f.txt", "1 0.5 0.5 0.2 0.2\n")
    spec = SourceSpec("ir_test", "IR test", ("detection_hbb",), "infrared", read_yolo,
                      options={"fractions": {"train": 0.5, "test": 0.5}})
    samples, quarantine = _read(tmp_path, spec)
    assert [(s.split, s.key, s.objects) for s in samples] == [("train", "images/f", [Box("Other Vehicle",
                                                                                            (4.0, 4.0, 6.0, 6.0))])]
    assert quarantine.total_skipped == 0  # classes.txt is not a label file
    _text(tmp_path / "data.yaml", "names: [a, b]\n")  # data.yaml comes first
    samples, _ = _read(tmp_path, spec)
    assert samples[0].objects[0].label == "b"


def test_malformed_class_list(tmp_path: Path) -> None:
    _text(tmp_path / "data.yaml", "names: 3\n")
    _image(tmp_path / "images/f.jpg", (10, 10))
    _text(tmp_path / "labels/f.txt", "0 0.5 0.5 0.2 0.2\n")
    samples, quarantine = _read(tmp_path)
    assert samples[0].objects == []
    assert quarantine.skipped == {"malformed class list": 1, "unknown class": 1}


def test_missing_class_list_is_named(tmp_path: Path) -> None:
    _image(tmp_path / "images/f.jpg", (10, 10))
    with pytest.raises(MissingFileError, match=r"data\.yaml.*classes\.txt"):
        _read(tmp_path)


def test_no_datasets_registered_here() -> None:
    assert SOURCES == []  # the YOLO-capable datasets live in mmrs.readers.coco
