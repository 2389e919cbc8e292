"""DSCR ship-chip classification (datasets.md C7): one csv per split plus the image chips.

Layout: `annotations/{train,val,test}.csv` (all three required), comma separated, header `class,label` whose
names are misleading: the first column holds the image file name, the second the class string
(`rotate_90201904211954317415_.bmp,aircraft carrier`). The reader does not trust the header: a row's image
column is the one holding an image file name (either order is accepted), and a first row without one is the
header. Augmented copies (`rotate_*`, `lightness_*`, `crop_lu*`, `transpose*`, `P*`) are separate chips and
are kept as they are.

Options:
- `csv_files`: split -> csv path (the official splits).
- `classes`: the csv class strings, which are the labels (matched case-insensitively; others are quarantined
  as "unknown class"); `display_names`: their wording in prompts and answers (the paper's names, e.g.
  `civil` -> "civilian ship").
- `image_dir`: where the chips lie (the archive layout is UNCERTAIN). A template such as `images/{split}`
  places every chip there without looking; None (default) lists the images under `image_root` once and
  finds each chip by file name, preferring a path with the split's name as a folder (`train/`, `images/val/`)
  when a name occurs more than once; a chip found nowhere is quarantined ("image not found").

Key: the chip's file name without extension. width/height: None (chips are of variable size; the converter
reads the headers). Bad rows are quarantined ("malformed row", "duplicate key").
"""

from __future__ import annotations

import csv
import posixpath
from collections.abc import Iterator, Mapping

from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import ClassMap, is_image, text_lines
from mmrs.storage import SourceRoot, UnsafePathError


class ImageIndex:
    """File name -> every path (relative to the root) of an image with that name, in sorted order."""

    def __init__(self, root: SourceRoot, under: str):
        self.paths: dict[str, list[str]] = {}
        for path in root.walk_files(under):
            name = posixpath.basename(path)
            if is_image(name):
                self.paths.setdefault(name, []).append(path)

    def find(self, name: str, split: str) -> str | None:
        """The path of `name`, preferring one inside a folder named `split`; None when absent."""
        paths = self.paths.get(name)
        if not paths:
            return None
        return next((p for p in paths if split in p.split("/")[:-1]), paths[0])


def parse_row(row: list[str]) -> tuple[str, str] | None:
    """(image file name, class string) of a csv row in either column order; None if it has no image name."""
    cells = [cell.strip() for cell in row]
    while cells and not cells[-1]:  # a trailing comma
        cells.pop()
    if len(cells) != 2:
        return None
    first, second = cells
    if is_image(first):
        return first, second
    if is_image(second):
        return second, first
    return None


def read_csv_split(root: SourceRoot, rel: str, quarantine: Quarantine) -> Iterator[tuple[str, str]]:
    """(file name, class string) rows of one csv; the header (a first row without an image name) is
    dropped, blank lines ignored, other rows without an image name quarantined."""
    rows = csv.reader(text_lines(root, rel, quarantine))
    for number, row in enumerate(rows):
        if not any(cell.strip() for cell in row):
            continue
        parsed = parse_row(row)
        if parsed is not None:
            yield parsed
        elif number > 0:
            quarantine.skip(root.uri(rel), "malformed row", row)


def read_dscr(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """One RawSample per csv row (see the module docstring)."""
    options = spec.options
    class_map = ClassMap(options["classes"])
    csv_files: Mapping[str, str] = options["csv_files"]
    for rel in csv_files.values():
        root.require(rel, "split file")
    template = options.get("image_dir")
    index = ImageIndex(root, options.get("image_root", "")) if template is None else None
    for split, rel in csv_files.items():
        seen: set[str] = set()
        for name, class_string in read_csv_split(root, rel, quarantine):
            label = class_map.resolve(class_string)
            if label is None:
                quarantine.skip(root.uri(rel), "unknown class", [name, class_string])
                continue
            key = posixpath.splitext(name)[0]
            if key in seen:
                quarantine.skip(root.uri(rel), "duplicate key", name)
                continue
            seen.add(key)
            try:
                image = root.member(name, template.format(split=split)) if index is None else index.find(name, split)
            except UnsafePathError as error:
                quarantine.skip(root.uri(rel), "unsafe path", [name, str(error)])
                continue
            if image is None:
                quarantine.skip(root.uri(rel), "image not found", name)
                continue
            yield RawSample(spec.name, split, key, image, spec.modality, label=label)


# C7: csv strings -> the paper's class names.
DSCR_NAMES = {"aircraft carrier": "aircraft carrier", "destroyer": "destroyer", "assault": "assault ship",
              "combat": "combat ship", "cruiser": "cruiser", "other": "other military ship", "civil": "civilian ship"}

SOURCES: list[SourceSpec] = [
    SourceSpec(
        name="dscr", title="DSCR", tasks=("classification",), modality="optical", reader=read_dscr,
        options={"csv_files": {split: f"annotations/{split}.csv" for split in ("train", "val", "test")},
                 "classes": tuple(DSCR_NAMES), "display_names": DSCR_NAMES, "image_dir": None, "image_root": ""},
        paper_samples=11951, categories=tuple(DSCR_NAMES),
    ),
]
