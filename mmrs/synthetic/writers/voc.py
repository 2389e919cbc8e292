"""Native-format writers of the VOC-xml family: DIOR / DIOR-R (datasets.md D2), MAR20 (D9) and DIOR-RSVG (G1).

All four share one element builder: `annotation_head` (folder, filename, path, source/database, size,
segmented), `voc_object` (type, name, pose, truncated, difficult) and the box elements `add_bndbox`
(xmin, ymin, xmax, ymax: the footprint's box clipped to the image) and `add_robndbox` (the footprint's
four corners in the order left-top, right-top, right-bottom, left-bottom, i.e. clockwise on screen from
the corner nearest the image origin, then `<angle>`: direction of the top edge in whole degrees from +x
towards +y, informational). Coordinates are pixels, rounded to integers unless a quirk says otherwise.

Layouts (root = out/<spec.folder>):

- DIOR (D2), root `DIOR/`: `JPEGImages-trainval/%05d.jpg` (train and val), `JPEGImages-test/%05d.jpg`,
  `Annotations/Horizontal Bounding Boxes/%05d.xml` (DIOR, `bndbox`), `Annotations/Oriented Bounding
  Boxes/%05d.xml` (DIOR-R, `robndbox` + `<type>robndbox</type>`), `ImageSets/Main/{train,val,test}.txt`
  (one 5-digit id a line). Ids are the 1-based sample index; class names from `DIOR_OBJECTS`.
  Quirks by sample index i: numbers written `133.0` (i % 6 == 1), ` 133 ` (i % 6 == 3), `1.330e+02`
  (i % 6 == 5) in both files; the HBB file without `<size>` (i % 20 == 2); a VOC `<owner><name>` decoy
  at the root of the HBB file (i % 8 == 4), so class names must be read from `object/name`.
- MAR20 (D9), root `MAR20/`: `JPEGImages/<id>.jpg`, `Annotations/{Horizontal,Oriented} Bounding
  Boxes/<id>.xml` (as DIOR / DIOR-R), `ImageSets/Main/{train,test}.txt`; `<id>` is the 1-based sample
  index without padding. Only planes are labelled, class = the plane's type (`A1`...). Quirk: images with
  i % 5 == 2 carry one extra zero-area record (zero-width box, collapsed corners) after the real ones.
- DIOR-RSVG (G1), root `DIOR_RSVG/`: `JPEGImages/%05d.jpg`, `Annotations/%05d.xml` with one `<object>`
  (name, pose, bndbox, description) per referring expression of `truth.referring_expressions`, and
  `{train,val,test}.txt` listing global object indices: the k-th `<object>` (0-based) over all xml files
  sorted by name, objects in document order. Stems are DIOR-like ids i + 1 + i // 7 (with gaps), and
  images without a referring expression are left out, as in the release (stems must stay 5 digits so
  that name order equals sample order). Quirks: the 4th of every 10 images written carries an extra
  object with an empty description (a copy of its first record's name and box) that is listed in its
  split; after every global index k with k % 50 == 6, the next record of a non-test image is listed in
  its own split and in the last split (test), so de-overlapping in split order (train > val > test)
  recovers the true split.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET  # writing only
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mmrs.geometry import HBB, Point, clip_hbb
from mmrs.synthetic.corpus import DIOR_OBJECTS
from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.scene import Scene, SceneObject
from mmrs.synthetic.truth import referring_expressions
from mmrs.synthetic.writers.common import fmt_px, save_image, sub, write_xml

Formatter = Callable[[float], str]
HBB_DIR = "Horizontal Bounding Boxes"
OBB_DIR = "Oriented Bounding Boxes"
ROBNDBOX_TAGS = ("left_top", "right_top", "right_bottom", "left_bottom")

# DIOR number styles by sample index % 6: integers, `133.0`, integers, ` 133 `, integers, `1.330e+02`.
DIOR_NUMBER_STYLES: tuple[Formatter, ...] = (
    fmt_px, lambda v: f"{round(v)}.0", fmt_px, lambda v: f" {round(v)} ", fmt_px, lambda v: f"{round(v):.3e}",
)
RSVG_MAX_STEM = 99_999


@dataclass(frozen=True)
class Box:
    """One record: class name, clipped HBB and OBB corners (clockwise on screen), in pixels."""

    name: str
    hbb: HBB
    corners: list[Point]


# --- shared VOC element builder --------------------------------------------------------------------

def annotation_head(filename: str, size: tuple[int, int] | None, database: str, folder: str | None = None,
                    owner: str | None = None) -> ET.Element:
    """`<annotation>` with [folder], filename, [path], source/database, [owner/name], [size], segmented."""
    root = ET.Element("annotation")
    if folder is not None:
        sub(root, "folder", folder)
    sub(root, "filename", filename)
    if folder is not None:
        sub(root, "path", folder)
    sub(sub(root, "source"), "database", database)
    if owner is not None:
        owner_el = sub(root, "owner")
        sub(owner_el, "flickrid", "NULL")
        sub(owner_el, "name", owner)
    if size is not None:
        size_el = sub(root, "size")
        sub(size_el, "width", size[0])
        sub(size_el, "height", size[1])
        sub(size_el, "depth", 3)
    sub(root, "segmented", 0)
    return root


def voc_object(parent: ET.Element, name: str, oriented: bool = False, flags: bool = True) -> ET.Element:
    """`<object>` with [type robndbox], name, pose, [truncated 0, difficult 0]; boxes are added after."""
    obj = sub(parent, "object")
    if oriented:
        sub(obj, "type", "robndbox")
    sub(obj, "name", name)
    sub(obj, "pose", "Unspecified")
    if flags:
        sub(obj, "truncated", 0)
        sub(obj, "difficult", 0)
    return obj


def add_bndbox(obj: ET.Element, hbb: HBB, fmt: Formatter) -> None:
    bndbox = sub(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), hbb, strict=True):
        sub(bndbox, tag, fmt(value))


def left_top_first(corners: Sequence[Point]) -> list[Point]:
    """Rotate a clockwise corner cycle to start at the corner nearest the image origin (min x + y)."""
    start = min(range(len(corners)), key=lambda i: corners[i][0] + corners[i][1])
    return [*corners[start:], *corners[:start]]


def add_robndbox(obj: ET.Element, corners: Sequence[Point], fmt: Formatter) -> None:
    """DIOR-R corners (LT, RT, RB, LB) and `<angle>` of the LT -> RT edge in whole degrees."""
    ordered = left_top_first(corners)
    robndbox = sub(obj, "robndbox")
    for tag, (x, y) in zip(ROBNDBOX_TAGS, ordered, strict=True):
        sub(robndbox, f"x_{tag}", fmt(x))
        sub(robndbox, f"y_{tag}", fmt(y))
    (x0, y0), (x1, y1) = ordered[0], ordered[1]
    sub(obj, "angle", round(math.degrees(math.atan2(y1 - y0, x1 - x0))))


# --- shared detection helpers ----------------------------------------------------------------------

def boxes_of(scene: Scene, name_of: Callable[[SceneObject], str | None]) -> list[Box]:
    """Records of the objects `name_of` names (others stay unlabelled), in scene order."""
    out = []
    for obj in scene.objects:
        name = name_of(obj)
        if name is not None:
            out.append(Box(name, clip_hbb(obj.hbb, scene.width, scene.height), obj.corners))
    return out


def zero_area_copy(record: Box) -> Box:
    """A degenerate record at `record`'s left edge: zero-width box, corners collapsed onto a segment."""
    x0, y0, _, y1 = record.hbb
    return Box(record.name, (x0, y0, x0, y1), [(x0, y0), (x0, y0), (x0, y1), (x0, y1)])


def write_detection_xmls(annotations: Path, stem: str, filename: str, size: tuple[int, int], records: list[Box],
                         fmt: Formatter, folder: str | None, hbb_size: bool = True, owner: str | None = None) -> None:
    """`<annotations>/Horizontal Bounding Boxes/<stem>.xml` and `.../Oriented Bounding Boxes/<stem>.xml`."""
    hbb_doc = annotation_head(filename, size if hbb_size else None, "Unknown", folder, owner)
    obb_doc = annotation_head(filename, size, "Unknown", folder)
    for record in records:
        add_bndbox(voc_object(hbb_doc, record.name), record.hbb, fmt)
        add_robndbox(voc_object(obb_doc, record.name, oriented=True), record.corners, fmt)
    write_xml(annotations / HBB_DIR / f"{stem}.xml", hbb_doc)
    write_xml(annotations / OBB_DIR / f"{stem}.xml", obb_doc)


def open_split_files(stack: ExitStack, directory: Path, spec: SyntheticDataset) -> dict[str, IO[str]]:
    """`<directory>/<split>.txt` for every split of the spec, open for streaming lines."""
    directory.mkdir(parents=True, exist_ok=True)
    return {name: stack.enter_context((directory / f"{name}.txt").open("w", encoding="utf-8", newline="\n"))
            for name, _ in spec.splits}


# --- DIOR / DIOR-R ---------------------------------------------------------------------------------

def dior_image_folder(split: str) -> str:
    return "JPEGImages-test" if split == "test" else "JPEGImages-trainval"


def write_dior(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """Write DIOR and DIOR-R under `root` (see the module docstring for the layout and quirks)."""
    report = WriteReport(spec.name, root)
    with ExitStack() as stack:
        splits = open_split_files(stack, root / "ImageSets" / "Main", spec)
        for sample in samples:
            i, stem, folder = sample.index, f"{sample.index + 1:05d}", dior_image_folder(sample.split)
            save_image(root / folder / f"{stem}.jpg", sample.pixels())
            records = boxes_of(sample.scene, lambda o: DIOR_OBJECTS.get(o.kind))
            write_detection_xmls(root / "Annotations", stem, f"{stem}.jpg", (sample.width, sample.height), records,
                                 DIOR_NUMBER_STYLES[i % 6], f"/{folder}.zip/{folder}/{folder}",
                                 hbb_size=i % 20 != 2, owner="NWPU" if i % 8 == 4 else None)
            splits[sample.split].write(stem + "\n")
            report.add_image(sample.split, len(records))
    return report


# --- MAR20 -----------------------------------------------------------------------------------------

def mar20_name(obj: SceneObject) -> str | None:
    """Planes are labelled by their MAR20 type; nothing else is labelled."""
    return obj.subtype if obj.kind == "plane" else None


def write_mar20(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """Write MAR20 under `root` (see the module docstring); annotations count real planes only."""
    report = WriteReport(spec.name, root)
    with ExitStack() as stack:
        splits = open_split_files(stack, root / "ImageSets" / "Main", spec)
        for sample in samples:
            stem = str(sample.index + 1)
            save_image(root / "JPEGImages" / f"{stem}.jpg", sample.pixels())
            records = boxes_of(sample.scene, mar20_name)
            extra = [zero_area_copy(records[0])] if records and sample.index % 5 == 2 else []
            write_detection_xmls(root / "Annotations", stem, f"{stem}.jpg", (sample.width, sample.height),
                                 records + extra, fmt_px, folder=None)
            splits[sample.split].write(stem + "\n")
            report.add_image(sample.split, len(records))
    return report


# --- DIOR-RSVG -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expression:
    """One image-text pair: the referred object's record and its description."""

    record: Box
    description: str


def rsvg_stem(index: int) -> str:
    """DIOR-like 5-digit id with a gap after every 7 images; name order must equal sample order."""
    number = index + 1 + index // 7
    if number > RSVG_MAX_STEM:
        raise ValueError(f"DIOR-RSVG stems are 5-digit DIOR ids; sample {index} would need {number}")
    return f"{number:05d}"


def rsvg_expressions(scene: Scene) -> list[Expression]:
    """One pair per referring expression of a DIOR class, the box being the referred object's clipped HBB."""
    out = []
    for referral in referring_expressions(scene):
        obj = scene.objects[referral.index]
        if obj.kind in DIOR_OBJECTS:
            record = Box(DIOR_OBJECTS[obj.kind], clip_hbb(obj.hbb, scene.width, scene.height), obj.corners)
            out.append(Expression(record, referral.text))
    return out


def rsvg_document(stem: str, size: tuple[int, int], pairs: list[Expression]) -> ET.Element:
    doc = annotation_head(f"{stem}.jpg", size, "DIOR")
    for pair in pairs:
        obj = voc_object(doc, pair.record.name, flags=False)
        add_bndbox(obj, pair.record.hbb, fmt_px)
        sub(obj, "description", pair.description)
    return doc


class RsvgSplits:
    """Streams global object indices into the split files, duplicating one index now and then."""

    def __init__(self, files: dict[str, IO[str]]) -> None:
        self.files = files
        self.last = list(files)[-1]
        self.next_index = 0
        self.duplicate_pending = False

    def add(self, split: str) -> None:
        """List the next global index in `split` (and in the last split when a duplicate is due)."""
        k = self.next_index
        self.files[split].write(f"{k}\n")
        if k % 50 == 6:
            self.duplicate_pending = True
        if self.duplicate_pending and split != self.last:
            self.files[self.last].write(f"{k}\n")
            self.duplicate_pending = False
        self.next_index += 1


def write_dior_rsvg(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """Write DIOR-RSVG under `root` (see the module docstring); annotations count real expressions."""
    report = WriteReport(spec.name, root)
    written = 0
    with ExitStack() as stack:
        splits = RsvgSplits(open_split_files(stack, root, spec))
        for sample in samples:
            pairs = rsvg_expressions(sample.scene)
            if not pairs:
                continue  # images nobody can be referred to in are not part of the release
            stem = rsvg_stem(sample.index)
            save_image(root / "JPEGImages" / f"{stem}.jpg", sample.pixels())
            listed = pairs + ([Expression(pairs[0].record, "")] if written % 10 == 3 else [])
            write_xml(root / "Annotations" / f"{stem}.xml", rsvg_document(stem, (sample.width, sample.height), listed))
            for _ in listed:
                splits.add(sample.split)
            report.add_image(sample.split, len(pairs))
            written += 1
    return report
