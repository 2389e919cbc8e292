"""NWPU VHR-10 reader (datasets.md D4): positive images with one txt each, negative images without.

Options (`SourceSpec.options`):
    positive, negative, labels: folder names under the root (they contain spaces).
    classes: class id (1-10) -> class name, as the readme lists them.
    hash_split: fractions for `hash_split(key, ...)` (the dataset has no official split).

Layout (root = `NWPU VHR-10 dataset/`):

    positive image set/001.jpg ...     ground truth/001.txt ...   (required; MissingFileError when absent)
    negative image set/001.jpg ...     no label files: RawSamples without objects

Label line, pixels: `(x1,y1),(x2,y2),c` with (x1, y1) the top-left and (x2, y2) the bottom-right corner and c
the class id; spaces may follow the commas and blank lines occur. Keys are `positive/<stem>` and
`negative/<stem>` (both sets number their images from 001).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import hash_split, is_image, parse_number, read_line_boxes, text_lines
from mmrs.storage import SourceRoot

NWPU_VHR10_CLASSES = {
    1: "airplane", 2: "ship", 3: "storage tank", 4: "baseball diamond", 5: "tennis court", 6: "basketball court",
    7: "ground track field", 8: "harbor", 9: "bridge", 10: "vehicle",
}


def parse_line(line: str, classes: Mapping[int, str]) -> Box | str:
    """`(x1,y1),(x2,y2),c` -> Box, or the reason to skip the line."""
    tokens = line.replace("(", "").replace(")", "").replace(" ", "").split(",")
    if len(tokens) != 5:
        return "malformed line"
    try:
        x1, y1, x2, y2, class_id = (parse_number(t) for t in tokens)
    except ValueError:
        return "bad number"
    label = classes.get(int(class_id)) if class_id.is_integer() else None
    if label is None:
        return "unknown class"
    return Box(label, hbb=(x1, y1, x2, y2))


def read_labels(root: SourceRoot, path: str, classes: Mapping[int, str], quarantine: Quarantine) -> list[Box]:
    """The boxes of one label file, in file order; bad lines are quarantined."""
    return read_line_boxes(root, path, lambda line: parse_line(line, classes), quarantine)


def _images(root: SourceRoot, folder: str) -> list[str]:
    return [name for name in root.listdir(root.require(folder, "image folder")) if is_image(name)]


def read_nwpu_vhr(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Positive images (with their labels), then negative images (without objects), each sorted by name."""
    options = spec.options
    classes = {int(k): v for k, v in options["classes"].items()}
    labels = root.require(options["labels"], "ground truth folder")
    label_files = set(root.listdir(labels))
    used: set[str] = set()
    for name in _images(root, options["positive"]):
        stem = posixpath.splitext(name)[0]
        image = posixpath.join(options["positive"], name)
        if f"{stem}.txt" not in label_files:  # 0 units: an image without annotations
            quarantine.skip(image, "missing label file", units=0)
            continue
        if f"{stem}.txt" in used:  # 001.jpg and 001.png: one label file, read with the first
            quarantine.skip(image, "duplicate key", stem, units=0)
            continue
        used.add(f"{stem}.txt")
        key = f"positive/{stem}"
        objects = read_labels(root, posixpath.join(labels, f"{stem}.txt"), classes, quarantine)
        yield RawSample(spec.name, hash_split(key, options["hash_split"]), key, image, spec.modality,
                        objects=objects)
    for name in sorted(n for n in label_files - used if n.endswith(".txt")):
        path = posixpath.join(labels, name)
        units = sum(1 for line in text_lines(root, path, Quarantine(spec.name)) if line.strip())
        quarantine.skip(path, "image missing", units=units)
    for name in _images(root, options["negative"]):
        key = f"negative/{posixpath.splitext(name)[0]}"
        yield RawSample(spec.name, hash_split(key, options["hash_split"]), key,
                        posixpath.join(options["negative"], name), spec.modality)


SOURCES = [
    SourceSpec(
        name="nwpu_vhr10",
        title="NWPU VHR-10",  # Table I writes "NWPUVHR10"
        tasks=("detection_hbb",),
        modality="optical",
        reader=read_nwpu_vhr,
        options={
            "positive": "positive image set",
            "negative": "negative image set",
            "labels": "ground truth",
            "classes": NWPU_VHR10_CLASSES,
            # No official split: 60 % train, 20 % val, 20 % test per image key (a common protocol for this set).
            "hash_split": {"train": 0.6, "val": 0.2, "test": 0.2},
        },
        train_splits=("train", "val"),
        paper_samples=3190,
    ),
]
