"""UCAS-AOD reader (datasets.md D7): one folder per class with images and same-stem txt labels.

Options (`SourceSpec.options`):
    classes: {folder: class name}, e.g. {"CAR": "car", "PLANE": "airplane"}; each folder is required.
    negatives: folder of background images without labels (RawSamples without objects); optional.
    hash_split: fractions for `hash_split(key, ...)` (the dataset has no official split).

Layout (root = `UCAS_AOD/`): `CAR/P0001.png` + `CAR/P0001.txt`, `PLANE/P0001.png` + `PLANE/P0001.txt`,
`Neg/<name>.png`. Both class folders number from P0001, so keys carry the folder: `CAR/P0001`, `PLANE/P0001`.

Label line: 13 tab-separated numbers in scientific notation, possibly with a trailing tab and no class token,
`x1 y1 x2 y2 x3 y3 x4 y4 theta x y w h`. Only the 8 vertex coordinates (pixels) are used: the meaning of the
last five is not documented (conversion derives the HBB from the vertices).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import hash_split, is_image, parse_number, read_line_boxes, text_lines
from mmrs.storage import SourceRoot

VERTEX_NUMBERS = 8


def parse_line(line: str, label: str) -> Box | str:
    """A label line -> Box with the four vertices, or the reason to skip the line."""
    tokens = line.split()
    if len(tokens) < VERTEX_NUMBERS:
        return "fewer than 8 numbers"
    try:
        return Box(label, obb=tuple(parse_number(t) for t in tokens[:VERTEX_NUMBERS]))
    except ValueError:
        return "bad number"


def read_labels(root: SourceRoot, path: str, label: str, quarantine: Quarantine) -> list[Box]:
    """The boxes of one label file, in file order; bad lines are quarantined."""
    return read_line_boxes(root, path, lambda line: parse_line(line, label), quarantine)


def read_class_folder(root: SourceRoot, spec: SourceSpec, folder: str, label: str | None,
                      quarantine: Quarantine) -> Iterator[RawSample]:
    """Images of one folder, sorted; with `label` each needs its txt, without (negatives) none is read."""
    names = root.listdir(folder)
    present = set(names)
    used: set[str] = set()
    for name in names:
        if not is_image(name):
            continue
        stem = posixpath.splitext(name)[0]
        key, image = f"{folder}/{stem}", posixpath.join(folder, name)
        objects: list[Box] = []
        if label is not None:
            if f"{stem}.txt" not in present:  # 0 units: an image without annotations
                quarantine.skip(image, "missing label file", units=0)
                continue
            if f"{stem}.txt" in used:  # P0001.png and P0001.jpg: one label file, read with the first
                quarantine.skip(image, "duplicate key", stem, units=0)
                continue
            used.add(f"{stem}.txt")
            objects = read_labels(root, posixpath.join(folder, f"{stem}.txt"), label, quarantine)
        yield RawSample(spec.name, hash_split(key, spec.options["hash_split"]), key, image, spec.modality,
                        objects=objects)
    if label is not None:
        for name in sorted(n for n in present - used if n.endswith(".txt")):
            path = posixpath.join(folder, name)
            units = sum(1 for line in text_lines(root, path, Quarantine(spec.name)) if line.strip())
            quarantine.skip(path, "image missing", units=units)


def read_ucas_aod(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Class folders in the order of options["classes"], then the negatives folder when present."""
    for folder, label in spec.options["classes"].items():
        yield from read_class_folder(root, spec, root.require(folder, "class folder"), label, quarantine)
    negatives = spec.options.get("negatives")
    if negatives and root.isdir(negatives):
        yield from read_class_folder(root, spec, negatives, None, quarantine)


SOURCES = [
    SourceSpec(
        name="ucas_aod",
        title="UCAS-AOD",
        tasks=("detection_hbb", "detection_obb"),
        modality="optical",
        reader=read_ucas_aod,
        options={
            "classes": {"CAR": "car", "PLANE": "airplane"},
            "negatives": "Neg",
            # No official split: train:val:test = 5:2:3 per image key, the ratio of the third-party lists.
            "hash_split": {"train": 0.5, "val": 0.2, "test": 0.3},
        },
        train_splits=("train", "val"),
        paper_samples=1510,
    ),
]
