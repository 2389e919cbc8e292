"""VisDrone-DET reader (datasets.md D8): one comma-separated txt per image.

Options (`SourceSpec.options`):
    splits: {split: folder}, each folder holding `images/` and `annotations/` (a split without them is
        absent; MissingFileError when no split is there). test-challenge has no annotations and is not listed.
    classes: category id -> class name for the evaluated categories 1-10.
    dropped: category id -> reason, for the categories dropped by design (0 ignored regions, 11 others).

Layout (root = the folder holding the unpacked archives):

    VisDrone2019-DET-train/images/0000002_00005_d_0000014.jpg
    VisDrone2019-DET-train/annotations/0000002_00005_d_0000014.txt

Annotation line, pixels: `left,top,width,height,score,category,truncation,occlusion`, possibly with a trailing
comma. Rows of a dropped category or with score 0 (not evaluated) are left out and counted with
`quarantine.drop` under their reason (they are part of the format, not errors); malformed rows are skipped.
A split whose folders are absent is passed over and listed in the manifest; an annotation file whose image is
gone is quarantined with its rows ("image missing").
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import finite, is_image, note_absent, parse_number, text_lines
from mmrs.storage import SourceRoot

VISDRONE_CLASSES = {
    1: "pedestrian", 2: "people", 3: "bicycle", 4: "car", 5: "van", 6: "truck", 7: "tricycle",
    8: "awning-tricycle", 9: "bus", 10: "motor",
}
DROPPED = {0: "ignored region dropped", 11: "category others dropped"}
SCORE_ZERO = "score 0 row dropped"
MIN_FIELDS = 6  # up to the category; truncation and occlusion are not used


class Dropped(str):
    """A reason for leaving a row out by design (counted as a fix, not a skip)."""


def parse_line(line: str, classes: Mapping[int, str], dropped: Mapping[int, str]) -> Box | Dropped | str:
    """One row -> Box, a Dropped reason, or the reason to skip a malformed row."""
    tokens = [t for t in line.split(",") if t.strip()]
    if len(tokens) < MIN_FIELDS:
        return "fewer than 6 fields"
    try:
        left, top, width, height, score, category = (parse_number(t) for t in tokens[:MIN_FIELDS])
    except ValueError:
        return "bad number"
    if category in dropped:
        return Dropped(dropped[int(category)])
    if score == 0:
        return Dropped(SCORE_ZERO)
    label = classes.get(int(category)) if category.is_integer() else None
    if label is None:
        return "unknown class"
    try:
        return Box(label, hbb=finite((left, top, left + width, top + height)))
    except ValueError:
        return "bad number"


def read_annotations(root: SourceRoot, path: str, classes: Mapping[int, str], dropped: Mapping[int, str],
                     quarantine: Quarantine) -> list[Box]:
    """The kept boxes of one annotation file, in file order."""
    boxes = []
    for raw in text_lines(root, path, quarantine):
        line = raw.strip()
        if not line:
            continue
        box = parse_line(line, classes, dropped)
        if isinstance(box, Dropped):
            quarantine.drop(box)
        elif isinstance(box, str):
            quarantine.skip(path, box, line)
        else:
            boxes.append(box)
    return boxes


def read_visdrone(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Splits in the order of options["splits"], images sorted by name."""
    classes = {int(k): v for k, v in spec.options["classes"].items()}
    dropped = {int(k): v for k, v in spec.options["dropped"].items()}
    splits = spec.options["splits"]
    absent = {split: ", ".join(root.uri(posixpath.join(folder, sub)) for sub in ("images", "annotations")
                               if not root.isdir(posixpath.join(folder, sub)))
              for split, folder in splits.items()}
    absent = {split: missing for split, missing in absent.items() if missing}
    note_absent(root, quarantine, len(splits) - len(absent), absent, "image or annotation folders")
    for split, folder in splits.items():
        if split not in absent:
            yield from _read_split(root, spec, split, folder, classes, dropped, quarantine)


def _read_split(root: SourceRoot, spec: SourceSpec, split: str, folder: str, classes: Mapping[int, str],
                dropped: Mapping[int, str], quarantine: Quarantine) -> Iterator[RawSample]:
    """One split's images with their annotation files, then the annotation files whose image is gone."""
    images, annotations = posixpath.join(folder, "images"), posixpath.join(folder, "annotations")
    present = set(root.listdir(annotations))
    used: set[str] = set()
    for name in root.listdir(images):
        if not is_image(name):
            continue
        stem = posixpath.splitext(name)[0]
        image = posixpath.join(images, name)
        if f"{stem}.txt" not in present:  # 0 units: an image without annotations
            quarantine.skip(image, "missing annotation file", units=0)
            continue
        if f"{stem}.txt" in used:
            quarantine.skip(image, "duplicate key", stem, units=0)
            continue
        used.add(f"{stem}.txt")
        objects = read_annotations(root, posixpath.join(annotations, f"{stem}.txt"), classes, dropped, quarantine)
        yield RawSample(spec.name, split, stem, image, spec.modality, objects=objects)
    for name in sorted(n for n in present - used if n.endswith(".txt")):
        path = posixpath.join(annotations, name)
        units = sum(1 for line in text_lines(root, path, Quarantine(spec.name)) if line.strip())
        quarantine.skip(path, "image missing", units=units)


SOURCES = [
    SourceSpec(
        name="visdrone",
        title="VisDrone",
        tasks=("detection_hbb",),
        modality="optical",
        reader=read_visdrone,
        options={
            # test-dev is the public test set with annotations (split "test_dev", evaluation only).
            "splits": {"train": "VisDrone2019-DET-train", "val": "VisDrone2019-DET-val",
                       "test_dev": "VisDrone2019-DET-test-dev"},
            "classes": VISDRONE_CLASSES,
            "dropped": DROPPED,
        },
        train_splits=("train", "val"),
        paper_samples=186810,
    ),
]
