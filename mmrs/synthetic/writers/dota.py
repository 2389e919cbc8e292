"""Native-format writer of DOTA v1.0 (datasets.md D1): large scenes as PNG with Task1/Task2 txt labels.

Layout (root = out/DOTA, stem `P%04d` of the sample index):

    <split>/images/P0000.png                                              split: train, val or test
    train/labelTxt-v1.0/labelTxt/P0000.txt                                Task1, oriented boxes
    train/labelTxt-v1.0/Train_Task2_gt/trainset_reclabelTxt/P0000.txt     Task2, horizontal boxes
    val/labelTxt-v1.0/labelTxt/P0000.txt
    val/labelTxt-v1.0/Val_Task2_gt/valset_reclabelTxt/P0000.txt

Test images get no label files (the release withholds them) and count zero annotations.

Label file: `imagesource:GoogleEarth`, `gsd:<metres per pixel>`, then one line per object
`x1 y1 x2 y2 x3 y3 x4 y4 category difficult` (pixels, single spaces, class names of `DOTA_OBJECTS`).
Task1 vertices are the footprint (`SceneObject.corners`, clockwise on screen from the front-left corner)
and may lie outside the image; Task2 vertices are the footprint's box clipped to the image, clockwise from
its top-left corner. `difficult` is 0 for objects fully inside the image, 2 for objects truncated by the
border (the devkit's patch-split value) and 1 for objects with more than half their area outside; a reader
treats any value >= 1 as difficult. Scenes without objects (farmland) give header-only files.

Quirks, chosen by the running number k of labelled (train/val) images so they all occur at scale 1, and
applied to both files of an image: coordinates as floats `1054.3` (k odd, else integers), `gsd:null`
(k % 4 == 2), the first line of a non-difficult object without its difficult token, 9 tokens (k % 3 == 0),
CRLF line endings (k % 5 == 4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import Polygon, box

from mmrs.geometry import Point, clip_hbb
from mmrs.synthetic.corpus import DOTA_OBJECTS
from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.scene import Scene, SceneObject
from mmrs.synthetic.writers.common import fmt_px, save_image, write_lines

IMAGE_SOURCE = "imagesource:GoogleEarth"
LABEL_DIR = "labelTxt-v1.0"
TASK1_DIR = "labelTxt"
TASK2_DIRS = {"train": "Train_Task2_gt/trainset_reclabelTxt", "val": "Val_Task2_gt/valset_reclabelTxt"}

DIFFICULT_TRUNCATED = 2  # part of the footprint lies outside the image
DIFFICULT_MOSTLY_OUTSIDE = 1  # less than half of it lies inside


@dataclass(frozen=True)
class LabelQuirks:
    """Format variations of one image's label files (see the module docstring)."""

    float_coords: bool
    gsd_null: bool
    drop_difficult: bool
    crlf: bool

    @classmethod
    def of(cls, k: int) -> LabelQuirks:
        """Quirks of the k-th labelled image (0-based, in sample order)."""
        return cls(float_coords=k % 2 == 1, gsd_null=k % 4 == 2, drop_difficult=k % 3 == 0, crlf=k % 5 == 4)


def visible_fraction(obj: SceneObject, width: int, height: int) -> float:
    """Share of the object's footprint area inside the image [0, width] x [0, height]."""
    footprint = Polygon(obj.corners)
    return footprint.intersection(box(0, 0, width, height)).area / footprint.area


def difficulty(obj: SceneObject, width: int, height: int) -> int:
    """0 inside the image, 2 truncated by its border, 1 mostly outside."""
    visible = visible_fraction(obj, width, height)
    if visible >= 1.0 - 1e-6:
        return 0
    return DIFFICULT_MOSTLY_OUTSIDE if visible < 0.5 else DIFFICULT_TRUNCATED


def hbb_corners(obj: SceneObject, scene: Scene) -> list[Point]:
    """The clipped HBB as a 4-vertex polygon, clockwise on screen from the top-left corner."""
    x0, y0, x1, y1 = clip_hbb(obj.hbb, scene.width, scene.height)
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def object_line(points: Sequence[Point], category: str, difficult: int | None, fmt: Callable[[float], str]) -> str:
    """`x1 y1 ... x4 y4 category difficult`; without the last token when `difficult` is None."""
    tokens = [fmt(c) for point in points for c in point] + [category]
    if difficult is not None:
        tokens.append(str(difficult))
    return " ".join(tokens)


def label_files(scene: Scene, quirks: LabelQuirks) -> tuple[list[str], list[str]]:
    """Lines of the Task1 (OBB) and Task2 (HBB) files of one scene, headers included."""
    fmt = (lambda v: f"{v:.1f}") if quirks.float_coords else fmt_px
    header = [IMAGE_SOURCE, "gsd:null" if quirks.gsd_null else f"gsd:{scene.gsd:.12g}"]
    task1, task2 = list(header), list(header)
    nine_tokens_due = quirks.drop_difficult
    for obj in scene.objects:
        category = DOTA_OBJECTS.get(obj.kind)
        if category is None:
            continue
        difficult: int | None = difficulty(obj, scene.width, scene.height)
        if difficult == 0 and nine_tokens_due:
            difficult, nine_tokens_due = None, False  # readers default a missing difficult to 0
        task1.append(object_line(obj.corners, category, difficult, fmt))
        task2.append(object_line(hbb_corners(obj, scene), category, difficult, fmt))
    return task1, task2


def write_labels(split_dir: Path, split: str, stem: str, scene: Scene, quirks: LabelQuirks) -> int:
    """Write the Task1 and Task2 files of one image; return the number of object lines."""
    task1, task2 = label_files(scene, quirks)
    newline = "\r\n" if quirks.crlf else "\n"
    labels = split_dir / LABEL_DIR
    write_lines(labels / TASK1_DIR / f"{stem}.txt", task1, newline)
    write_lines(labels / TASK2_DIRS[split] / f"{stem}.txt", task2, newline)
    return len(task1) - 2


def write_dota(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """Write DOTA under `root` (see the module docstring for the layout)."""
    report = WriteReport(spec.name, root)
    labelled = 0
    for sample in samples:
        stem = f"P{sample.index:04d}"
        split_dir = root / sample.split
        save_image(split_dir / "images" / f"{stem}.png", sample.pixels())
        written = 0
        if sample.split in TASK2_DIRS:
            written = write_labels(split_dir, sample.split, stem, sample.scene, LabelQuirks.of(labelled))
            labelled += 1
        report.add_image(sample.split, written)
    return report
