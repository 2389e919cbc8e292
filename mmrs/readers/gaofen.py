"""Gaofen-challenge xml reader (datasets.md D3 FAIR1M, E1 AIR-SARShip-2.0): one xml per image.

Options (`SourceSpec.options`):
    parts: list of {"split": name or None, "images": dir, "labels": dir, "key_prefix": str (default ""),
        "required": bool (default True)}, paths relative to the root. A part whose split is None takes
        `hash_split(key, options["hash_split"])` per image (datasets without an official split). An optional
        part without its folders is passed over silently (FAIR1M v1.0 has no part2 nor validation); a
        required one is passed over and listed in the manifest's `absent_splits`, and MissingFileError comes
        only when no part is there. `key_prefix` keeps keys unique where two parts share a split.
    image_exts: extensions tried for `<xml stem><ext>` when the xml's filename is not among the images.
    geometry: "obb" (the first 4 points as the vertices, FAIR1M) or "hbb" (min/max over all points: the
        rectangles of AIR-SARShip; conversion derives the OBB from it).
    classes: exact class strings (a case-/space-insensitive fallback also matches).

Xml, pixels of the full image:

    <annotation>
      <source><filename>0.tif</filename><origin>GF2/GF3</origin></source>     (or <filename> under the root)
      <size><width>1000</width><height>1000</height><depth>3</depth></size>  (optional, anywhere)
      <objects><object>
        <possibleresult><name>Small Car</name><probability>1</probability></possibleresult>
        <points><point>468.0,313.0</point> ... 5 points, the 5th repeating the 1st</points>
      </object></objects>
    </annotation>

Point text is "x,y" or "x, y". A ring closed by repeating its first point is opened before use. The image
is the xml's filename when that file exists in the image folder, else the xml stem with one of image_exts.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec, TileSpec
from mmrs.readers.common import ClassMap, hash_split, is_image, note_absent, parse_number
from mmrs.readers.voc import XML_ERRORS, object_tags, parse_xml
from mmrs.storage import SourceRoot

Point = tuple[float, float]

FAIR1M_CLASSES = (
    # ships
    "Passenger Ship", "Motorboat", "Fishing Boat", "Tugboat", "other-ship", "Engineering Ship", "Liquid Cargo Ship",
    "Dry Cargo Ship", "Warship",
    # vehicles
    "Small Car", "Bus", "Cargo Truck", "Dump Truck", "other-vehicle", "Van", "Trailer", "Tractor", "Excavator",
    "Truck Tractor",
    # airplanes
    "Boeing737", "Boeing747", "Boeing777", "Boeing787", "ARJ21", "C919", "A220", "A321", "A330", "A350",
    "other-airplane",
    # courts and roads
    "Baseball Field", "Basketball Court", "Football Field", "Tennis Court", "Roundabout", "Intersection", "Bridge",
)


def parse_points(texts: Sequence[str | None]) -> list[Point]:
    """["x,y", "x, y", ...] -> [(x, y), ...]; a closing repeat of the first point is dropped.
    Raises ValueError on a malformed point."""
    points = []
    for text in texts:
        x, y = (text or "").split(",")
        points.append((parse_number(x), parse_number(y)))
    if len(points) > 1 and points[-1] == points[0]:
        points.pop()
    return points


def geometry(points: list[Point], kind: str) -> dict[str, tuple[float, ...]] | str:
    """Box geometry fields from the opened ring, or the reason it is unusable."""
    if kind == "hbb":
        if len(points) < 2:
            return "fewer than 2 points"
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return {"hbb": (min(xs), min(ys), max(xs), max(ys))}
    if len(points) < 4:
        return "fewer than 4 points"
    return {"obb": tuple(c for p in points[:4] for c in p)}


def parse_object(node: Any, classes: ClassMap, kind: str) -> Box | str:
    """One `objects/object` element -> Box, or the reason to skip it."""
    name = node.findtext("possibleresult/name")
    label = classes.resolve(name or "")
    if label is None:
        return "unknown class"
    try:
        points = parse_points([p.text for p in node.findall("points/point")])
    except ValueError:
        return "bad point"
    fields = geometry(points, kind)
    return fields if isinstance(fields, str) else Box(label, **fields)


def image_size(xml: Any) -> tuple[int | None, int | None]:
    """(width, height) from a `size` element when it holds two positive numbers, else (None, None)."""
    size = xml.find(".//size")
    try:
        width, height = int(parse_number(size.findtext("width"))), int(parse_number(size.findtext("height")))
    except (AttributeError, ValueError):
        return None, None
    return (width, height) if width > 0 and height > 0 else (None, None)


def image_name(xml: Any, stem: str, images: set[str], exts: Sequence[str]) -> str | None:
    """The image file of an xml: its own filename when present in the folder, else stem + extension."""
    written = (xml.findtext("source/filename") or xml.findtext("filename") or "").strip()
    candidates = [posixpath.basename(written)] if written else []
    candidates += [stem + ext for ext in exts]
    return next((name for name in candidates if name in images), None)


def read_part(root: SourceRoot, spec: SourceSpec, part: Mapping[str, Any], classes: ClassMap,
              quarantine: Quarantine) -> Iterator[RawSample]:
    """Every xml of one (images, labels) folder pair, sorted by name."""
    options = spec.options
    labels = part["labels"]
    images = {name for name in root.listdir(part["images"]) if is_image(name)}
    for file_name in root.listdir(labels):
        if not file_name.endswith(".xml"):
            continue
        path = posixpath.join(labels, file_name)
        data = root.read_bytes(path)
        try:
            xml = parse_xml(data)
            if xml is None:
                raise ValueError("empty file")
        except XML_ERRORS as error:
            quarantine.skip(path, "malformed xml", str(error), units=object_tags(data))
            continue
        stem = file_name[:-4]
        image = image_name(xml, stem, images, options["image_exts"])
        if image is None:
            quarantine.skip(path, "image missing", units=len(xml.findall("objects/object")))
            continue
        key = part.get("key_prefix", "") + stem
        split = part["split"] or hash_split(key, options["hash_split"])
        width, height = image_size(xml)
        objects = []
        for node in xml.findall("objects/object"):
            box = parse_object(node, classes, options["geometry"])
            if isinstance(box, str):
                quarantine.skip(path, box, ET.tostring(node, encoding="unicode"))
            else:
                objects.append(box)
        origin = (xml.findtext("source/origin") or "").strip()
        yield RawSample(spec.name, split, key, posixpath.join(part["images"], image), spec.modality, width, height,
                        objects=objects, meta={"origin": origin} if origin else {})


def read_gaofen(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Every part of options["parts"], in the order given."""
    classes = ClassMap(spec.options["classes"])
    present, absent = [], {}
    for part in spec.options["parts"]:
        missing = [root.uri(part[folder]) for folder in ("labels", "images") if not root.isdir(part[folder])]
        if not missing:
            present.append(part)
        elif part.get("required", True):  # an optional part (FAIR1M v1.0 has no part2) is not missed
            absent[part["labels"]] = ", ".join(missing)
    note_absent(root, quarantine, len(present), absent, "label or image folders")
    for part in present:
        yield from read_part(root, spec, part, classes, quarantine)


def _fair1m_part(split: str, folder: str, key_prefix: str = "", required: bool = True) -> dict[str, Any]:
    return {"split": split, "images": f"{folder}/images", "labels": f"{folder}/labelXml", "key_prefix": key_prefix,
            "required": required}


SOURCES = [
    SourceSpec(
        name="fair1m",
        title="FAIR1M",  # the paper's Table I spells it "FAR1M"
        tasks=("detection_hbb", "detection_obb"),
        modality="optical",
        reader=read_gaofen,
        options={
            # v2.0 layout; v1.0 has only train/part1. Both train parts number their images from 0, hence the
            # part prefix in the keys. test/ has no labels and is not listed.
            "parts": [_fair1m_part("train", "train/part1", "part1/"),
                      _fair1m_part("train", "train/part2", "part2/", required=False),
                      _fair1m_part("val", "validation", required=False)],
            "image_exts": (".tif", ".tiff", ".png", ".jpg"),
            "geometry": "obb",
            "classes": FAIR1M_CLASSES,
        },
        train_splits=("train", "val"),
        paper_samples=40466,
        tile=TileSpec(size=1024, overlap=200, min_visible=0.7),  # scenes of 1,000-10,000 px
    ),
    SourceSpec(
        name="air_sarship_2",
        title="AIR-SARShip-2.0",
        tasks=("detection_hbb", "detection_obb"),
        modality="sar",
        reader=read_gaofen,
        options={
            # No official split: the AIR-SARShip-1.0 paper's train:test = 2:1, drawn per image by hash_split.
            # Images are 1000 x 1000 single-channel 16-bit TIFF: no tiling.
            "parts": [{"split": None, "images": "AIR-SARShip-2.0-data", "labels": "AIR-SARShip-2.0-xml"}],
            "hash_split": {"train": 0.67, "test": 0.33},
            "image_exts": (".tiff", ".tif"),
            "geometry": "hbb",
            "classes": ("ship",),
        },
        train_splits=("train",),
        paper_samples=1433,
    ),
]
