"""DIOR-RSVG visual-grounding reader (datasets.md G1).

Layout under the root (`DIOR_RSVG/`; options may rename each path):

    Annotations/<stem>.xml      annotations: one `<object>` per referring expression
    JPEGImages/<stem>.jpg       images: DIOR images, 800 x 800
    train.txt val.txt test.txt  split_files ("{split}.txt"): one global object index a line

Xml (pixels): `<filename>`, `<size>`, then per object `<name>` (DIOR class, ClassMap of DIOR_CLASSES),
an unused element (`<pose>`), `<bndbox>` (xmin, ymin, xmax, ymax) and `<description>` (the expression).
Children are looked up by tag, falling back to the official loader's positions (name 0, bndbox 2,
description 3; bndbox children 0-3) when a tag is missing.

Split files list *objects*, not images: index k is the k-th `<object>` (0-based) over all xml files sorted by
name, objects in document order. An index listed in several split files belongs to the first of `splits`
(train > val > test, as the known overlap is resolved; counted in quarantine.fixed). A malformed xml file is
quarantined, and its `<object` start tags are still counted so that later indices stay aligned. Descriptions
that are empty or one character long are quarantined. One RawSample per image and split, carrying that
split's referrals (text, hbb, label); tasks grounding and region_caption use the same pairs.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample, Referral
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import ClassMap, note_absent, parse_number, text_lines
from mmrs.readers.voc import (
    DIOR_CLASSES,
    XML_ERRORS,
    Element,
    find_image,
    image_index,
    parse_xml,
    xml_size,
    xml_stems,
)
from mmrs.storage import SourceRoot

BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
_OBJECT_TAG = re.compile(rb"<object[\s>/]")


class BadReferral(ValueError):
    """An object that cannot be a referral; the message is the quarantine reason."""


def _child(element: Element, tag: str, position: int) -> Element | None:
    """`element/tag`, else the child at `position` (the official loader's positional access)."""
    found = element.find(tag)
    if found is None and len(element) > position:
        found = element[position]
    return found


def parse_referral(obj: Element, classes: ClassMap) -> Referral:
    """One `<object>` -> Referral(text, hbb, label). Raises BadReferral."""
    name = _child(obj, "name", 0)
    label = classes.resolve((name.text or "").strip()) if name is not None else None
    if label is None:
        raise BadReferral("unknown class")
    box = _child(obj, "bndbox", 2)
    if box is None:
        raise BadReferral("no geometry")
    try:
        hbb = tuple(parse_number(_text(_child(box, tag, i))) for i, tag in enumerate(BOX_TAGS))
    except ValueError:
        raise BadReferral("bad number") from None
    text = " ".join(_text(_child(obj, "description", 3)).split())
    if len(text) <= 1:
        raise BadReferral("empty description")
    return Referral(text, hbb, label)


def _text(element: Element | None) -> str:
    return (element.text or "") if element is not None else ""


def split_of_indices(root: SourceRoot, files: Sequence[tuple[str, str]], quarantine: Quarantine) -> dict[int, str]:
    """Global object index -> split from (split, file) pairs in priority order; malformed lines quarantined,
    indices listed in more than one file counted in quarantine.fixed["index in several split files"]."""
    owner: dict[int, str] = {}
    for split, rel in files:
        if not root.exists(rel):
            continue
        for line in text_lines(root, rel, quarantine):
            token = line.strip()
            if not token:
                continue
            if not token.isdigit():  # 0 units: the object it meant is not known
                quarantine.skip(rel, "malformed split line", line, units=0)
                continue
            index = int(token)
            if index in owner:
                if owner[index] != split:
                    quarantine.fix("index in several split files")
                continue
            owner[index] = split
    return owner


def _objects(root: SourceRoot, rel: str) -> tuple[Element | None, list[Element], int, str | None]:
    """(document, its objects, how many, None) of one xml; a malformed file gives (None, [], its `<object`
    tags, what is wrong)."""
    data = root.read_bytes(rel)
    try:
        doc = parse_xml(data)
    except XML_ERRORS as error:
        return None, [], len(_OBJECT_TAG.findall(data)), str(error)
    objects = doc.findall("object") if doc is not None else []
    return doc, objects, len(objects), None


def read_dior_rsvg(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Referrals of every image, per split, in xml-name order (see the module docstring)."""
    options: Mapping[str, Any] = spec.options
    annotations = root.require(options.get("annotations", "Annotations"), "annotation folder")
    image_folder = options.get("images", "JPEGImages")
    splits = tuple(options.get("splits", ("train", "val", "test")))
    split_files = options.get("split_files", "{split}.txt")
    absent = {s: root.uri(split_files.format(split=s)) for s in splits if not root.exists(split_files.format(split=s))}
    note_absent(root, quarantine, len(splits) - len(absent), absent, "split files")
    owner = split_of_indices(root, [(s, split_files.format(split=s)) for s in splits], quarantine)
    images = image_index(root, image_folder)
    classes = ClassMap(options.get("classes", DIOR_CLASSES), options.get("aliases"))
    counter = 0
    for stem, name in xml_stems(root, annotations).items():
        rel = posixpath.join(annotations, name)
        doc, objects, count, problem = _objects(root, rel)
        if problem is not None:  # its listed objects go with it; the indices after it stay aligned
            listed = sum(1 for index in range(counter, counter + count) if index in owner)
            quarantine.skip(rel, "malformed xml", problem, units=listed)
            counter += count
            continue
        per_split: dict[str, list[Referral]] = {}
        for obj in objects:
            split = owner.get(counter)
            counter += 1
            if split is None:
                continue
            try:
                per_split.setdefault(split, []).append(parse_referral(obj, classes))
            except BadReferral as error:
                quarantine.skip(rel, str(error), {"index": counter - 1, "name": obj.findtext("name")})
        if not any(per_split.values()):
            continue
        image = find_image(images, stem, [doc])
        if image is None:
            quarantine.skip(rel, "image missing", stem, units=sum(len(refs) for refs in per_split.values()))
            continue
        width, height = xml_size(doc)
        for split in splits:
            if per_split.get(split):
                yield RawSample(spec.name, split, stem, posixpath.join(image_folder, image), spec.modality,
                                width, height, referrals=per_split[split])
    for index in sorted(i for i in owner if i >= counter):
        quarantine.skip(split_files.format(split=owner[index]), "index out of range", index)


SOURCES = [
    SourceSpec(
        name="dior_rsvg", title="DIOR-RSVG", tasks=("grounding", "region_caption"), modality="optical",
        reader=read_dior_rsvg,
        options={"annotations": "Annotations", "images": "JPEGImages", "split_files": "{split}.txt",
                 "splits": ("train", "val", "test"), "classes": DIOR_CLASSES},
        paper_samples=30820, folder="DIOR_RSVG",
    ),
]
