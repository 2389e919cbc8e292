"""Image-captioning datasets (datasets.md A0-A5): Karpathy JSON (RSICD, UCM-Captions, Sydney-Captions,
RSITMD) and NWPU-Captions' class-keyed JSON.

Captions (rules of A0): `raw` with surrounding and repeated whitespace removed and the frequent space before
a period collapsed ("There is a farmland ." -> "There is a farmland."); an empty or missing `raw` falls back
to `" ".join(tokens)`; a caption still empty is quarantined ("empty caption"). Duplicate captions are kept:
the releases pad images to five sentences by repeating one, and dropping the copies is a cleaning step of
conversion (the paper's), not of reading.

`RawSample.label` is the image's scene class where the release tells it: the NWPU-Captions class key, the
`<scene>_<n>` file-name prefix of RSICD and RSITMD, or the file-number blocks of UCM-Captions and
Sydney-Captions (A2/A3, derived from the RSIVQA theme answers). None where it does not (RSICD's numeric
file names such as `00433.jpg`). Image sizes are not in the annotations: width/height stay None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import ClassMap, JsonDocument, Spool, first_existing, read_json, stem
from mmrs.storage import SourceRoot, UnsafePathError

_SPACED_PERIOD = re.compile(r" \.(?= |$)")
_SCENE_NAME = re.compile(r"(.+?)_\d+")


def clean_caption(raw: str) -> str:
    """Whitespace runs -> one space, ends stripped, ' .' -> '.'."""
    return _SPACED_PERIOD.sub(".", " ".join(raw.split()))


def caption_text(raw: Any, tokens: Any = None) -> str:
    """The cleaned `raw`, or the joined `tokens` when `raw` is missing or blank ("" when both are)."""
    text = clean_caption(raw) if isinstance(raw, str) else ""
    if not text and isinstance(tokens, list):
        text = " ".join(t.strip() for t in tokens if isinstance(t, str) and t.strip())
    return text


@dataclass(frozen=True)
class SceneFromPrefix:
    """Scene class = file-name stem without its `_<n>` suffix (`denseresidential_12` -> `denseresidential`).

    names: the dataset's scene vocabulary (a prefix outside it gives None); empty: any prefix is accepted
    (RSITMD, whose vocabulary is not published)."""

    names: tuple[str, ...] = ()

    @cached_property
    def _classes(self) -> ClassMap:
        return ClassMap(self.names)

    def __call__(self, image_stem: str) -> str | None:
        match = _SCENE_NAME.fullmatch(image_stem)
        if match is None:
            return None
        return self._classes.resolve(match.group(1)) if self.names else match.group(1)


@dataclass(frozen=True)
class SceneFromNumber:
    """Scene class from the numeric file stem: blocks = ((first, last, scene), ...), inclusive 1-based."""

    blocks: tuple[tuple[int, int, str], ...]

    def __call__(self, image_stem: str) -> str | None:
        if not image_stem.isdigit():
            return None
        number = int(image_stem)
        return next((scene for first, last, scene in self.blocks if first <= number <= last), None)


def find_annotation(root: SourceRoot, patterns: Sequence[str]) -> str:
    """The annotation file: the first name matching the first pattern that matches anything in the root
    folder (patterns may be globs such as `dataset_*.json`); MissingFileError naming patterns[0] if none."""
    names = root.listdir("") if root.isdir("") else []
    for pattern in patterns:
        matches = [n for n in names if fnmatchcase(n, pattern)]
        if matches:
            return matches[0]
    return root.require(patterns[0], "annotation file")


class _Captions:
    """Collects one image's captions, quarantining empty ones."""

    def __init__(self, path: str, quarantine: Quarantine | Spool):
        self.path, self.quarantine = path, quarantine

    def collect(self, pairs: Sequence[tuple[Any, Any]], filename: str) -> list[str]:
        """(raw, tokens) pairs -> cleaned captions in order; empty ones quarantined."""
        out = []
        for raw, tokens in pairs:
            text = caption_text(raw, tokens)
            if text:
                out.append(text)
            else:
                self.quarantine.skip(self.path, "empty caption", {"filename": filename, "raw": raw})
        return out


def _image_path(root: SourceRoot, name: str, folder: str, path: str, texts: list[str],
                quarantine: Quarantine) -> str | None:
    """`folder/name` through the release's guard (SourceRoot.member); None after quarantining the image with
    its captions when the name would leave the release."""
    try:
        return root.member(name, folder)
    except UnsafePathError as error:
        quarantine.skip(path, "unsafe path", {"filename": name, "problem": str(error)}, units=len(texts))
        return None


def _caption_units(record: Any) -> int:
    """Captions a record holds: Karpathy `sentences` entries, NWPU-Captions `raw*` slots."""
    if not isinstance(record, dict):
        return 0
    sentences = record.get("sentences")
    return len(sentences) if isinstance(sentences, list) else len(_nwpu_pairs(record))


def _check_image(record: Any, path: str, splits: Sequence[str], seen: set[tuple[str, str]],
                 quarantine: Quarantine | Spool) -> tuple[str, str] | None:
    """(filename, split) of a record when it is usable, else None after quarantining it (with its captions)."""
    if not isinstance(record, dict) or not isinstance(record.get("filename"), str) or not record["filename"]:
        quarantine.skip(path, "malformed record", record, units=_caption_units(record))
        return None
    filename, split = record["filename"], record.get("split")
    if split not in splits:
        quarantine.skip(path, "unknown split", record, units=_caption_units(record))
        return None
    if (stem(filename), split) in seen:
        quarantine.skip(path, "duplicate image", record, units=_caption_units(record))
        return None
    seen.add((stem(filename), split))
    return filename, split


def read_karpathy(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """Karpathy caption JSON (A0): `{"images": [{filename, imgid, split, sentids, sentences: [{raw, tokens,
    imgid, sentid}]}], "dataset": ...}`; unknown keys (RSITMD keywords, cocoid, filepath) are ignored.

    options: annotations (file-name patterns in order of preference), image_dirs (candidate image folders,
    the first existing one is used), splits (the release's split names; others are quarantined), scene (a
    callable file stem -> scene class or None, e.g. SceneFromPrefix / SceneFromNumber).
    One RawSample per image, key = file stem, in document order.
    """
    options = spec.options
    path = find_annotation(root, options["annotations"])
    loaded = read_json(root, path, quarantine, lambda document, spool: _karpathy_images(document, path, options, spool),
                       lists=("images",))
    if loaded is None:
        return
    image_dir = first_existing(root, options["image_dirs"])
    for split, filename, texts in loaded[1].replay(quarantine):
        image = _image_path(root, filename, image_dir, path, texts, quarantine)
        if image is not None:
            yield RawSample(source=spec.name, split=split, key=stem(filename), image=image,
                            modality=spec.modality, label=options["scene"](stem(filename)), captions=texts)


def _karpathy_images(document: JsonDocument, path: str, options: Mapping[str, Any], spool: Spool) -> None:
    """(split, filename, captions) of each usable image record into the spool, in document order."""
    captions, seen = _Captions(path, spool), set()
    for record in document.items("images"):
        checked = _check_image(record, path, options["splits"], seen, spool)
        if checked is None:
            continue
        filename, split = checked
        sentences = record.get("sentences")
        pairs = [(s.get("raw"), s.get("tokens")) if isinstance(s, dict) else (None, None)
                 for s in (sentences if isinstance(sentences, list) else [])]
        texts = captions.collect(pairs, filename)
        if not texts:
            spool.skip(path, "no captions", {"filename": filename})
            continue
        spool.put((split, filename, texts))


_NWPU_RAW = re.compile(r"raw(?:_(\d+))?")


def _nwpu_pairs(record: Mapping[str, Any]) -> list[tuple[Any, None]]:
    """The record's `raw`, `raw_1`, ... values in slot order (A5: five flat keys, no tokens)."""
    slots = []
    for key, value in record.items():
        match = _NWPU_RAW.fullmatch(key)
        if match:
            slots.append((int(match.group(1) or 0), value))
    return [(value, None) for _, value in sorted(slots, key=lambda s: s[0])]


def read_nwpu_captions(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """NWPU-Captions (A5): `{"<class>": [{filename, imgid, split, raw, sentids, raw_1, sentids_1, ...,
    raw_4, sentids_4}], ...}`; image = `<image_dir>/<class>/<filename>`, label = the class key.

    options: annotations (file-name patterns), image_dirs (candidate image folders), splits.
    One RawSample per image, key = file stem, classes and records in document order.
    """
    options = spec.options
    path = find_annotation(root, options["annotations"])
    loaded = read_json(root, path, quarantine, lambda document, spool: _nwpu_images(document, path, options, spool))
    if loaded is None:
        return
    image_dir = first_existing(root, options["image_dirs"])
    for split, filename, class_name, texts in loaded[1].replay(quarantine):
        image = _image_path(root, f"{class_name}/{filename}", image_dir, path, texts, quarantine)
        if image is not None:
            yield RawSample(source=spec.name, split=split, key=stem(filename), image=image,
                            modality=spec.modality, label=class_name, captions=texts)


def _nwpu_images(document: JsonDocument, path: str, options: Mapping[str, Any], spool: Spool) -> None:
    """(split, filename, class, captions) of each usable record into the spool, classes and records in order
    (one class's list in memory at a time)."""
    captions, seen = _Captions(path, spool), set()
    for class_name, records in document.pairs():
        if not isinstance(records, list):
            spool.skip(path, "malformed record", {class_name: records}, units=_caption_units(records))
            continue
        for record in records:
            checked = _check_image(record, path, options["splits"], seen, spool)
            if checked is None:
                continue
            filename, split = checked
            texts = captions.collect(_nwpu_pairs(record), filename)
            if not texts:
                spool.skip(path, "no captions", {"filename": filename})
                continue
            spool.put((split, filename, class_name, texts))


# A1: the 30 scene names of RSICD file names (derived from the RSIVQA listing of all RSICD files).
RSICD_SCENES = (
    "airport", "bareland", "baseballfield", "beach", "bridge", "center", "church", "commercial", "denseresidential",
    "desert", "farmland", "forest", "industrial", "meadow", "mediumresidential", "mountain", "park", "parking",
    "playground", "pond", "port", "railwaystation", "resort", "river", "school", "sparseresidential", "square",
    "stadium", "storagetanks", "viaduct",
)
# A2: UC Merced classes in file-number order, 100 images each (1-100 agricultural, ...).
UCM_SCENES = (
    "agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral", "denseresidential", "forest",
    "freeway", "golfcourse", "harbor", "intersection", "mediumresidential", "mobilehomepark", "overpass",
    "parkinglot", "river", "runway", "sparseresidential", "storagetanks", "tenniscourt",
)
UCM_BLOCKS = tuple((100 * i + 1, 100 * (i + 1), scene) for i, scene in enumerate(UCM_SCENES))
# A3: Sydney-Captions file-number blocks.
SYDNEY_BLOCKS = ((1, 242, "residential"), (243, 264, "airport"), (265, 314, "meadow"), (315, 359, "river"),
                 (360, 451, "ocean"), (452, 547, "industrial"), (548, 613, "runway"))

_KARPATHY_SPLITS = ("train", "val", "test")

SOURCES: list[SourceSpec] = [
    SourceSpec("rsicd", "RSICD", ("captioning",), "optical", read_karpathy,
               options={"annotations": ("dataset_rsicd.json", "dataset_*.json"), "image_dirs": ("RSICD_images",),
                        "splits": _KARPATHY_SPLITS, "scene": SceneFromPrefix(RSICD_SCENES)},
               paper_samples=24333),
    SourceSpec("ucm_captions", "UCM-Captions", ("captioning",), "optical", read_karpathy,
               options={"annotations": ("dataset.json",), "image_dirs": ("imgs", "images"),
                        "splits": _KARPATHY_SPLITS, "scene": SceneFromNumber(UCM_BLOCKS)},
               paper_samples=9986),
    SourceSpec("sydney_captions", "Sydney-Captions", ("captioning",), "optical", read_karpathy,
               options={"annotations": ("dataset.json",), "image_dirs": ("imgs", "images"),
                        "splits": _KARPATHY_SPLITS, "scene": SceneFromNumber(SYDNEY_BLOCKS)},
               paper_samples=2837),
    # RSITMD has only train and test (A4).
    SourceSpec("rsitmd", "RSITMD", ("captioning",), "optical", read_karpathy,
               options={"annotations": ("dataset_RSITMD.json", "dataset_*.json"), "image_dirs": ("images",),
                        "splits": ("train", "test"), "scene": SceneFromPrefix()},
               train_splits=("train",), paper_samples=20096),
    SourceSpec("nwpu_captions", "NWPU-Captions", ("captioning",), "optical", read_nwpu_captions,
               options={"annotations": ("dataset_nwpu.json", "dataset_nwpu_en.json"), "image_dirs": ("NWPU_images",),
                        "splits": _KARPATHY_SPLITS},
               paper_samples=141631),
]
