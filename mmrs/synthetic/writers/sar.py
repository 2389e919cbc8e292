"""Native-format writers of the SAR ship datasets (datasets.md section E).

Every dataset here labels ships only, class `ship`; other bright structures of a harbour scene
(storage tanks) stay unlabelled, as in the real products. Geometry of a ship, in pixels of the image:

- HBB: the oriented footprint's box, clipped to the image and rounded to integers (xmin, ymin, xmax, ymax);
- OBB: the footprint's four corners (`SceneObject.corners`, clockwise on screen from the front-left);
- polygon: the hull outline the renderer paints (5 vertices, inside the OBB), rounded to integers.

Layouts (root = out/<spec.folder>):

- HRSID (E3), root `HRSID_JPG/`:
  `JPEGImages/P<scene:04d>_<row0>_<row1>_<col0>_<col1>.jpg` (800x800, 8-bit gray replicated in 3 channels;
  the stem is the chip window in its source scene, rows first) and `annotations/{train,test}2017.json`
  (COCO instances: bbox [x, y, w, h], polygon segmentation, area = polygon area, category 1 `ship`).
- SSDD official release (E2), root `Official-SSDD-OPEN/`:
  `BBox_RBox_PSeg_SSDD/voc_style/{Annotations,JPEGImages}_<split>/<%06d>.{xml,jpg}`, split `train` or
  `test` (1-based file index ending in 1 or 9); every test image and xml is also copied, byte for byte, to
  `_test_inshore` (harbour scenes) or `_test_offshore` (open sea). Objects carry `bndbox` (+ bbox_w,
  bbox_h), `rotated_bndbox` (x1..y4 corners + rotated_bbox_cx/cy/w/h/theta, theta in degrees in [0, 90),
  w along theta measured clockwise on screen from +x) and `segm/point-k` ("x,y").
- AIR-SARShip-2.0 (E1), root `AIR-SARShip-2.0/`:
  `AIR-SARShip-2.0-data/<id>.tiff` (1000x1000 single-channel uint16, linear amplitude with a long tail)
  and `AIR-SARShip-2.0-xml/<id>.xml` (Gaofen-challenge xml: `source/filename`,
  `objects/object/possibleresult/name`, `points/point` = 5 points "x,y" closing the HBB, top-left first,
  clockwise on screen). `<id>` is the 1-based sample index.

Quirks, chosen by sample index so they occur at scale 1: AIR-SARShip files with index % 3 == 1 write
points as "x, y", index % 4 == 2 omit `probability`, index % 4 == 3 omit `size`.
"""

from __future__ import annotations

import math
import shutil
import xml.etree.ElementTree as ET  # writing only
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmrs.geometry import clip_hbb, polygon_area
from mmrs.synthetic.render import object_parts, sar_to_uint8, sar_to_uint16
from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.scene import Scene, SceneObject
from mmrs.synthetic.writers.common import (
    JsonArrayWriter,
    gray_to_rgb,
    save_image,
    sub,
    write_json_document,
    write_xml,
)

SHIP = "ship"
IntBox = tuple[int, int, int, int]
IntPoint = tuple[int, int]

# HRSID chips: 800 px windows with a 600 px stride, 3 rows x 4 columns of windows per source scene.
HRSID_CHIP = 800
HRSID_STRIDE = 600
HRSID_GRID_COLUMNS = 4
HRSID_CHIPS_PER_SCENE = 12
HRSID_CATEGORIES = [{"id": 1, "name": SHIP}]

SSDD_VOC = Path("BBox_RBox_PSeg_SSDD") / "voc_style"


# --- shared geometry ------------------------------------------------------------------------------

def ships(scene: Scene) -> list[SceneObject]:
    """The labelled objects of a SAR scene, in scene order."""
    return [obj for obj in scene.objects if obj.kind == SHIP]


def int_hbb(obj: SceneObject, scene: Scene) -> IntBox:
    """HBB (xmin, ymin, xmax, ymax) clipped to the image, rounded to integer pixels."""
    x0, y0, x1, y1 = clip_hbb(obj.hbb, scene.width, scene.height)
    return round(x0), round(y0), round(x1), round(y1)


def hull_polygon(obj: SceneObject) -> list[IntPoint]:
    """The painted hull outline of a ship (the renderer's first part), integer pixels."""
    polygon = object_parts(obj)[0][0]
    return [(round(x), round(y)) for x, y in polygon]


def rbox_degrees(obj: SceneObject) -> tuple[float, float, float, float, float]:
    """(cx, cy, w, h, theta): w lies along theta, theta in degrees in [0, 90), clockwise on screen from +x.

    A heading in [90, 180) is turned back by 90 degrees, which swaps w and h (the same rectangle).
    """
    theta = math.degrees(obj.angle) % 180.0
    w, h = obj.length, obj.width
    if theta >= 90.0:
        theta, w, h = theta - 90.0, h, w
    return obj.cx, obj.cy, w, h, theta


def _num(value: float, digits: int = 2) -> str:
    """A float with at most `digits` decimals, shortest form ("141.5", "12.0")."""
    return str(round(value, digits) + 0.0)


def _gray_rgb(sample: GeneratedImage) -> np.ndarray:
    """The sample's SAR amplitude as an 8-bit display image with gray in 3 channels (SSDD/HRSID JPEG)."""
    return gray_to_rgb(sar_to_uint8(sample.pixels()))


# --- HRSID ----------------------------------------------------------------------------------------

def hrsid_file_name(index: int) -> str:
    """`P<scene>_<row0>_<row1>_<col0>_<col1>.jpg`: 12 overlapping chips per numbered source scene."""
    scene, chip = divmod(index, HRSID_CHIPS_PER_SCENE)
    row, col = divmod(chip, HRSID_GRID_COLUMNS)
    r0, c0 = row * HRSID_STRIDE, col * HRSID_STRIDE
    return f"P{scene + 1:04d}_{r0}_{r0 + HRSID_CHIP}_{c0}_{c0 + HRSID_CHIP}.jpg"


def _coco_annotation(ann_id: int, image_id: int, obj: SceneObject, scene: Scene) -> dict[str, Any]:
    """One COCO instance: integer bbox [x, y, w, h], hull polygon, area of that polygon."""
    x0, y0, x1, y1 = int_hbb(obj, scene)
    hull = hull_polygon(obj)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": polygon_area(hull), "segmentation": [[c for point in hull for c in point]], "iscrowd": 0}


def write_hrsid(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """HRSID_JPG: chips under JPEGImages/ and one COCO file per split (image id = index + 1)."""
    report = WriteReport(spec.name, root)
    spools = {split: (JsonArrayWriter(), JsonArrayWriter()) for split, _ in spec.splits}
    ann_id = 0
    for sample in samples:
        scene, name, image_id = sample.scene, hrsid_file_name(sample.index), sample.index + 1
        save_image(root / "JPEGImages" / name, _gray_rgb(sample))
        images, annotations = spools[sample.split]
        images.append({"id": image_id, "file_name": name, "width": scene.width, "height": scene.height})
        labelled = ships(scene)
        for obj in labelled:
            ann_id += 1
            annotations.append(_coco_annotation(ann_id, image_id, obj, scene))
        report.add_image(sample.split, len(labelled))
    for split, (images, annotations) in spools.items():
        write_json_document(root / "annotations" / f"{split}2017.json", {},
                            {"images": images, "annotations": annotations}, {"categories": HRSID_CATEGORIES})
    return report


# --- SSDD -----------------------------------------------------------------------------------------

def ssdd_folders(sample: GeneratedImage, spec: SyntheticDataset) -> list[str]:
    """Split folders a sample goes to: its split, and for test images also test_inshore/test_offshore."""
    if sample.split != "test":
        return [sample.split]
    return [sample.split, f"{sample.split}_{spec.classes[sample.scene_class]}"]


def _ssdd_object(parent: ET.Element, obj: SceneObject, scene: Scene) -> None:
    node = sub(parent, "object")
    for tag, text in (("name", SHIP), ("pose", "Unspecified"), ("truncated", 0), ("difficult", 0)):
        sub(node, tag, text)
    x0, y0, x1, y1 = int_hbb(obj, scene)
    box = sub(node, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax", "bbox_w", "bbox_h"),
                          (x0, y0, x1, y1, x1 - x0, y1 - y0), strict=True):
        sub(box, tag, value)
    rbox = sub(node, "rotated_bndbox")
    for tag, value in zip(("cx", "cy", "w", "h", "theta"), rbox_degrees(obj), strict=True):
        sub(rbox, f"rotated_bbox_{tag}", _num(value))
    for k, (x, y) in enumerate(obj.corners, start=1):
        sub(rbox, f"x{k}", round(x))
        sub(rbox, f"y{k}", round(y))
    segm = sub(node, "segm")
    for k, (x, y) in enumerate(hull_polygon(obj), start=1):
        sub(segm, f"point-{k}", f"{x},{y}")


def _ssdd_xml(file_name: str, scene: Scene) -> ET.Element:
    """VOC xml as the official SSDD tool writes it (folder/path `JPEGImages`, depth 3)."""
    root = ET.Element("annotation")
    sub(root, "folder", "JPEGImages")
    sub(root, "filename", file_name)
    sub(root, "path", "JPEGImages")
    size = sub(root, "size")
    for tag, value in (("width", scene.width), ("height", scene.height), ("depth", 3)):
        sub(size, tag, value)
    for obj in ships(scene):
        _ssdd_object(root, obj, scene)
    return root


def write_ssdd(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """Official-SSDD-OPEN/BBox_RBox_PSeg_SSDD/voc_style: one JPEG encoding per image, copied to the
    inshore/offshore test folders."""
    report = WriteReport(spec.name, root)
    voc = root / SSDD_VOC
    for sample in samples:
        stem = f"{sample.index + 1:06d}"
        first, *copies = ssdd_folders(sample, spec)
        image = voc / f"JPEGImages_{first}" / f"{stem}.jpg"
        save_image(image, _gray_rgb(sample))
        xml = _ssdd_xml(image.name, sample.scene)
        write_xml(voc / f"Annotations_{first}" / f"{stem}.xml", xml)
        for folder in copies:
            (voc / f"JPEGImages_{folder}").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, voc / f"JPEGImages_{folder}" / image.name)
            write_xml(voc / f"Annotations_{folder}" / f"{stem}.xml", xml)
        report.add_image(sample.split, len(ships(sample.scene)))
    return report


# --- AIR-SARShip-2.0 ------------------------------------------------------------------------------

def closed_rectangle(box: IntBox) -> list[IntPoint]:
    """5 points of an axis-aligned box: top-left, top-right, bottom-right, bottom-left, top-left."""
    x0, y0, x1, y1 = box
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def _gaofen_object(parent: ET.Element, obj: SceneObject, scene: Scene, separator: str,
                   probability: bool) -> None:
    node = sub(parent, "object")
    sub(node, "coordinate", "pixel")
    sub(node, "type", "rectangle")
    sub(node, "description", "None")
    result = sub(node, "possibleresult")
    sub(result, "name", SHIP)
    if probability:
        sub(result, "probability", 1)
    points = sub(node, "points")
    for x, y in closed_rectangle(int_hbb(obj, scene)):
        sub(points, "point", f"{x}{separator}{y}")


def _air_sarship_xml(index: int, file_name: str, scene: Scene) -> ET.Element:
    """Gaofen-challenge xml (FAIR1M family) with the index-driven quirks of the module docstring."""
    root = ET.Element("annotation")
    source = sub(root, "source")
    sub(source, "filename", file_name)
    sub(source, "origin", "GF3")
    research = sub(root, "research")
    for tag, text in (("version", "2.0"), ("provider", "AIRCAS"), ("author", "AIR-SARShip"),
                      ("pluginname", "AIR-SARShip"), ("pluginclass", "object detection"), ("time", "2019-12")):
        sub(research, tag, text)
    if index % 4 != 3:
        size = sub(root, "size")
        for tag, value in (("width", scene.width), ("height", scene.height), ("depth", 1)):
            sub(size, tag, value)
    objects = sub(root, "objects")
    separator = ", " if index % 3 == 1 else ","
    for obj in ships(scene):
        _gaofen_object(objects, obj, scene, separator, probability=index % 4 != 2)
    return root


def write_air_sarship_2(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """AIR-SARShip-2.0: uint16 TIFF per image and its Gaofen xml; no split files (none is official)."""
    report = WriteReport(spec.name, root)
    for sample in samples:
        image_id = sample.index + 1
        save_image(root / "AIR-SARShip-2.0-data" / f"{image_id}.tiff", sar_to_uint16(sample.pixels()))
        xml = _air_sarship_xml(sample.index, f"{image_id}.tiff", sample.scene)
        write_xml(root / "AIR-SARShip-2.0-xml" / f"{image_id}.xml", xml)
        report.add_image(sample.split, len(ships(sample.scene)))
    return report
