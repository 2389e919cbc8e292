"""Generic VOC-xml detection reader (datasets.md 1.2, D2 DIOR / DIOR-R, D5 HRRSD, D6 RSOD, D9 MAR20,
E2 SSDD, F1 HIT-UAV normal_xml / rotate_xml, F2 DroneVehicle, F3-F7 the obscure infrared sets).

One reader serves every VOC dataset; `SourceSpec.options` describe the layout (paths relative to the root,
posix separators):

    parts: sub-datasets with their own copy of the layout (RSOD's class folders); a non-empty part prefixes
        the keys ("aircraft/aircraft_1"). Default ("",).
    base: folder of the layout inside each part, or candidates of which the first existing one is used
        (SSDD's release folder names are UNCERTAIN). Default "".
    annotations: the xml folder (or candidates) under base; "{split}" in it means the split is the folder
        (SSDD `Annotations_train`). Default "Annotations".
    oriented_annotations: a second xml folder joined by file stem (DIOR-R, MAR20 OBB, HIT-UAV rotate_xml): one
        RawSample carries both files' objects, paired in document order when both list the same classes, else by
        class and IoU of the boxes (pairs that stay unmatched keep one geometry; counted in quarantine.fixed).
    images: the image folder under base, a {split: folder} mapping (DIOR), or a "{split}" pattern.
    splits: the official splits, in order. split_files: "{split}" pattern of the VOC id lists under base
        (`ImageSets/Main/{split}.txt`; first token of each line), or None. split_fractions: `hash_split`
        fractions for a dataset without split files (used too when split_files is set but none exists).
    tags: {meta key: {value: xml folder under base}}: a stem found in that folder gets meta[key] = value
        (SSDD's test_inshore / test_offshore copies are tags, not extra samples).
    classes: the canonical class names (None: names are kept as written); aliases: variant -> canonical.
    display_names: canonical name -> wording in instructions, where mmrs.readers.common.display_name would
        not space it (DIOR 'tenniscourt' -> 'tennis court'); labels in targets stay canonical.

Xml (pixels of the full image; numbers may be `133`, ` 133.0 `, `1.33e+02`):

    <annotation><filename>00001.jpg</filename>            (may lack the extension: roLabelImg)
      <owner><name>decoy</name></owner>                    (HRRSD: never a class; names are object/name)
      <size><width>800</width><height>800</height></size>  (optional; missing or non-positive -> None)
      <object><name>airplane</name><difficult>0</difficult>
        <bndbox><xmin/><ymin/><xmax/><ymax/></bndbox>                        HBB xyxy
        <robndbox><x_left_top/><y_left_top/> ... <y_left_bottom/></robndbox>   DIOR-R corners LT, RT, RB, LB
        <robndbox><cx/><cy/><w/><h/><angle/></robndbox>    roLabelImg: w along angle, radians clockwise on screen
        <rotated_bndbox><x1/><y1/> ... <y4/></rotated_bndbox>  SSDD corners (its cx/cy/w/h/theta form has an
                                                           UNCERTAIN theta convention and is not read)
        <polygon><x1/><y1/> ... <y4/></polygon>             DroneVehicle corners
        <segm><point-1>x,y</point-1>...</segm>              SSDD PSeg: its HBB is used only without bndbox
      </object></annotation>

An object's geometry is what the element has (bndbox -> hbb; robndbox, rotated_bndbox, polygon -> obb);
conversion derives the other. An empty xml file is an image without objects; a file whose root element is
not `<annotation>` is malformed (quarantined with its objects), as is one that does not parse. A number that
is not finite makes its object "bad number". A split whose split file, image folder or annotation folders
are absent is passed over and listed in the manifest (a DIOR-R copy without the HBB folder reads the OBB
one). The image is found by listing
the image folder once: the xml stem or its `<filename>`, with whatever image extension is there.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmrs.geometry import hbb_iou, polygon_hbb, rotated_rect_corners
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import ClassMap, finite, hash_split, is_image, note_absent, parse_number, text_lines
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.storage import parse_xml as storage_parse_xml

Element = Any  # xml.etree element (parsed through defusedxml)

CORNER_TAGS = tuple(f"{axis}_{corner}" for corner in ("left_top", "right_top", "right_bottom", "left_bottom")
                    for axis in "xy")
XY4_TAGS = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")
PAIR_MIN_IOU = 0.5
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_ANNOTATION_EXT = ".xml"
# What parsing bad bytes raises: expat errors, defusedxml refusals and undecodable text are all ValueError or
# ParseError.
XML_ERRORS = (ET.ParseError, ValueError)


class BadObject(ValueError):
    """An `<object>` that cannot be used; the message is the quarantine reason."""


# --- xml and folder helpers (shared with dior_rsvg) -------------------------------------------------

ROOT_ELEMENT = "annotation"
_OBJECT_TAG = re.compile(rb"<object[\s>/]")


def parse_xml(data: bytes, root_element: str | None = ROOT_ELEMENT) -> Element | None:
    """Parsed root of VOC xml bytes, None for an empty file; raises one of XML_ERRORS on malformed input
    (entity or DTD tricks included) and on a document whose root element is not `root_element` (any case):
    an `<html>` error page or another format read as VOC would otherwise be an image without objects. See
    mmrs.storage.parse_xml for encodings and safety."""
    if not data.strip():
        return None
    doc = storage_parse_xml(data)
    if root_element is not None and doc.tag.rpartition("}")[2].lower() != root_element:
        raise ValueError(f"root element is <{doc.tag}>, not <{root_element}>")
    return doc


def object_tags(data: bytes) -> int:
    """`<object` start tags in xml bytes: the objects of a file that does not parse (for its units)."""
    return len(_OBJECT_TAG.findall(data))


def xml_size(doc: Element) -> tuple[int | None, int | None]:
    """(width, height) from `<size>` when both are positive numbers, else (None, None)."""
    try:
        width = int(parse_number(doc.findtext("size/width")))
        height = int(parse_number(doc.findtext("size/height")))
    except ValueError:
        return None, None
    return (width, height) if width > 0 and height > 0 else (None, None)


def image_index(root: SourceRoot, folder: str) -> dict[str, str]:
    """Stem and full name -> image file name, for the images of `folder` (listed once; required)."""
    index: dict[str, str] = {}
    for name in root.listdir(root.require(folder, "image folder")):
        if is_image(name):
            index.setdefault(posixpath.splitext(name)[0], name)
            index[name] = name
    return index


def find_image(index: Mapping[str, str], stem: str, docs: Sequence[Element]) -> str | None:
    """The image of an annotation: its stem, else a document's `<filename>` (with or without extension)."""
    if stem in index:
        return index[stem]
    for doc in docs:
        written = posixpath.basename((doc.findtext("filename") or "").strip().replace("\\", "/"))
        found = index.get(written) or index.get(posixpath.splitext(written)[0])
        if written and found:
            return found
    return None


def xml_stems(root: SourceRoot, folder: str) -> dict[str, str]:
    """Stem -> file name of the xml files directly in `folder` (empty when the folder is absent)."""
    if not root.isdir(folder):
        return {}
    return {name[:-len(_ANNOTATION_EXT)]: name for name in root.listdir(folder)
            if name.lower().endswith(_ANNOTATION_EXT) and not name.startswith(".")}


# --- objects ----------------------------------------------------------------------------------------

def _numbers(element: Element, tags: Sequence[str]) -> tuple[float, ...]:
    try:
        return tuple(parse_number(element.findtext(tag)) for tag in tags)
    except ValueError:
        raise BadObject("bad number") from None


def _finite(values: Sequence[float]) -> tuple[float, ...]:
    """Computed corners (a huge w or angle may overflow): BadObject unless all are finite."""
    try:
        return finite(values)
    except ValueError:
        raise BadObject("bad number") from None


def _obb(obj: Element) -> tuple[float, ...] | None:
    """Four corners (x1, y1, ..., x4, y4) from robndbox (both styles), rotated_bndbox or polygon."""
    robndbox = obj.find("robndbox")
    if robndbox is not None:
        if robndbox.find("cx") is None:
            return _numbers(robndbox, CORNER_TAGS)
        cx, cy, w, h, angle = _numbers(robndbox, ("cx", "cy", "w", "h", "angle"))
        return _finite([c for point in rotated_rect_corners(cx, cy, w, h, angle) for c in point])
    for tag in ("rotated_bndbox", "polygon"):
        element = obj.find(tag)
        if element is not None and element.find("x1") is not None:
            return _numbers(element, XY4_TAGS)
    return None


def _segm_hbb(obj: Element) -> tuple[float, float, float, float] | None:
    """HBB of an SSDD `segm` polygon ("x,y" points), None without one."""
    points = [point.text or "" for point in obj.findall("segm/*")]
    if not points:
        return None
    try:
        xy = [tuple(parse_number(v) for v in text.split(",")) for text in points]
        return polygon_hbb([(x, y) for x, y in xy])
    except ValueError:
        raise BadObject("bad number") from None


def _difficult(obj: Element) -> bool:
    text = (obj.findtext("difficult") or "").strip().lower()
    return text in ("true", "yes") or (text.replace(".", "", 1).isdigit() and float(text) >= 1)


def parse_object(obj: Element, classes: ClassMap | None) -> Box:
    """One `<object>` -> Box (class from its direct `name` child). Raises BadObject."""
    name = (obj.findtext("name") or "").strip()
    if not name:
        raise BadObject("missing class")
    label = classes.resolve(name) if classes is not None else name
    if label is None:
        raise BadObject("unknown class")
    bndbox = obj.find("bndbox")
    hbb = _numbers(bndbox, ("xmin", "ymin", "xmax", "ymax")) if bndbox is not None else None
    obb = _obb(obj)
    if hbb is None and obb is None:
        hbb = _segm_hbb(obj)
        if hbb is None:
            raise BadObject("no geometry")
    return Box(label, hbb, obb, _difficult(obj))


def parse_objects(doc: Element | None, path: str, classes: ClassMap | None, quarantine: Quarantine) -> list[Box]:
    """Every usable `<object>` of a document, in document order; the others are quarantined."""
    boxes = []
    for i, obj in enumerate(doc.findall("object") if doc is not None else ()):
        try:
            boxes.append(parse_object(obj, classes))
        except BadObject as error:
            quarantine.skip(path, str(error), {"object": i, "name": obj.findtext("name")})
    return boxes


def pair_boxes(horizontal: list[Box], oriented: list[Box], quarantine: Quarantine) -> list[Box]:
    """Merge an HBB file's objects with the OBB file's objects of the same image.

    Same class sequence: pair by position. Otherwise each OBB object takes the unpaired HBB object of its
    class whose box overlaps its corners' box most (IoU >= PAIR_MIN_IOU); the rest keep one geometry and are
    counted in quarantine.fixed["hbb/obb object unpaired"].
    """
    if [b.label for b in horizontal] == [b.label for b in oriented]:
        return [_merge(h, o) for h, o in zip(horizontal, oriented, strict=True)]
    merged: list[Box] = list(horizontal)
    free = set(range(len(horizontal)))
    extra = []
    for box in oriented:
        box_hbb = polygon_hbb(list(zip(box.obb[0::2], box.obb[1::2], strict=True))) if box.obb else box.hbb
        best = max((i for i in free if horizontal[i].label == box.label and horizontal[i].hbb), default=None,
                   key=lambda i: hbb_iou(horizontal[i].hbb, box_hbb))
        if best is not None and hbb_iou(horizontal[best].hbb, box_hbb) >= PAIR_MIN_IOU:
            merged[best] = _merge(horizontal[best], box)
            free.discard(best)
        else:
            extra.append(box)
    if unpaired := len(free) + len(extra):
        quarantine.fix("hbb/obb object unpaired", unpaired)
    return merged + extra


def _merge(horizontal: Box, oriented: Box) -> Box:
    return Box(horizontal.label, horizontal.hbb or oriented.hbb, horizontal.obb or oriented.obb,
               horizontal.difficult or oriented.difficult)


# --- layout -----------------------------------------------------------------------------------------

def _candidates(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def first_existing(root: SourceRoot, folders: Sequence[str], what: str) -> str:
    """The first of `folders` that exists; MissingFileError naming all of them when none does."""
    for folder in folders:
        if root.isdir(folder):
            return folder
    raise MissingFileError(f"required {what} missing: " + " or ".join(root.uri(f) for f in folders))


def _join(*parts: str) -> str:
    """posixpath.join of the non-empty parts ("" when all are empty: the root)."""
    kept = [p for p in parts if p]
    return posixpath.join(*kept) if kept else ""


@dataclass(frozen=True)
class Job:
    """One batch of annotations to read: a split (None: hash split per key) and its folders."""

    split: str | None
    part: str
    base: str
    annotations: str | None  # the HBB (or only) xml folder; None: the OBB folder alone (a DIOR-R copy)
    oriented: str | None
    images: str
    stems: tuple[str, ...] | None  # from a split file; None: every xml of the folders


def _split_file_stems(root: SourceRoot, rel: str, quarantine: Quarantine) -> tuple[str, ...]:
    """Ids of a VOC split file: first token of each non-blank line, an extension dropped, duplicates once."""
    seen: dict[str, None] = {}
    for line in text_lines(root, root.require(rel, "split file"), quarantine):
        tokens = line.split()
        if tokens:
            stem = tokens[0]
            if stem.lower().endswith(_ANNOTATION_EXT) or is_image(stem):
                stem = posixpath.splitext(stem)[0]
            if stem in seen:
                quarantine.fix("duplicate id in split file")
            seen[stem] = None
    return tuple(seen)


def _images_folder(images: str | Mapping[str, str], split: str | None) -> str:
    if isinstance(images, Mapping):
        return images[split]
    return images.format(split=split) if split else images


def plan_jobs(root: SourceRoot, options: Mapping[str, Any], quarantine: Quarantine) -> list[Job]:
    """The (split, folders, ids) batches a VOC dataset is read in (see the module docstring). A split whose
    split file, image folder or annotation folders (both the HBB and the OBB one, where the layout has two)
    are absent is passed over and recorded (quarantine.split_absent): a DIOR-R copy without the HBB folder
    reads the OBB one alone. MissingFileError when no split is usable."""
    splits = tuple(options.get("splits", ("train", "val", "test")))
    split_files = options.get("split_files", "ImageSets/Main/{split}.txt")
    fractions = options.get("split_fractions")
    images = options.get("images", "JPEGImages")
    jobs: list[Job] = []
    absent: dict[str, str] = {}
    for part in options.get("parts", ("",)):
        base = first_existing(root, [_join(part, b) for b in _candidates(options.get("base", ""))],
                              "dataset folder")
        annotations = _candidates(options.get("annotations", "Annotations"))
        oriented = options.get("oriented_annotations")
        files = [_join(base, split_files.format(split=s)) for s in splits] if split_files else []
        if files and (fractions is None or any(root.exists(f) for f in files)):
            per_split = []
            for split, file in zip(splits, files, strict=True):
                if root.exists(file):
                    per_split.append((split, _split_file_stems(root, file, quarantine)))
                else:
                    absent[_join(part, split)] = root.uri(file)
        elif any("{split}" in a for a in annotations):
            per_split = [(s, None) for s in splits]
        elif fractions is not None:
            per_split = [(None, None)]
        else:
            raise ValueError("VOC options need split_files, a {split} annotation folder or split_fractions")
        for split, stems in per_split:
            candidates = [_join(base, a.format(split=split)) for a in annotations]
            folder = next((c for c in candidates if root.isdir(c)), None)
            obb = _join(base, oriented.format(split=split)) if oriented else None
            obb = obb if obb is not None and root.isdir(obb) else None
            image_folder = _join(base, _images_folder(images, split))
            missing = [] if folder is not None or obb is not None else [
                " or ".join(root.uri(c) for c in candidates + ([_join(base, oriented.format(split=split))]
                                                               if oriented else []))]
            if not root.isdir(image_folder):
                missing.append(root.uri(image_folder))
            if missing:
                absent[_join(part, split or "all")] = ", ".join(missing)
                continue
            jobs.append(Job(split, part, base, folder, obb, image_folder, stems))
    note_absent(root, quarantine, len(jobs), absent, "annotation or image folders")
    return jobs


# --- reading ----------------------------------------------------------------------------------------

def _read_doc(root: SourceRoot, rel: str, quarantine: Quarantine) -> tuple[bool, Element | None]:
    """(ok, parsed root or None for an empty file); a malformed file is quarantined with its objects (ok
    False)."""
    data = root.read_bytes(rel)
    try:
        return True, parse_xml(data)
    except XML_ERRORS as error:
        quarantine.skip(rel, "malformed xml", str(error), units=object_tags(data))
        return False, None


def _read_job(root: SourceRoot, source: str, modality: str, options: Mapping[str, Any], job: Job,
              classes: ClassMap | None, quarantine: Quarantine) -> Iterator[RawSample]:
    """One RawSample per id of the job (split-file order, else sorted stems), each folder listed once."""
    horizontal = xml_stems(root, job.annotations) if job.annotations else {}
    oriented = xml_stems(root, job.oriented) if job.oriented else {}
    stems = job.stems if job.stems is not None else tuple(sorted(set(horizontal) | set(oriented)))
    images = image_index(root, job.images)
    tags = {key: {value: set(xml_stems(root, _join(job.base, folder))) for value, folder in values.items()}
            for key, values in options.get("tags", {}).items()}
    for stem in stems:
        key = _join(job.part, stem)
        files = [_join(folder, names[stem]) if folder is not None and stem in names else None
                 for folder, names in ((job.annotations, horizontal), (job.oriented, oriented))]
        if files == [None, None]:  # 0 units: an id in a split file, no annotations
            quarantine.skip(_join(job.annotations or job.oriented, stem + _ANNOTATION_EXT), "annotation missing",
                            key, units=0)
            continue
        read = _read_stem(root, job, stem, files, images, classes, quarantine)
        if read is None:
            continue
        image, width, height, objects = read
        split = job.split or hash_split(key, options["split_fractions"])
        meta = {k: v for k, values in tags.items() for v, found in values.items() if stem in found}
        yield RawSample(source, split, key, image, modality, width, height, objects=objects, meta=meta)


def _read_stem(root: SourceRoot, job: Job, stem: str, files: list[str | None], images: Mapping[str, str],
               classes: ClassMap | None, quarantine: Quarantine
               ) -> tuple[str, int | None, int | None, list[Box]] | None:
    """(image path, width, height, objects) of one stem from its HBB and/or OBB file; None when skipped."""
    parsed: list[tuple[str, Element | None] | None] = []
    for rel in files:
        if rel is None:
            parsed.append(None)
            continue
        ok, doc = _read_doc(root, rel, quarantine)
        if not ok:
            return None
        parsed.append((rel, doc))
    docs = [entry[1] for entry in parsed if entry is not None and entry[1] is not None]
    image = find_image(images, stem, docs)
    if image is None:
        units = max((len(doc.findall("object")) for doc in docs), default=0)  # HBB and OBB: the same objects
        quarantine.skip(next(rel for rel in files if rel), "image missing", stem, units=units)
        return None
    width, height = next((size for doc in docs if (size := xml_size(doc))[0]), (None, None))
    horizontal, oriented = (None if entry is None else parse_objects(entry[1], entry[0], classes, quarantine)
                            for entry in parsed)
    if horizontal is not None and oriented is not None:
        objects = pair_boxes(horizontal, oriented, quarantine)
    else:
        if job.oriented:
            quarantine.fix("hbb or obb file missing")
        objects = horizontal if horizontal is not None else oriented
    return _join(job.images, image), width, height, objects


def voc_samples(root: SourceRoot, source: str, modality: str, options: Mapping[str, Any],
                quarantine: Quarantine) -> Iterator[RawSample]:
    """RawSamples of a VOC dataset laid out as `options` say (module docstring); for other modules that read
    a VOC folder under their own source name (e.g. HIT-UAV's normal_xml / rotate_xml)."""
    names = options.get("classes")
    classes = ClassMap(names, options.get("aliases")) if names is not None else None
    for job in plan_jobs(root, options, quarantine):
        yield from _read_job(root, source, modality, options, job, classes, quarantine)


def read_voc(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """The VOC reader: `voc_samples` configured by `spec.options`."""
    return voc_samples(root, spec.name, spec.modality, spec.options, quarantine)


# --- datasets ---------------------------------------------------------------------------------------

DIOR_CLASSES = (
    "airplane", "airport", "baseballfield", "basketballcourt", "bridge", "chimney", "dam", "Expressway-Service-area",
    "Expressway-toll-station", "golffield", "groundtrackfield", "harbor", "overpass", "ship", "stadium",
    "storagetank", "tenniscourt", "trainstation", "vehicle", "windmill",
)
# wording in instructions ("Detect all tennis courts ..."): DIOR writes most classes as one word
DIOR_NAMES = {
    "baseballfield": "baseball field", "basketballcourt": "basketball court", "golffield": "golf field",
    "groundtrackfield": "ground track field", "storagetank": "storage tank", "tenniscourt": "tennis court",
    "trainstation": "train station",
}
HRRSD_CLASSES = (
    "airplane", "baseball diamond", "basketball court", "bridge", "crossroad", "ground track field", "harbor",
    "parking lot", "ship", "storage tank", "T junction", "tennis court", "vehicle",
)
RSOD_CLASSES = ("aircraft", "oiltank", "overpass", "playground")
RSOD_NAMES = {"oiltank": "oil tank"}
MAR20_CLASSES = tuple(f"A{i}" for i in range(1, 21))
DIOR_LAYOUT = {
    "annotations": "Annotations/Horizontal Bounding Boxes",
    "oriented_annotations": "Annotations/Oriented Bounding Boxes",
}

SOURCES = [
    SourceSpec(
        name="dior", title="DIOR", tasks=("detection_hbb", "detection_obb"), modality="optical", reader=read_voc,
        options={
            **DIOR_LAYOUT,
            "images": {"train": "JPEGImages-trainval", "val": "JPEGImages-trainval", "test": "JPEGImages-test"},
            "splits": ("train", "val", "test"),
            # case-/space-insensitive matching covers the lower-cased mmrotate / BboxToolkit spellings
            "classes": DIOR_CLASSES,
            "display_names": DIOR_NAMES,
        },
        paper_samples=58200,
    ),
    SourceSpec(
        name="hrrsd", title="HRRSD", tasks=("detection_hbb",), modality="optical", reader=read_voc,
        options={
            # the GitHub repo holds OPT2017/; a root pointing at OPT2017 itself works too
            "base": ("OPT2017", ""),
            "splits": ("train", "val", "test"),
            "classes": HRRSD_CLASSES,
        },
        paper_samples=23044, folder="TGRS-HRRSD-Dataset",
    ),
    SourceSpec(
        name="rsod", title="RSOD", tasks=("detection_hbb",), modality="optical", reader=read_voc,
        options={
            # four single-class archives; sub-folder names UNCERTAIN: Annotation/xml (most copies) or Annotations
            "parts": RSOD_CLASSES,
            "annotations": ("Annotation/xml", "Annotations", "Annotation"),
            "split_files": None,
            # no official split: 3/4 train (about the paper's 747 of 976 images), 1/4 test, by key hash
            "split_fractions": {"train": 0.75, "test": 0.25},
            "classes": RSOD_CLASSES,
            "display_names": RSOD_NAMES,
        },
        train_splits=("train",), paper_samples=747,
    ),
    SourceSpec(
        name="mar20", title="MAR20", tasks=("detection_hbb", "detection_obb"), modality="optical", reader=read_voc,
        options={**DIOR_LAYOUT, "splits": ("train", "test"), "classes": MAR20_CLASSES},  # raw case UNCERTAIN
        train_splits=(), evaluation_only=True,
    ),
    SourceSpec(
        name="ssdd", title="SSDD", tasks=("detection_hbb", "detection_obb"), modality="sar", reader=read_voc,
        options={
            # official release; which of its annotation folders a copy has is UNCERTAIN: the combined one first
            "base": ("BBox_RBox_PSeg_SSDD/voc_style", "RBox_SSDD/voc_style", "BBox_SSDD/voc_style",
                     "PSeg_SSDD/voc_style"),
            "annotations": "Annotations_{split}",
            "images": "JPEGImages_{split}",
            "split_files": None,
            "splits": ("train", "test"),
            # the inshore/offshore test folders are copies of test images: a tag, not more samples
            "tags": {"scene": {"inshore": "Annotations_test_inshore", "offshore": "Annotations_test_offshore"}},
            "classes": ("ship",),
        },
        train_splits=("train",), paper_samples=1856, folder="Official-SSDD-OPEN",
    ),
]
