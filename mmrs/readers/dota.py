"""DOTA-txt reader (datasets.md D1): one label file per image, oriented boxes as four vertices.

Options (`SourceSpec.options`):
    splits: {split: {"images": dir, "obb": dir, "hbb": dir (optional)}}, paths relative to the root. `obb` is
        the Task1 `labelTxt` folder; `hbb` the Task2 `reclabelTxt` folder, used when present (otherwise
        conversion derives each HBB from the OBB). Only labelled splits are listed: the release withholds the
        test labels, so its images have nothing to convert. A split whose image or label folder is absent (a
        copy of train only) is passed over and listed in the manifest's `absent_splits`; none present:
        MissingFileError naming them.
    classes: the exact class names; a case-/hyphen-insensitive fallback also matches them.

Label file, pixels of the full scene (single spaces, LF or CRLF):

    imagesource:GoogleEarth              optional header, detected by prefix, kept in meta["imagesource"]
    gsd:0.146343590398                   optional header; metres per pixel or null/None (then not in meta)
    x1 y1 x2 y2 x3 y3 x4 y4 category difficult

`difficult` may be missing (9 tokens: 0); patch-split files write 2, so any value >= 1 is difficult. Lines with
fewer than 9 tokens are skipped (as the devkit does), and so are lines with a number that is not finite or that
do not decode (each alone); header-only files are images without objects. A label file whose image is gone is
quarantined with its objects ("image missing"). Vertices
outside the image are kept as written (conversion clips them). Task2 lines carry the axis-aligned rectangle
of the object on the same line of its file; it becomes Box.hbb when its class agrees with the Task1 line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec, TileSpec
from mmrs.readers.common import UNDECODABLE_LINE, ClassMap, is_image, note_absent, parse_number
from mmrs.storage import SourceRoot

HEADERS = ("imagesource", "gsd")
HBB_FROM_OBB = "hbb derived from obb (no matching task2 line)"

DOTA_V1_CLASSES = (
    "plane", "ship", "storage-tank", "baseball-diamond", "tennis-court", "basketball-court", "ground-track-field",
    "harbor", "bridge", "large-vehicle", "small-vehicle", "helicopter", "roundabout", "soccer-ball-field",
    "swimming-pool",
)


@dataclass
class LabelLine:
    """One object line: the four vertices as written, the resolved class, the difficult flag."""

    points: tuple[float, ...]
    label: str
    difficult: bool


@dataclass
class LabelFile:
    """A parsed label file: header values, one entry per object line (None where the line is unusable) and
    the (reason, line) of each unusable line."""

    headers: dict[str, str] = field(default_factory=dict)
    lines: list[LabelLine | None] = field(default_factory=list)
    rejects: list[tuple[str, str | int]] = field(default_factory=list)  # (reason, line; its number if undecodable)


def parse_line(tokens: list[str], classes: ClassMap) -> LabelLine | str:
    """`x1 y1 ... x4 y4 category [difficult]` tokens -> LabelLine, or the reason to skip the line."""
    if len(tokens) < 9:
        return "fewer than 9 tokens"
    try:
        points = tuple(parse_number(t) for t in tokens[:8])
        difficult = len(tokens) > 9 and parse_number(tokens[9]) >= 1
    except ValueError:
        return "bad number"
    label = classes.resolve(tokens[8])
    if label is None:
        return "unknown class"
    return LabelLine(points, label, difficult)


def parse_label_file(text: str | list[str | None], classes: ClassMap) -> LabelFile:
    """Headers by prefix, object lines in file order, blank lines ignored; `text` may be the file's lines
    (SourceRoot.read_lines), where a line that does not decode (None) is rejected alone."""
    parsed = LabelFile()
    for number, raw in enumerate(text.split("\n") if isinstance(text, str) else text, start=1):
        if raw is None:
            parsed.rejects.append((UNDECODABLE_LINE, number))
            parsed.lines.append(None)
            continue
        line = raw.strip()
        if not line:
            continue
        if line.startswith(HEADERS):
            name, _, value = line.partition(":")
            parsed.headers[name.strip()] = value.strip()
            continue
        result = parse_line(line.split(), classes)
        if isinstance(result, str):
            parsed.rejects.append((result, line))
            parsed.lines.append(None)
        else:
            parsed.lines.append(result)
    return parsed


def header_meta(headers: Mapping[str, str]) -> dict[str, str]:
    """imagesource as written; gsd only when it is a number (DOTA writes `null`/`None` when unknown)."""
    meta = {}
    if headers.get("imagesource"):
        meta["imagesource"] = headers["imagesource"]
    try:
        parse_number(headers.get("gsd"))
        meta["gsd"] = headers["gsd"]
    except ValueError:
        pass
    return meta


def rectangle(points: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Axis-aligned (x0, y0, x1, y1) of a Task2 line's four vertices."""
    xs, ys = points[0::2], points[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def build_boxes(obb: LabelFile, hbb: LabelFile | None, quarantine: Quarantine) -> list[Box]:
    """Boxes from the Task1 lines; the Task2 line at the same position gives the HBB when its class agrees."""
    paired = hbb is not None and len(hbb.lines) == len(obb.lines)
    boxes = []
    for i, line in enumerate(obb.lines):
        if line is None:
            continue
        rect = hbb.lines[i] if paired else None
        if hbb is not None and (rect is None or rect.label != line.label):
            quarantine.fix(HBB_FROM_OBB)
            rect = None
        boxes.append(Box(line.label, hbb=rectangle(rect.points) if rect else None, obb=line.points,
                         difficult=line.difficult))
    return boxes


def _label_stems(root: SourceRoot, folder: str) -> set[str]:
    return {name[:-4] for name in root.listdir(folder) if name.endswith(".txt")}


def read_split(root: SourceRoot, spec: SourceSpec, split: str, dirs: Mapping[str, str],
               classes: ClassMap, quarantine: Quarantine) -> Iterator[RawSample]:
    """One split: every image of dirs["images"] with its Task1 (and Task2) label file; then every label file
    whose image is not there ("image missing", with its objects)."""
    obb_dir = dirs["obb"]
    obb_stems = _label_stems(root, obb_dir)
    hbb_dir = dirs.get("hbb")
    hbb_stems = _label_stems(root, hbb_dir) if hbb_dir and root.isdir(hbb_dir) else set()
    seen: set[str] = set()
    for name in root.listdir(dirs["images"]):
        if not is_image(name):
            continue
        stem = posixpath.splitext(name)[0]
        image = posixpath.join(dirs["images"], name)
        if stem not in obb_stems:  # 0 units: an image without annotations
            quarantine.skip(image, "missing label file", units=0)
            continue
        if stem in seen:  # P0001.png and P0001.jpg: one label file, read with the first
            quarantine.skip(image, "duplicate key", stem, units=0)
            continue
        seen.add(stem)
        label_path = posixpath.join(obb_dir, f"{stem}.txt")
        obb = parse_label_file(root.read_lines(label_path), classes)
        for reason, line in obb.rejects:
            quarantine.skip(label_path, reason, line)
        hbb = None
        if stem in hbb_stems:
            hbb = parse_label_file(root.read_lines(posixpath.join(hbb_dir, f"{stem}.txt")), classes)
        yield RawSample(spec.name, split, stem, image, spec.modality, objects=build_boxes(obb, hbb, quarantine),
                        meta=header_meta(obb.headers))
    for stem in sorted(obb_stems - seen):
        label_path = posixpath.join(obb_dir, f"{stem}.txt")
        lines = parse_label_file(root.read_lines(label_path), classes).lines  # every object line, usable or not
        quarantine.skip(label_path, "image missing", stem, units=len(lines))


def read_dota(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Every labelled split of options["splits"], in the order given, images sorted by name."""
    classes = ClassMap(spec.options["classes"])
    splits = spec.options["splits"]
    absent = {split: ", ".join(root.uri(dirs[part]) for part in ("obb", "images") if not root.isdir(dirs[part]))
              for split, dirs in splits.items()}
    absent = {split: missing for split, missing in absent.items() if missing}
    note_absent(root, quarantine, len(splits) - len(absent), absent, "DOTA label or image folders")
    for split, dirs in splits.items():
        if split not in absent:
            yield from read_split(root, spec, split, dirs, classes, quarantine)


def _v1_split(split: str, task2: str) -> dict[str, str]:
    return {"images": f"{split}/images", "obb": f"{split}/labelTxt-v1.0/labelTxt",
            "hbb": f"{split}/labelTxt-v1.0/{task2}"}


SOURCES = [
    SourceSpec(
        name="dota",
        title="DOTA",
        tasks=("detection_hbb", "detection_obb"),
        modality="optical",
        reader=read_dota,
        options={
            # v1.0 as unpacked from the download page; test (937 images) has no labels and is not listed.
            "splits": {"train": _v1_split("train", "Train_Task2_gt/trainset_reclabelTxt"),
                       "val": _v1_split("val", "Val_Task2_gt/valset_reclabelTxt")},
            "classes": DOTA_V1_CLASSES,
        },
        train_splits=("train", "val"),
        paper_samples=163486,
        tile=TileSpec(size=1024, overlap=200, min_visible=0.7),
    ),
]
