"""Generic YOLO-txt detection reader (datasets.md F3-F7 fallback; also third-party repacks such as HIT-UAV's).

Layout, found by listing the dataset root once: images lie in a folder named `images` and their labels in
the parallel folder named `labels` (the same path with `images` -> `labels` and the extension -> `.txt`).
All three common arrangements are the same rule:

    images/<a>.jpg              labels/<a>.txt              (no split)
    images/train/<a>.jpg        labels/train/<a>.txt        (ultralytics)
    train/images/<a>.jpg        train/labels/<a>.txt        (roboflow export, data.yaml at the root)

Label line: `cls cx cy w h`, class index into the class list, centre and size normalised to [0, 1] by the
image width and height. The reader reads each labelled image's header (`root.image_size`) to return native
pixels: hbb = ((cx - w/2) W, (cy - h/2) H, (cx + w/2) W, (cy + h/2) H), and width/height of the sample.
An image without a label file is a negative (no objects; size left to the converter); an empty label file
too. A label file without an image is quarantined ("image not found"); a line that is not five numbers
("malformed line") or whose class index is outside the list ("unknown class") is quarantined alone.

Options:
- `class_files`: candidates for the class list, the first that exists is read: `data.yaml` (`names:` as a
  list or an {index: name} mapping) or a text file with one name per line (`classes.txt`, `obj.names`).
  None exists: MissingFileError naming them. Class names are kept as written.
- `split_folders`: folder name -> split (`train`, `valid` -> `val`, ...): a folder of that name on an image's
  path gives its split. `fractions`: `hash_split` fractions for images outside any split folder.

Key: the image path relative to the root without its extension.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import finite, hash_split, is_image, text_lines
from mmrs.storage import MissingFileError, SourceRoot

CLASS_FILES = ("data.yaml", "classes.txt", "labels/classes.txt", "obj.names")
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test"}
HIDDEN_FOLDERS = ("__MACOSX",)


def _hidden(parts: list[str]) -> bool:
    return any(part.startswith(".") or part in HIDDEN_FOLDERS for part in parts)


def read_class_list(root: SourceRoot, candidates: Iterable[str], quarantine: Quarantine) -> list[str]:
    """Class names in index order from the first existing candidate (see module docstring)."""
    candidates = tuple(candidates)
    rel = next((c for c in candidates if root.exists(c)), None)
    if rel is None:
        raise MissingFileError(f"required class list missing: none of {list(candidates)} under {root.uri('')}")
    try:
        text = root.read_text(rel)
    except ValueError as error:  # neither UTF-8 nor GB18030
        quarantine.skip(root.uri(rel), "malformed class list", str(error), units=0)
        return []
    if not rel.lower().endswith((".yaml", ".yml")):
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        names = (yaml.safe_load(text) or {}).get("names")
    except (yaml.YAMLError, AttributeError):
        names = None
    if isinstance(names, Mapping) and all(isinstance(k, int) for k in names):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list):
        quarantine.skip(root.uri(rel), "malformed class list", units=0)
        return []
    return [str(name) for name in names]


def pair_key(path: str, folder: str) -> str | None:
    """`path` without its extension and with its innermost folder named `folder` (any case) replaced by
    `*`: an image and its label file share it. None when no folder of the path has that name."""
    parts = path.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() == folder:
            parts[i] = "*"
            return posixpath.splitext("/".join(parts))[0]
    return None


def list_layout(root: SourceRoot, class_files: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """(image paths under an `images` folder, {pair key: label path}) from one listing of the root."""
    images, labels = [], {}
    skip = set(class_files)
    for path in root.walk_files(""):
        parts = path.split("/")
        if _hidden(parts) or path in skip:
            continue
        if is_image(parts[-1]):
            if pair_key(path, "images") is not None:
                images.append(path)
        elif parts[-1].lower().endswith(".txt") and (key := pair_key(path, "labels")) is not None:
            labels[key] = path
    return images, labels


def parse_label_file(lines: str | list[str], names: list[str], width: int, height: int, path: str,
                     quarantine: Quarantine) -> list[Box]:
    """Boxes in pixels of a `cls cx cy w h` file (see module docstring); a number that is not finite (or a
    corner that overflows) makes its line malformed."""
    boxes = []
    for line in lines.splitlines() if isinstance(lines, str) else lines:
        tokens = line.split()
        if not tokens:
            continue
        try:
            if len(tokens) != 5:
                raise ValueError
            index, cx, cy, w, h = finite(tokens)
            hbb = finite(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
        except ValueError:
            quarantine.skip(path, "malformed line", line)
            continue
        if not index.is_integer() or not 0 <= index < len(names):
            quarantine.skip(path, "unknown class", line)
            continue
        boxes.append(Box(names[int(index)], hbb))
    return boxes


def split_of(path: str, folders: Mapping[str, str]) -> str | None:
    """The split named by a folder on the path (the innermost one), or None."""
    for part in reversed(path.split("/")[:-1]):
        split = folders.get(part.lower())
        if split is not None:
            return split
    return None


def _labelled(root: SourceRoot, sample: RawSample, label_path: str, names: list[str],
              quarantine: Quarantine) -> RawSample | None:
    """`sample` with its size (from the image header) and the label file's boxes; None (quarantined) when
    the header cannot be read."""
    lines = list(text_lines(root, label_path, quarantine))
    try:
        sample.width, sample.height = root.image_size(sample.image)
    except (OSError, ValueError) as error:
        quarantine.skip(root.uri(sample.image), "unreadable image", str(error),
                        units=sum(1 for line in lines if line.split()))
        return None
    sample.objects = parse_label_file(lines, names, sample.width, sample.height, root.uri(label_path), quarantine)
    return sample


def read_yolo(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """One RawSample per image of the layout (see the module docstring)."""
    options: Mapping[str, Any] = spec.options
    class_files = options.get("class_files", CLASS_FILES)
    names = read_class_list(root, class_files, quarantine)
    folders = options.get("split_folders", SPLIT_FOLDERS)
    images, labels = list_layout(root, class_files)
    seen: set[str] = set()
    for image in images:
        key = posixpath.splitext(image)[0]
        label_path = labels.pop(pair_key(image, "images"), None)
        if key in seen:  # 0 units: its label file (the same pair key) was read with the first
            quarantine.skip(root.uri(image), "duplicate key", key, units=0)
            continue
        seen.add(key)
        split = split_of(image, folders) or hash_split(key, options["fractions"])
        sample = RawSample(spec.name, split, key, image, spec.modality)
        if label_path is not None:
            sample = _labelled(root, sample, label_path, names, quarantine)
        if sample is not None:
            yield sample
    for label_path in labels.values():
        units = sum(1 for line in text_lines(root, label_path, Quarantine(spec.name)) if line.split())
        quarantine.skip(root.uri(label_path), "image not found", units=units)


SOURCES: list[SourceSpec] = []  # the YOLO datasets are registered in mmrs.readers.coco (format chosen at read time)
