"""Stage-2 (cross-modal alignment) caption corpora: COCO Caption and LAION-400M. One RawSample per image with
`captions`; caption text is whitespace-normalised (ends stripped, runs of spaces/newlines -> one space) and a
caption left empty is quarantined ("empty caption").

COCO Caption, the official annotation files (one per split; 2017 names first, then the 2014 ones):

    annotations/captions_train2017.json   images in train2017/   (captions_train2014.json: train2014/)
    annotations/captions_val2017.json     images in val2017/     (captions_val2014.json: val2014/)
    {"images": [{"id", "file_name", "width", "height", ...}], "annotations": [{"id", "image_id", "caption"}], ...}

Captions are joined to images by `image_id`, in document order; key = the image id, width/height from the
image record. Quarantined: an image record without an int id or a file name ("malformed image record"), a
repeated id ("duplicate image"), an annotation that is not {image_id, caption: str} ("malformed annotation"),
one whose image is not listed ("unknown image id"), an image left without captions ("no captions"), a file
that is not JSON ("invalid json") or has no `images`/`annotations` lists ("malformed file"). A split's missing
annotation file raises MissingFileError naming it, before anything is read.

LAION-400M as img2dataset writes it (shard = 5 digits, key = 9 digits, unique over all shards), either layout:

    files:       00000/000000001.jpg  00000/000000001.txt  00000/000000001.json  ...  00000.parquet
    webdataset:  00000.tar holding 000000001.jpg, 000000001.txt, 000000001.json, ...  00000.parquet

The per-shard parquet has one row per URL of the shard: key, caption (or TEXT, the LAION metadata name),
status, width, height (of the stored, possibly resized image), ... Rows whose status is not "success" have no
image; they are counted in quarantine.fixed ("not downloaded (<status>)"), not listed one by one. The layout
is detected from the top folder (any `*.tar`: webdataset, else shard folders: files) or forced by the
`layout` option; a folder with neither raises MissingFileError.

Per sample: caption = its .txt, else the parquet row's caption ("no caption" when neither has one); size =
the parquet row's width/height, else the .json's width/height (the stored image; original_width/height
describe the download before resizing, so they are not used), else - for a tar member - the image header read
from the member's bytes (the converter cannot open "00000.tar::k.jpg" itself), or None for a file (the
converter reads the header). Tar members are streamed in order and grouped by webdataset key (the member name
up to the first dot of its base name); RawSample.image is "00000.tar::000000001.jpg", which
models.image_transform.load_record_image opens. A group without an image ("no image"), an image PIL cannot
identify ("unreadable image") and a tar that breaks off are quarantined; the latter whole ("unreadable tar"):
its samples are yielded only once it has been read to the end, since fsspec's tar reader, which loads record
images, cannot open any member of a truncated archive. Everything is split "train".
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mmrs.imaging import MAX_IMAGE_PIXELS, UnreadableImageError, open_image
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import JsonDocument, RecordStore, Spool, note_absent, read_json, stem
from mmrs.storage import MissingFileError, SourceRoot, UnsafePathError, decode_text

LAION_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")  # img2dataset encode_format values
LAYOUTS = ("auto", "files", "webdataset")
_SHARD_FORMS = {"auto": "NNNNN.tar files or NNNNN/ folders", "files": "NNNNN/ folders", "webdataset": "NNNNN.tar files"}


def normalize_caption(text: str) -> str:
    """Ends stripped, every whitespace run (spaces, tabs, newlines) -> one space."""
    return " ".join(text.split())


def _positive_int(value: Any) -> int | None:
    """A positive whole number (int, or float as pandas writes nullable ints) as int, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return None
    return int(value) if value > 0 else None


def _size(record: Mapping[str, Any]) -> tuple[int, int] | None:
    """(width, height) of a record's `width`/`height` when both are positive whole numbers."""
    width, height = _positive_int(record.get("width")), _positive_int(record.get("height"))
    return (width, height) if width and height else None


# ------------------------------------------------------------------------------------------------ COCO


@dataclass(frozen=True)
class CocoSplit:
    """One split of COCO Caption: (annotation file, image folder) candidates, the first existing file wins."""

    split: str
    candidates: tuple[tuple[str, str], ...]

    def locate(self, root: SourceRoot) -> tuple[str, str]:
        """(annotation file, image folder), or MissingFileError naming the expected file(s)."""
        for annotation, image_dir in self.candidates:
            if root.exists(annotation):
                return annotation, image_dir
        others = ", ".join(a for a, _ in self.candidates[1:])
        raise MissingFileError(f"required annotation file missing: {root.uri(self.candidates[0][0])}"
                               + (f" (nor {others})" if others else ""))


@dataclass(frozen=True)
class _CocoImage:
    id: int
    file_name: str
    size: tuple[int, int] | None


def _image_fields(record: Any) -> tuple[int, str] | None:
    """(id, file_name) of a COCO image record, None when either is unusable."""
    if not isinstance(record, dict):
        return None
    image_id, file_name = record.get("id"), record.get("file_name")
    if isinstance(image_id, bool) or not isinstance(image_id, int) or not isinstance(file_name, str) or not file_name:
        return None
    return image_id, file_name


def _coco_images(records: Iterable[Any], path: str, quarantine: Quarantine | Spool) -> dict[int, _CocoImage]:
    """Usable image records by id, in document order."""
    images: dict[int, _CocoImage] = {}
    for record in records:
        fields = _image_fields(record)
        if fields is None:  # 0 units: its captions report themselves ("unknown image id")
            quarantine.skip(path, "malformed image record", record, units=0)
        elif fields[0] in images:  # 0 units: its captions go to the first image with the id
            quarantine.skip(path, "duplicate image", record, units=0)
        else:
            images[fields[0]] = _CocoImage(*fields, _size(record))
    return images


def _coco_captions(annotations: Iterable[Any], images: Mapping[int, _CocoImage], path: str,
                   quarantine: Quarantine | Spool) -> RecordStore:
    """Normalised captions filed under their image's id (on disk), in annotation order; unusable annotations
    quarantined."""
    captions = RecordStore()
    for annotation in annotations:
        if not isinstance(annotation, dict) or not isinstance(annotation.get("caption"), str):
            quarantine.skip(path, "malformed annotation", annotation)
            continue
        image_id = annotation.get("image_id")
        if image_id not in images:
            quarantine.skip(path, "unknown image id", annotation)
            continue
        text = normalize_caption(annotation["caption"])
        if text:
            captions.add(images[image_id].id, text)
        else:
            quarantine.skip(path, "empty caption", annotation)
    return captions


def _coco_load(document: JsonDocument, spool: Spool, path: str) -> tuple[dict[int, _CocoImage], RecordStore]:
    images = _coco_images(document.items("images"), path, spool)
    return images, _coco_captions(document.items("annotations"), images, path, spool)


def _coco_split(root: SourceRoot, spec: SourceSpec, split: str, path: str, image_dir: str,
                quarantine: Quarantine) -> Iterator[RawSample]:
    loaded = read_json(root, path, quarantine, partial(_coco_load, path=path), lists=("images", "annotations"))
    if loaded is None:
        return
    (images, captions), spool = loaded
    spool.flush_to(quarantine)
    try:
        for image in images.values():
            texts = captions.all(image.id)
            if not texts:
                quarantine.skip(path, "no captions", {"id": image.id, "file_name": image.file_name}, units=0)
                continue
            try:
                rel = root.member(image.file_name, image_dir)
            except UnsafePathError as error:
                quarantine.skip(path, "unsafe path", {"id": image.id, "problem": str(error)}, units=len(texts))
                continue
            width, height = image.size or (None, None)
            yield RawSample(source=spec.name, split=split, key=str(image.id), image=rel,
                            modality=spec.modality, width=width, height=height, captions=texts)
    finally:
        captions.close()


def read_coco_captions(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """COCO Caption (module docstring). options: splits (CocoSplit entries, in reading order)."""
    located, absent = [], {}
    for split in spec.options["splits"]:
        try:
            located.append((split.split, *split.locate(root)))
        except MissingFileError as error:
            absent[split.split] = str(error).removeprefix("required annotation file missing: ")
    note_absent(root, quarantine, len(located), absent, "annotation files")
    for split, path, image_dir in located:
        yield from _coco_split(root, spec, split, path, image_dir, quarantine)


# ----------------------------------------------------------------------------------------------- LAION


@dataclass(frozen=True)
class _Row:
    """What a shard parquet says about one downloaded key."""

    caption: str | None
    size: tuple[int, int] | None


def _read_parquet(root: SourceRoot, rel: str, caption_columns: Sequence[str],
                  quarantine: Quarantine) -> list[dict[str, Any]]:
    """The parquet's key/status/size rows, the first present caption column renamed `caption`."""
    try:
        with root.open(rel) as f:
            parquet = pq.ParquetFile(f)
            names = parquet.schema_arrow.names
            caption = next((c for c in caption_columns if c in names), None)
            wanted = [c for c in ("key", "status", "width", "height") if c in names] + ([caption] if caption else [])
            rows = parquet.read(columns=wanted).to_pylist()
    except (pa.ArrowException, OSError) as error:
        quarantine.skip(rel, "unreadable parquet", str(error))
        return []
    return [(row | {"caption": row.get(caption)}) if caption else row for row in rows]


def _shard_rows(root: SourceRoot, rel: str, caption_columns: Sequence[str],
                quarantine: Quarantine) -> dict[str, _Row]:
    """Downloaded keys of a shard parquet (none when it is absent); failed rows counted as fixes."""
    if not root.exists(rel):
        return {}
    rows: dict[str, _Row] = {}
    for row in _read_parquet(root, rel, caption_columns, quarantine):
        status = row.get("status", "success")
        if status != "success":
            quarantine.fix(f"not downloaded ({status})")
        elif isinstance(row.get("key"), str):
            caption = row.get("caption")
            rows[row["key"]] = _Row(caption if isinstance(caption, str) else None, _size(row))
    return rows


def _caption(text: str | None, row: _Row | None) -> str | None:
    """The sample's own .txt, else its parquet row's caption."""
    if text is not None:
        return text
    return row.caption if row is not None else None


def _split_name(name: str) -> tuple[str, str]:
    """Webdataset (key, extension): `a/000000001.seg.png` -> (`a/000000001`, `seg.png`), extension lower-case."""
    folder, base = posixpath.split(name)
    key, _, ext = base.partition(".")
    return posixpath.join(folder, key), ext.lower()


def _json_size(data: bytes | str) -> tuple[int, int] | None:
    """Size from an img2dataset .json (its `width`/`height`), None when absent or not JSON."""
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return _size(record) if isinstance(record, dict) else None


@dataclass
class _Laion:
    """One LAION read: what the per-shard steps share."""

    root: SourceRoot
    spec: SourceSpec
    quarantine: Quarantine

    @property
    def caption_columns(self) -> Sequence[str]:
        return self.spec.options.get("caption_columns", ("caption", "TEXT"))

    def sample(self, key: str, image: str, caption: str | None, size: tuple[int, int] | None) -> RawSample | None:
        """The RawSample, or None after quarantining a missing or empty caption."""
        if caption is None:
            self.quarantine.skip(image, "no caption", {"key": key})
            return None
        text = normalize_caption(caption)
        if not text:
            self.quarantine.skip(image, "empty caption", {"key": key, "caption": caption})
            return None
        width, height = size or (None, None)
        return RawSample(source=self.spec.name, split="train", key=key, image=image, modality=self.spec.modality,
                         width=width, height=height, captions=[text])

    # --------------------------------------------------------------------------- files: 00000/<key>.jpg

    def folder_samples(self, folder: str, rows: Mapping[str, _Row]) -> Iterator[RawSample]:
        """The images of a shard folder in name order, with their sidecars and parquet rows."""
        names = set(self.root.listdir(folder))
        for name in sorted(names):
            key, ext = _split_name(name)
            if ext not in LAION_IMAGE_EXTENSIONS:
                continue
            row = rows.get(key)
            try:
                text = self.root.read_text(f"{folder}/{key}.txt") if f"{key}.txt" in names else None
            except ValueError as error:  # neither UTF-8 nor GB18030
                self.quarantine.skip(f"{folder}/{name}", "undecodable caption", str(error))
                continue
            caption = _caption(text, row)
            size = row.size if row is not None else None
            if size is None and f"{key}.json" in names:
                size = _json_size(self.root.read_bytes(f"{folder}/{key}.json"))
            sample = self.sample(key, f"{folder}/{name}", caption, size)
            if sample is not None:
                yield sample

    # ----------------------------------------------------------------------- webdataset: 00000.tar members

    def tar_groups(self, tar: str) -> Iterator[tuple[str, dict[str, tuple[str, bytes]]]]:
        """(key, {extension: (member name, bytes)}) of consecutive members sharing a key, streamed in order."""
        key, group = "", {}
        with self.root.open(tar) as f, tarfile.open(fileobj=f, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                member_key, ext = _split_name(member.name)
                if group and member_key != key:
                    yield key, group
                    group = {}
                key = member_key
                group[ext] = (member.name, archive.extractfile(member).read())
        if group:
            yield key, group

    def tar_sample(self, tar: str, key: str, group: Mapping[str, tuple[str, bytes]],
                   row: _Row | None) -> RawSample | None:
        """The sample of one member group; its size, when neither the parquet nor the .json has it, from the
        image header (the converter cannot open a tar member itself)."""
        ext = next((e for e in LAION_IMAGE_EXTENSIONS if e in group), None)
        if ext is None:
            self.quarantine.skip(f"{tar}::{key}", "no image", sorted(group))
            return None
        name, data = group[ext]
        image = f"{tar}::{name}"
        try:
            caption = _caption(decode_text(group["txt"][1], group["txt"][0]) if "txt" in group else None, row)
        except ValueError as error:  # neither UTF-8 nor GB18030
            self.quarantine.skip(image, "undecodable caption", str(error))
            return None
        size = (row.size if row else None) or (_json_size(group["json"][1]) if "json" in group else None)
        if size is None:
            try:
                with open_image(io.BytesIO(data), MAX_IMAGE_PIXELS, image) as decoded:
                    size = decoded.size
            except (OSError, UnreadableImageError) as error:
                self.quarantine.skip(image, "unreadable image", str(error))
                return None
        return self.sample(key, image, caption, size)

    def tar_samples(self, tar: str, rows: Mapping[str, _Row]) -> list[RawSample]:
        """The tar's samples once it has been read to the end; none from a tar that breaks off."""
        samples = []
        try:
            for key, group in self.tar_groups(tar):
                sample = self.tar_sample(tar, key, group, rows.get(key))
                if sample is not None:
                    samples.append(sample)
        except (tarfile.TarError, EOFError) as error:
            self.quarantine.skip(tar, "unreadable tar", str(error))
            return []
        return samples


def laion_shards(root: SourceRoot, layout: str = "auto") -> tuple[str, list[str]]:
    """(layout, shard names): the `*.tar` files (webdataset) or the sub-folders (files) of the top folder,
    sorted; "auto" picks webdataset when there is any tar. MissingFileError when there is no shard."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown LAION layout {layout!r}; expected one of {LAYOUTS}")
    names = root.listdir("") if root.isdir("") else []
    tars = [n for n in names if n.endswith(".tar")]
    found = "webdataset" if layout == "webdataset" or (layout == "auto" and tars) else "files"
    shards = tars if found == "webdataset" else [n for n in names if "." not in n and root.isdir(n)]
    if not shards:
        raise MissingFileError(f"no img2dataset shards ({_SHARD_FORMS[layout]}) in {root.uri('')}")
    return found, shards


def read_laion(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """LAION-400M img2dataset output (module docstring). options: layout ("auto", "files", "webdataset"),
    caption_columns (parquet caption column names in order of preference; default caption, TEXT)."""
    reader = _Laion(root, spec, quarantine)
    layout, shards = laion_shards(root, spec.options.get("layout", "auto"))
    for shard in shards:
        if layout == "webdataset":
            rows = _shard_rows(root, f"{stem(shard)}.parquet", reader.caption_columns, quarantine)
            yield from reader.tar_samples(shard, rows)
        else:
            rows = _shard_rows(root, f"{shard}.parquet", reader.caption_columns, quarantine)
            yield from reader.folder_samples(shard, rows)


_COCO_SPLITS = tuple(
    CocoSplit(split, tuple((f"annotations/captions_{split}{year}.json", f"{split}{year}") for year in (2017, 2014)))
    for split in ("train", "val"))

SOURCES: list[SourceSpec] = [
    SourceSpec("coco_captions", "COCO Caption", ("captioning",), "optical", read_coco_captions,
               options={"splits": _COCO_SPLITS, "natural_images": True}, train_splits=("train",), in_mmrs_1m=False),
    SourceSpec("laion", "LAION-400M", ("captioning",), "optical", read_laion,
               options={"layout": "auto", "caption_columns": ("caption", "TEXT"), "natural_images": True},
               train_splits=("train",),
               in_mmrs_1m=False),
]
