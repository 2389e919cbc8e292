"""Native-format writer of HIT-UAV (datasets.md F1), the UAV thermal-infrared detection set.

Layout under root = out/HIT-UAV/, all four official folders, the same JPEG bytes in each:

    normal_xml/  Annotations/<stem>.xml  JPEGImages/<stem>.jpg  ImageSets/Main/{train,val,test,trainval}.txt
    rotate_xml/  Annotations/<stem>.xml  JPEGImages/<stem>.jpg  ImageSets/Main/{train,val,test,trainval}.txt
    normal_json/ annotations/{train,val,test}.json             {train,val,test}/<stem>.jpg
    rotate_json/ annotations/{train,val,test}.json  log.json   {train,val,test}/<stem>.jpg

- Images: 640x512 JPEG in PIL mode L (8-bit single channel); xml `<depth>1</depth>`.
- Stem `<scenario>_<altitude>_<perspective>_<weather>_<frame>`: scenario 1 = night (`Scene.night`), 0 = day;
  altitude in metres = 1500 x GSD (a fixed camera: GSD grows linearly with height) rounded to 10 m and
  clamped to [60, 130]; perspective (camera pitch, degrees) drawn from 30..90 in steps of 10 per sample;
  weather 0 (sunny); frame = the sample index, 5 digits.
- Classes and ids: Person 0, Car 1, Bicycle 2, OtherVehicle 3 (`HIT_UAV_OBJECTS`), DontCare 4.
- normal_xml: VOC, `<bndbox>` integer xyxy pixels, `<pose>` = perspective.
- rotate_xml: roLabelImg, `<annotation verified="no">`, `<filename>` without extension, a Windows `<path>`,
  `<type>robndbox</type>` and `<robndbox>` cx, cy, w, h (float pixels; w along the object's heading) and
  angle (radians in [0, pi), clockwise on screen from +x).
- normal_json: COCO-like with the official quirks: the annotation list key is singular `annotation`, image
  records name the file `filename`; bbox [x, y, w, h] integers, rectangle segmentation, area = w * h.
  (Both json documents write categories before the streamed images and annotations; key order is not
  significant in JSON.)
- rotate_json: keys info, licenses, scenarios, weather, images, categories, annotations; image metadata
  values are strings; bbox [cx, cy, w, h, angle]; `difficult` is a bool. log.json counts instances.
- Image ids are the sample index (ids are global across splits, as in the release); annotation ids run
  over the whole dataset in sample order. An object is `difficult` when its box is under 8 px on its
  longer side.
- Quirk: every image with index % 10 == 3 gets one DontCare region, a rectangle on empty ground that
  overlaps no object (skipped when none fits); it is an ignore region, not a scene object.
"""

from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET  # writing only
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mmrs.geometry import clip_hbb
from mmrs.synthetic.corpus import HIT_UAV_OBJECTS
from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.scene import Scene, SceneObject
from mmrs.synthetic.writers.common import JsonArrayWriter, save_image, sub, write_json_document, write_xml

DONT_CARE = "DontCare"
CATEGORIES: tuple[str, ...] = (*HIT_UAV_OBJECTS.values(), DONT_CARE)
CATEGORY_IDS = {name: i for i, name in enumerate(CATEGORIES)}
CAPTURE_DATES = ("20201217", "20210114", "20210115", "20210116", "20210118", "20210119", "20210120",
                 "20210121", "20210123")
PERSPECTIVES = (30, 40, 50, 60, 70, 80, 90)
DIFFICULT_BELOW_PX = 8
XML_FOLDERS = ("normal_xml", "rotate_xml")
_INFO = {"year": "2021", "version": "1.0", "description": "HIT-UAV synthetic sample",
         "contributor": "mmrs.synthetic", "url": "none", "data_created": "20210123"}
_LICENSES = [{"url": "none"}, {"name": "none"}]
_NORMAL_JSON_HEAD = {
    "info": _INFO, "licenses": _LICENSES,
    "categories": [{"supercategory": name if name in ("Person", DONT_CARE) else "Vehicle", "id": i, "name": name}
                   for i, name in enumerate(CATEGORIES)],
}
_ROTATE_JSON_HEAD = {
    "info": _INFO, "licenses": _LICENSES,
    "scenarios": [{"id": 0, "name": "day"}, {"id": 1, "name": "night"}],
    "weather": [{"id": 0, "name": "sunny"}, {"id": 1, "name": "rainy"}],
    "categories": [{"id": i, "name": name} for i, name in enumerate(CATEGORIES)],
}
# json folder -> (keys written before the streamed arrays, key of the annotation array)
_JSON_LAYOUT = {"normal_json": (_NORMAL_JSON_HEAD, "annotation"), "rotate_json": (_ROTATE_JSON_HEAD, "annotations")}


@dataclass(frozen=True)
class Frame:
    """Capture metadata of one image, as its file stem encodes it."""

    scenario: int  # 0 day, 1 night
    altitude: int  # metres
    perspective: int  # degrees
    weather: int  # 0 sunny, 1 rainy
    frame: int
    date: str

    @property
    def stem(self) -> str:
        return f"{self.scenario}_{self.altitude}_{self.perspective}_{self.weather}_{self.frame:05d}"

    @property
    def windows_path(self) -> str:
        """The annotator's path that roLabelImg stores in `<path>`."""
        daytime = "night" if self.scenario else "day"
        return (f"C:\\Users\\annotator\\Desktop\\data_pro\\images_data_new\\{daytime}\\{self.altitude}m"
                f"\\-{self.perspective}\\{self.date}\\{self.stem}.jpg")


@dataclass(frozen=True)
class Box:
    """One annotation in both geometries: integer HBB (xmin, ymin, xmax, ymax) and rotated box
    (cx, cy, w, h, angle), angle in radians in [0, pi)."""

    name: str
    hbb: tuple[int, int, int, int]
    rbox: tuple[float, float, float, float, float]
    difficult: bool


def altitude_m(gsd: float) -> int:
    """Flight altitude for a ground sample distance: 1500 x GSD, to 10 m, within the 60-130 m flown."""
    return min(130, max(60, 10 * round(gsd * 150)))


def frame_of(sample: GeneratedImage) -> Frame:
    """Capture metadata of a sample (see the module docstring for each rule)."""
    perspective = int(sample.rng("camera").choice(PERSPECTIVES))
    return Frame(int(sample.scene.night), altitude_m(sample.gsd), perspective, 0, sample.index,
                 CAPTURE_DATES[sample.index % len(CAPTURE_DATES)])


def angle_mod_pi(angle: float, digits: int = 6) -> float:
    """An undirected angle folded into [0, pi), rounded to `digits` decimals."""
    folded = round(angle % math.pi, digits)
    return 0.0 if folded >= math.pi else folded


def _object_box(obj: SceneObject, scene: Scene) -> Box:
    x0, y0, x1, y1 = clip_hbb(obj.hbb, scene.width, scene.height)
    hbb = (round(x0), round(y0), round(x1), round(y1))
    rbox = (round(obj.cx, 4), round(obj.cy, 4), round(obj.length, 4), round(obj.width, 4), angle_mod_pi(obj.angle))
    difficult = max(hbb[2] - hbb[0], hbb[3] - hbb[1]) < DIFFICULT_BELOW_PX
    return Box(HIT_UAV_OBJECTS[obj.kind], hbb, rbox, difficult)


def _dont_care(sample: GeneratedImage, boxes: list[Box], tries: int = 20) -> Box | None:
    """An ignore region of 30-60 px on empty ground (2 px clear of every object box), or None."""
    rng, scene = sample.rng("quirks"), sample.scene
    for _ in range(tries):
        w, h = (int(v) for v in rng.integers(30, 61, size=2))
        x0, y0 = int(rng.integers(0, scene.width - w)), int(rng.integers(0, scene.height - h))
        x1, y1 = x0 + w, y0 + h
        if all(x1 + 2 < b.hbb[0] or b.hbb[2] + 2 < x0 or y1 + 2 < b.hbb[1] or b.hbb[3] + 2 < y0 for b in boxes):
            return Box(DONT_CARE, (x0, y0, x1, y1), (x0 + w / 2, y0 + h / 2, float(w), float(h), 0.0), False)
    return None


def boxes_of(sample: GeneratedImage) -> list[Box]:
    """The annotations of a sample: its objects in scene order, then the DontCare quirk if any."""
    scene = sample.scene
    boxes = [_object_box(obj, scene) for obj in scene.objects if obj.kind in HIT_UAV_OBJECTS]
    if sample.index % 10 == 3 and (region := _dont_care(sample, boxes)) is not None:
        boxes.append(region)
    return boxes


# --- xml ------------------------------------------------------------------------------------------

def _size(parent: ET.Element, scene: Scene) -> None:
    size = sub(parent, "size")
    for tag, value in (("width", scene.width), ("height", scene.height), ("depth", 1)):
        sub(size, tag, value)


def _object(parent: ET.Element, box: Box, pose: object, rotated: bool) -> ET.Element:
    """An `<object>` with its VOC head; roLabelImg puts `<type>robndbox</type>` first."""
    node = sub(parent, "object")
    if rotated:
        sub(node, "type", "robndbox")
    sub(node, "name", box.name)
    sub(node, "pose", pose)
    sub(node, "truncated", 0)
    sub(node, "difficult", int(box.difficult))
    return node


def normal_xml(frame: Frame, scene: Scene, boxes: list[Box]) -> ET.Element:
    """VOC xml of normal_xml/Annotations (pose = perspective, integer bndbox)."""
    root = ET.Element("annotation")
    sub(root, "folder", "./JPEGImages")
    sub(root, "filename", f"{frame.stem}.jpg")
    source = sub(root, "source")
    sub(source, "database", "The pegasus Database")
    sub(source, "annotation", "Pegasus 2021")
    _size(root, scene)
    sub(root, "segmented", 0)
    for box in boxes:
        bndbox = sub(_object(root, box, frame.perspective, rotated=False), "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box.hbb, strict=True):
            sub(bndbox, tag, value)
    return root


def rotate_xml(frame: Frame, scene: Scene, boxes: list[Box]) -> ET.Element:
    """roLabelImg xml of rotate_xml/Annotations (filename without extension, robndbox)."""
    root = ET.Element("annotation", verified="no")
    sub(root, "folder", frame.date)
    sub(root, "filename", frame.stem)
    sub(root, "path", frame.windows_path)
    sub(sub(root, "source"), "database", "Unknown")
    _size(root, scene)
    sub(root, "segmented", 0)
    for box in boxes:
        robndbox = sub(_object(root, box, "Unspecified", rotated=True), "robndbox")
        for tag, value in zip(("cx", "cy", "w", "h", "angle"), box.rbox, strict=True):
            sub(robndbox, tag, value)
    return root


# --- json -----------------------------------------------------------------------------------------

def _normal_json_image(frame: Frame, image_id: int, scene: Scene) -> dict[str, Any]:
    return {"filename": f"{frame.stem}.jpg", "height": scene.height, "width": scene.width, "id": image_id,
            "date_captured": frame.date}


def _normal_json_annotation(ann_id: int, image_id: int, box: Box) -> dict[str, Any]:
    x0, y0, x1, y1 = box.hbb
    return {"segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "area": (x1 - x0) * (y1 - y0),
            "image_id": image_id, "bbox": [x0, y0, x1 - x0, y1 - y0], "category_id": CATEGORY_IDS[box.name],
            "id": ann_id}


def _rotate_json_image(frame: Frame, image_id: int, scene: Scene) -> dict[str, Any]:
    return {"id": image_id, "width": scene.width, "height": scene.height, "depth": 1,
            "filename": f"{frame.stem}.jpg", "scenario": str(frame.scenario), "weather": str(frame.weather),
            "perspective": str(frame.perspective), "altitude": str(frame.altitude), "date": frame.date}


def _rotate_json_annotation(ann_id: int, image_id: int, box: Box) -> dict[str, Any]:
    return {"id": ann_id, "image_id": image_id, "category_id": CATEGORY_IDS[box.name],
            "difficult": box.difficult, "bbox": list(box.rbox)}


class _JsonSplits:
    """Spools of the normal_json and rotate_json documents, one (images, annotations) pair per split."""

    def __init__(self, splits: list[str]) -> None:
        self.spools = {(folder, split): (JsonArrayWriter(), JsonArrayWriter())
                       for folder in _JSON_LAYOUT for split in splits}

    def add(self, split: str, frame: Frame, image_id: int, scene: Scene, boxes: list[Box], first_id: int) -> None:
        normal_images, normal_annotations = self.spools["normal_json", split]
        rotate_images, rotate_annotations = self.spools["rotate_json", split]
        normal_images.append(_normal_json_image(frame, image_id, scene))
        rotate_images.append(_rotate_json_image(frame, image_id, scene))
        for ann_id, box in enumerate(boxes, start=first_id):
            normal_annotations.append(_normal_json_annotation(ann_id, image_id, box))
            rotate_annotations.append(_rotate_json_annotation(ann_id, image_id, box))

    def write(self, root: Path) -> None:
        """normal_json and rotate_json documents; the annotation arrays come last (`annotation` singular
        in normal_json)."""
        for (folder, split), (images, records) in self.spools.items():
            head, key = _JSON_LAYOUT[folder]
            write_json_document(root / folder / "annotations" / f"{split}.json", head,
                                {"images": images, key: records})


def _log_json(summary: Counter[str], images: int) -> dict[str, Any]:
    counts = {name: summary[name] for name in CATEGORIES}
    return {"summary": {**counts, "totalIMG": images, "totalBBOX": sum(counts.values())},
            "xml_no_existence": [], "error_bbox": {}, "error_category": {}}


# --- writer ---------------------------------------------------------------------------------------

def _open_image_sets(stack: ExitStack, root: Path, splits: list[str]) -> dict[str, list[IO[str]]]:
    """ImageSets/Main/<split>.txt of both xml folders, plus trainval.txt fed by train and val."""
    files: dict[str, list[IO[str]]] = {}
    for folder in XML_FOLDERS:
        main = root / folder / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        trainval = stack.enter_context((main / "trainval.txt").open("w", encoding="utf-8", newline=""))
        for split in splits:
            handle = stack.enter_context((main / f"{split}.txt").open("w", encoding="utf-8", newline=""))
            files.setdefault(split, []).append(handle)
            if split in ("train", "val"):
                files[split].append(trainval)
    return files


def _write_image(root: Path, sample: GeneratedImage, frame: Frame) -> None:
    """Encode the thermal image once, then copy the bytes into the other three folders."""
    name = f"{frame.stem}.jpg"
    first = root / "normal_xml" / "JPEGImages" / name
    save_image(first, sample.pixels())
    for folder in (root / "rotate_xml" / "JPEGImages", root / "normal_json" / sample.split,
                   root / "rotate_json" / sample.split):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, folder / name)


def write_hit_uav(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """HIT-UAV: the four official folders (see the module docstring), streamed sample by sample."""
    report = WriteReport(spec.name, root)
    splits = [name for name, _ in spec.splits]
    documents = _JsonSplits(splits)
    summary: Counter[str] = Counter()
    ann_id = 0
    with ExitStack() as stack:
        image_sets = _open_image_sets(stack, root, splits)
        for sample in samples:
            scene, frame, boxes = sample.scene, frame_of(sample), boxes_of(sample)
            _write_image(root, sample, frame)
            write_xml(root / "normal_xml" / "Annotations" / f"{frame.stem}.xml", normal_xml(frame, scene, boxes))
            write_xml(root / "rotate_xml" / "Annotations" / f"{frame.stem}.xml", rotate_xml(frame, scene, boxes))
            for handle in image_sets[sample.split]:
                handle.write(frame.stem + "\n")
            documents.add(sample.split, frame, sample.index, scene, boxes, ann_id)
            ann_id += len(boxes)
            summary.update(box.name for box in boxes)
            report.add_image(sample.split, len(boxes))
    documents.write(root)
    (root / "rotate_json" / "annotations" / "log.json").write_text(
        json.dumps(_log_json(summary, report.images)), encoding="utf-8")
    return report
