"""COCO-instances detection (datasets.md E3 HRSID, F1 HIT-UAV normal_json / rotate_json) and the five
obscure infrared sets of F3-F7, whose format is chosen at read time.

Document (one per split; pixels of the full image):

    {"images": [{"id", "file_name" | "filename", "width", "height", ...}],
     "categories": [{"id", "name"}],
     "annotations" | "annotation": [{"image_id", "category_id", "bbox", "segmentation", "iscrowd", "difficult"}]}

Both quirks of HIT-UAV's normal_json are accepted everywhere: the singular `annotation` list key and the image
field `filename`. Categories are joined by id, images by id; an annotation with an unknown image id, an
unknown category or a bbox that is not numbers is quarantined alone ("unknown image id", "unknown class",
"malformed bbox"); an image record without id or file name too ("malformed image record"); a file that is not
JSON or has no `images` list is quarantined whole ("malformed json", "malformed file").

Geometry of an annotation (`bbox` option of the document):
- "xywh": `bbox` [x, y, w, h] -> hbb (x, y, x + w, y + h). With `obb_from_segmentation`, a polygon
  `segmentation` ([[x1, y1, ...], ...] or a flat list) also gives the obb: its 4 vertices as written, or the
  minimum-area rectangle (shapely) of all its vertices when it has another count (HRSID's hull outlines). An
  RLE or unusable segmentation gives no obb (the hbb stays; conversion derives the obb).
- "cxcywha": `bbox` [cx, cy, w, h, angle], angle in radians clockwise on screen from +x with w along it
  (HIT-UAV rotate_json) -> obb corners (`rotated_rect_corners`), no hbb.
A box is difficult when its `difficult` flag is set, when `iscrowd` is 1, or when its label is in
`ignore_labels` (HIT-UAV `DontCare` regions: kept with their label and marked difficult; the converter
drops them through the same option and counts them).

Options:
- `splits`: CocoSplit entries: split name (None: `hash_split` with `fractions`), annotation file, candidate
  image folders (the first holding the split's first image is used, trying the file name as written, then
  its base name; none: the first candidate), and optionally a second, oriented document (`oriented_bbox`
  format, default "cxcywha") joined to the first by image file name; their objects are paired as the VOC
  reader pairs HBB and OBB files (same class sequence: by position; else by class and IoU), unpaired ones keep
  one geometry (counted in quarantine.fixed). An image only in the oriented file is quarantined.
- `bbox` (default "xywh"), `obb_from_segmentation` (default False).
- `classes`: canonical class names (ClassMap, with `aliases`); None: category names as written.
- `ignore_labels`, `meta_keys` (image fields copied into RawSample.meta as strings, from both documents).

Key: the image file name without extension; width/height from the image record when positive numbers.

The F3-F7 sets (`read_detection_any`) have no public release to check against (everything UNCERTAIN): the
reader looks at the folder and picks COCO (`annotations/*.json`: a file's stem `train`, `instances_val2017`,
`valid`, ... names its split, any other stem is hash-split), then YOLO (a class list `data.yaml` /
`classes.txt`; mmrs.readers.yolo), then VOC (`Annotations/`; mmrs.readers.voc, splits from
`ImageSets/Main/{train,val,test}.txt` where present, else hash-split); none: MissingFileError naming what
was looked for. Option `format` ("auto", "coco", "yolo", "voc") forces one. Class lists come from the files.
Without an official split every image goes to "train" (`fractions` {"train": 1.0}): the paper uses these
sets for training only. `exclude_images` (a regex on the image path) drops the visible-light half of
Double-light-vehicle's visible/infrared pairs (folders `rgb`/`visible`/`vis`, stems ending `_rgb`/`_vis`),
counted in the quarantine.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import shapely

from mmrs.geometry import rotated_rect_corners
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import (
    ClassMap,
    JsonDocument,
    RecordStore,
    Spool,
    finite,
    hash_split,
    note_absent,
    read_json,
)
from mmrs.readers.voc import pair_boxes, voc_samples
from mmrs.readers.yolo import CLASS_FILES, SPLIT_FOLDERS, read_yolo
from mmrs.storage import MissingFileError, SourceRoot, UnsafePathError

POLYGON_TYPE = 3  # shapely.get_type_id of a Polygon
_ABSENT = object()


class BadRecord(ValueError):
    """A record that cannot be used; the message is the quarantine reason."""


@dataclass(frozen=True)
class CocoSplit:
    """One annotation file: its split (None: hash split), candidate image folders, optional oriented twin."""

    split: str | None
    annotations: str
    images: tuple[str, ...]
    oriented: str | None = None


@dataclass
class CocoImage:
    id: str
    name: str  # file name as written, posix separators
    width: int | None
    height: int | None
    meta: dict[str, str]


@dataclass
class CocoDocument:
    images: list[CocoImage]  # document order
    boxes: RecordStore  # image id -> (label, hbb, obb, difficult) of its boxes in document order, on disk

    def boxes_of(self, image_id: str) -> list[Box]:
        return [Box(*box) for box in self.boxes.all(image_id)]


@dataclass(frozen=True)
class DocumentRules:
    """How a document's annotations become Boxes (see the module docstring)."""

    bbox: str
    obb_from_segmentation: bool
    classes: ClassMap | None
    ignore_labels: frozenset[str]
    meta_keys: tuple[str, ...]


# --- records ----------------------------------------------------------------------------------------

def _numbers(value: Any, count: int) -> tuple[float, ...]:
    """`count` finite numbers (JSON numbers or numeric strings such as " 6.0 ", "1e1": `float` takes both;
    NaN and infinities, which json.loads accepts, are refused)."""
    if not isinstance(value, list | tuple) or len(value) != count:
        raise BadRecord("malformed bbox")
    return _finite(value)


def _finite(values: Any) -> tuple[float, ...]:
    try:
        return finite(values)
    except (TypeError, ValueError):
        raise BadRecord("malformed bbox") from None


def _size(value: Any) -> int | None:
    try:
        size = int(finite([value])[0])
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def _id(value: Any) -> str | None:
    """An id as a dict key: ints and strings, as text (so `12` and `"12"` join); anything else matches nothing."""
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None


def _flag(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() in ("1", "true"))


def segmentation_coords(segmentation: Any) -> list[float] | None:
    """Flat vertex coordinates of a polygon segmentation ([[x1, y1, ...], ...] or a flat list); None for RLE
    or anything with fewer than 3 vertices or an odd count."""
    if not isinstance(segmentation, list) or not segmentation:
        return None
    polygons = segmentation if isinstance(segmentation[0], list) else [segmentation]
    try:
        coords = list(finite(c for polygon in polygons for c in polygon))
    except (TypeError, ValueError):
        return None
    return coords if len(coords) >= 6 and len(coords) % 2 == 0 else None


def fill_minimum_rectangles(pending: list[tuple[Box, list[float]]]) -> None:
    """Set each box's obb to the minimum-area rectangle of its vertices, all boxes in one vectorised shapely
    call (a call per polygon would cost ~60 us each); a degenerate outline leaves the obb None."""
    if not pending:
        return
    coords = np.asarray([c for _, flat in pending for c in flat], dtype=float).reshape(-1, 2)
    offsets = np.cumsum([0] + [len(flat) // 2 for _, flat in pending])
    outlines = shapely.from_ragged_array(shapely.GeometryType.MULTIPOINT, coords, offsets=(offsets,))
    rects = shapely.minimum_rotated_rectangle(outlines)
    usable = (shapely.get_type_id(rects) == POLYGON_TYPE) & (shapely.area(rects) > 0)
    corners, rect_of = shapely.get_coordinates(rects, return_index=True)
    starts = np.searchsorted(rect_of, np.arange(len(pending)))
    for (box, _), ok, start in zip(pending, usable.tolist(), starts.tolist(), strict=True):
        if ok:
            box.obb = tuple(corners[start:start + 4].ravel().tolist())


def parse_annotation(record: Any, categories: Mapping[str, str | None], rules: DocumentRules,
                     pending: list[tuple[Box, list[float]]]) -> Box:
    """One annotation -> Box; a polygon to reduce to its minimum-area rectangle is appended to `pending`
    with its box (see fill_minimum_rectangles). Raises BadRecord."""
    if not isinstance(record, dict):
        raise BadRecord("malformed annotation")
    label = categories.get(_id(record.get("category_id")))
    if label is None:
        raise BadRecord("unknown class")
    polygon = None
    if rules.bbox == "xywh":
        x, y, w, h = _numbers(record.get("bbox"), 4)
        hbb, obb = _finite((x, y, x + w, y + h)), None
        polygon = segmentation_coords(record.get("segmentation")) if rules.obb_from_segmentation else None
        if polygon is not None and len(polygon) == 8:
            obb, polygon = tuple(polygon), None
    else:
        cx, cy, w, h, angle = _numbers(record.get("bbox"), 5)
        hbb, obb = None, _finite([c for point in rotated_rect_corners(cx, cy, w, h, angle) for c in point])
    difficult = _flag(record.get("difficult")) or _flag(record.get("iscrowd")) or label in rules.ignore_labels
    box = Box(label, hbb, obb, difficult)
    if polygon is not None:
        pending.append((box, polygon))
    return box


def parse_image(record: Any, meta_keys: Sequence[str]) -> CocoImage:
    """One image record (`file_name` or `filename`). Raises BadRecord."""
    if not isinstance(record, dict):
        raise BadRecord("malformed image record")
    name, image_id = record.get("file_name", record.get("filename")), _id(record.get("id"))
    if not isinstance(name, str) or not name.strip() or image_id is None:
        raise BadRecord("malformed image record")
    meta = {k: str(record[k]) for k in meta_keys if record.get(k) is not None}
    return CocoImage(image_id, name.strip().replace("\\", "/"), _size(record.get("width")),
                     _size(record.get("height")), meta)


def _categories(records: Any, classes: ClassMap | None) -> dict[str, str | None]:
    """Category id -> label (None when the name is not a known class)."""
    out: dict[str, str | None] = {}
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict) or not isinstance(name := record.get("name"), str):
            continue
        if (category_id := _id(record.get("id"))) is not None:
            out[category_id] = classes.resolve(name.strip()) if classes is not None else name.strip()
    return out


def load_document(root: SourceRoot, rel: str, rules: DocumentRules, quarantine: Quarantine) -> CocoDocument | None:
    """Parse one COCO file, streamed; None (quarantined) when it is unusable as a whole."""
    uri = root.uri(rel)
    loaded = read_json(root, rel, quarantine, partial(_load_document, uri=uri, rules=rules), lists=("images",),
                       path=uri, invalid="malformed json", malformed="no images list",
                       optional_lists=("annotations", "annotation"))
    if loaded is None:
        return None
    document, spool = loaded
    spool.flush_to(quarantine)
    return document


def _annotation_records(document: JsonDocument) -> Iterator[Any]:
    """The `annotations` list, else (no such key at all) HIT-UAV's singular `annotation` list."""
    found = False
    for record in document.items("annotations"):
        found = True
        yield record
    if not found and document.value("annotations", _ABSENT) is _ABSENT:
        yield from document.items("annotation")


def _load_document(document: JsonDocument, spool: Spool, uri: str, rules: DocumentRules,
                   chunk: int = 4096) -> CocoDocument:
    images: list[CocoImage] = []
    ids: set[str] = set()
    for record in document.items("images"):
        try:
            image = parse_image(record, rules.meta_keys)
        except BadRecord as error:  # 0 units: the annotations of its id report themselves ("unknown image id")
            spool.skip(uri, str(error), record, units=0)
            continue
        if image.id in ids:  # 0 units: the annotations of its id go to the first image with it
            spool.skip(uri, "duplicate image id", record, units=0)
            continue
        images.append(image)
        ids.add(image.id)
    categories = _categories(document.value("categories"), rules.classes)
    boxes = RecordStore()
    pending: list[tuple[Box, list[float]]] = []
    parsed: list[tuple[str, Box]] = []

    def file_parsed() -> None:  # minimum rectangles a chunk at a time, then onto disk
        fill_minimum_rectangles(pending)
        for image_id, box in parsed:
            boxes.add(image_id, (box.label, box.hbb, box.obb, box.difficult))
        pending.clear()
        parsed.clear()

    for record in _annotation_records(document):
        try:
            image_id = _id(record.get("image_id")) if isinstance(record, dict) else None
            if image_id not in ids:
                raise BadRecord("unknown image id")
            parsed.append((image_id, parse_annotation(record, categories, rules, pending)))
        except BadRecord as error:
            spool.skip(uri, str(error), record)
        if len(parsed) >= chunk:
            file_parsed()
    file_parsed()
    return CocoDocument(images, boxes)


# --- reading ----------------------------------------------------------------------------------------

def locate_images(root: SourceRoot, folders: Sequence[str], probe: str | None) -> tuple[str, bool]:
    """(image folder, whether file names are reduced to their base name): the first folder holding `probe`
    as written, else by base name; the first folder when none does (or when `probe` is not a safe name)."""
    if probe is not None:
        for base_name in (False, True):
            name = posixpath.basename(probe) if base_name else probe
            for folder in folders:
                try:
                    candidate = root.member(name, folder)
                except UnsafePathError:
                    continue
                if root.exists(candidate):
                    return folder, base_name
    return folders[0], False


def _rules(options: Mapping[str, Any], bbox: str, obb_from_segmentation: bool) -> DocumentRules:
    names = options.get("classes")
    return DocumentRules(bbox, obb_from_segmentation,
                         ClassMap(names, options.get("aliases")) if names is not None else None,
                         frozenset(options.get("ignore_labels", ())), tuple(options.get("meta_keys", ())))


def _read_split(root: SourceRoot, spec: SourceSpec, part: CocoSplit, quarantine: Quarantine) -> Iterator[RawSample]:
    options = spec.options
    doc = load_document(root, part.annotations,
                        _rules(options, options.get("bbox", "xywh"), options.get("obb_from_segmentation", False)),
                        quarantine)
    if doc is None:
        return
    twin = (load_document(root, part.oriented, _rules(options, options.get("oriented_bbox", "cxcywha"), False),
                          quarantine) if part.oriented else None)
    try:
        yield from _split_samples(root, spec, part, doc, twin, quarantine)
    finally:
        for document in (doc, twin):
            if document is not None:
                document.boxes.close()


def _split_samples(root: SourceRoot, spec: SourceSpec, part: CocoSplit, doc: CocoDocument, twin: CocoDocument | None,
                   quarantine: Quarantine) -> Iterator[RawSample]:
    options = spec.options
    twins = {image.name: image for image in twin.images} if twin is not None else {}
    folder, base_name = locate_images(root, part.images, doc.images[0].name if doc.images else None)
    seen: set[str] = set()
    for image in doc.images:
        name = posixpath.basename(image.name) if base_name else image.name
        key = posixpath.splitext(name)[0]
        other = twins.pop(image.name, None)
        objects, meta = doc.boxes_of(image.id), image.meta
        if key in seen:
            quarantine.skip(root.uri(part.annotations), "duplicate key", image.name, units=len(objects))
            continue
        seen.add(key)
        try:
            path = root.member(name, folder)
        except UnsafePathError as error:
            quarantine.skip(root.uri(part.annotations), "unsafe path", {"file_name": image.name,
                                                                         "problem": str(error)}, units=len(objects))
            continue
        if twin is not None:
            oriented = twin.boxes_of(other.id) if other is not None else []
            objects = pair_boxes(objects, oriented, quarantine)
            meta = (other.meta if other is not None else {}) | meta
        split = part.split or hash_split(key, options["fractions"])
        yield RawSample(spec.name, split, key, path, spec.modality, image.width,
                        image.height, objects=objects, meta=meta)
    for image in twins.values():  # 0 units: its objects are those of an image the horizontal file lacks
        quarantine.skip(root.uri(part.oriented), "image missing from the horizontal file", image.name, units=0)


def read_coco(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """RawSamples of every CocoSplit in `spec.options["splits"]`, in order (see the module docstring)."""
    parts: Sequence[CocoSplit] = spec.options["splits"]
    absent = {}
    for part in parts:
        missing = [root.uri(f) for f in (part.annotations, part.oriented) if f and not root.exists(f)]
        if missing:
            absent[part.split or part.annotations] = ", ".join(missing)
    note_absent(root, quarantine, len(parts) - len(absent), absent, "annotation files")
    for part in parts:
        if (part.split or part.annotations) not in absent:
            yield from _read_split(root, spec, part, quarantine)


# --- the F3-F7 infrared sets: format found at read time -------------------------------------------

COCO_FOLDER = "annotations"
# {name}: the file's stem without `instances_` (COCO's own `train2017/`); {split}: the split it names
COCO_IMAGE_FOLDERS = ("images/{name}", "{name}", "images/{split}", "{split}", "images", "JPEGImages", "")
VOC_IMAGE_FOLDERS = ("JPEGImages", "images", "Images")
VOC_SPLIT_FILE = "ImageSets/Main/{split}.txt"
_SPLIT_STEM = re.compile(r"([a-z]+?)(?:\d{4})?")


def coco_split_name(name: str) -> str | None:
    """`train`, `val2017`, `valid` -> the split; anything else None."""
    match = _SPLIT_STEM.fullmatch(name.lower())
    return SPLIT_FOLDERS.get(match.group(1)) if match else None


def discover_coco(root: SourceRoot) -> tuple[CocoSplit, ...]:
    """One CocoSplit per `annotations/*.json` file (sorted), with the candidate image folders of its name."""
    if not root.isdir(COCO_FOLDER):
        return ()
    parts = []
    for file in root.listdir(COCO_FOLDER):
        stem, ext = posixpath.splitext(file)
        if ext.lower() != ".json" or file.startswith("."):
            continue
        name = stem.removeprefix("instances_")
        split = coco_split_name(name)
        folders = (f.format(name=name, split=split) for f in COCO_IMAGE_FOLDERS if split or "{split}" not in f)
        parts.append(CocoSplit(split, posixpath.join(COCO_FOLDER, file), tuple(dict.fromkeys(folders))))
    return tuple(parts)


def voc_options(root: SourceRoot, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options of the VOC reader for a plain `Annotations/` + image folder layout (module docstring)."""
    splits = tuple(s for s in ("train", "val", "test") if root.exists(VOC_SPLIT_FILE.format(split=s)))
    return {"splits": splits, "split_files": VOC_SPLIT_FILE if splits else None,
            "split_fractions": options["fractions"], "classes": None,
            "images": next((f for f in VOC_IMAGE_FOLDERS if root.isdir(f)), VOC_IMAGE_FOLDERS[0])}


def detect_format(root: SourceRoot) -> str:
    """"coco", "yolo" or "voc" by what the folder holds; MissingFileError when it holds none of them."""
    if discover_coco(root):
        return "coco"
    if any(root.exists(rel) for rel in CLASS_FILES):
        return "yolo"
    if root.isdir("Annotations"):
        return "voc"
    raise MissingFileError(f"required annotations missing under {root.uri('')}: none of {COCO_FOLDER}/*.json "
                           f"(COCO), {', '.join(CLASS_FILES)} (YOLO), Annotations/ (VOC xml)")


def _samples_of_format(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    options = spec.options
    fmt = options.get("format", "auto")
    if fmt == "auto":
        fmt = detect_format(root)
    if fmt == "coco":
        return read_coco(root, replace(spec, options={**options, "splits": discover_coco(root)}), quarantine)
    if fmt == "yolo":
        return read_yolo(root, spec, quarantine)
    if fmt == "voc":
        return voc_samples(root, spec.name, spec.modality, voc_options(root, options), quarantine)
    raise ValueError(f"{spec.name}: unknown format {fmt!r}")


def read_detection_any(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """RawSamples of a COCO, YOLO or VOC detection folder, the format found at read time (module docstring)."""
    exclude = spec.options.get("exclude_images")
    pattern = re.compile(exclude) if exclude else None
    for sample in _samples_of_format(root, spec, quarantine):
        if pattern is not None and pattern.search(sample.image):
            quarantine.skip(root.uri(sample.image), "excluded image", exclude)
            continue
        yield sample


# --- datasets ---------------------------------------------------------------------------------------

HIT_UAV_CLASSES = ("Person", "Car", "Bicycle", "OtherVehicle", "DontCare")
# Double-light-vehicle pairs a visible and an infrared image per frame (layout UNCERTAIN): keep the infrared one.
VISIBLE_HALF = r"(?i)(^|/)(rgb|visible|vis)/|_(rgb|vis|visible)\.[a-z]+$"
INFRARED_SETS = (  # name, title as the paper writes it, Table I count
    ("sea_shipping", "Sea-shipping", 16023, None),
    ("infrared_security", "Infrared-security", 17234, None),
    ("aerial_mancar", "Aerial-mancar", 33051, None),
    ("double_light_vehicle", "Double-light-vehicle", 7922, VISIBLE_HALF),
    ("oceanic_ship", "Oceanic ship", 2505, None),
)

SOURCES: list[SourceSpec] = [
    # The paper spells it "HRISD" (Table I); the dataset's own name is used as the title.
    SourceSpec(
        name="hrsid", title="HRSID", tasks=("detection_hbb", "detection_obb"), modality="sar", reader=read_coco,
        options={"splits": tuple(CocoSplit(s, f"annotations/{s}2017.json", ("JPEGImages", "images"))
                                 for s in ("train", "test")),
                 "classes": ("ship",), "obb_from_segmentation": True},
        train_splits=("train",), paper_samples=7265, folder="HRSID_JPG",
    ),
    SourceSpec(
        name="hit_uav", title="HIT-UAV", tasks=("detection_hbb", "detection_obb"), modality="infrared",
        reader=read_coco,
        options={"splits": tuple(CocoSplit(s, f"normal_json/annotations/{s}.json", (f"normal_json/{s}",),
                                           f"rotate_json/annotations/{s}.json") for s in ("train", "val", "test")),
                 "classes": HIT_UAV_CLASSES, "ignore_labels": ("DontCare",),
                 "meta_keys": ("scenario", "weather", "perspective", "altitude")},
        paper_samples=10608,
    ),
    *(SourceSpec(name=name, title=title, tasks=("detection_hbb",), modality="infrared", reader=read_detection_any,
                 options={"format": "auto", "fractions": {"train": 1.0},
                          **({"exclude_images": exclude} if exclude else {})},
                 paper_samples=count)
      for name, title, count, exclude in INFRARED_SETS),
]
