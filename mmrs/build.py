"""Convert one source (read -> cut -> convert -> shard) and merge sources into MMRS-1M."""

from __future__ import annotations

import io
import os
import posixpath
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

import fsspec
import numpy as np

from mmrs.convert import to_records
from mmrs.fastpath import rare_gc_pauses, to_records_batch
from mmrs.imaging import open_image
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.shards import (
    ShardWriter,
    atomic_write_bytes,
    atomic_writer,
    clean_leftovers,
    content_hash,
    encode_record,
    join,
    read_json,
    relative_location,
    resolve_location,
    write_json,
)
from mmrs.storage import (
    MAX_IMAGE_PIXELS,
    ImageProblem,
    MissingFileError,
    SourceRoot,
)
from mmrs.tiling import SceneTiles, Window, cut, encode_tile

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ConversionSettings:
    """params.yaml `mmrs.conversion`: how converted sources are written and judged."""

    max_quarantine_rate: float = 0.05  # quarantined / (records + quarantined) above this fails the source's check
    max_records_per_shard: int = 50_000
    max_image_pixels: int = MAX_IMAGE_PIXELS  # an image whose header announces more is quarantined ("image too large")

    def __post_init__(self) -> None:
        if not 0 <= self.max_quarantine_rate <= 1:
            raise ValueError(f"max_quarantine_rate must be in [0, 1], got {self.max_quarantine_rate}")
        if self.max_records_per_shard < 1:
            raise ValueError(f"max_records_per_shard must be >= 1, got {self.max_records_per_shard}")
        if self.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels must be >= 1, got {self.max_image_pixels}")


SIZE_CORRECTED = "image size corrected from its header"
FORMAT_DIFFERS = "image format differs from its extension"


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed the image check: its size (the header's) and what was corrected on the way."""

    width: int
    height: int
    fixes: tuple[str, ...] = ()


def check_image(root: SourceRoot, raw: RawSample, max_pixels: int = MAX_IMAGE_PIXELS) -> CheckedImage | ImageProblem:
    """The image check of conversion (SourceRoot.inspect_image) for one sample: the header is read even when
    the annotation gives the size; a size that differs from the header's is corrected (the header is what
    training decodes) and counted. A tar member (LAION webdataset) was checked by its reader. The problem
    that stops the image otherwise (its quarantine reason)."""
    if "::" in raw.image and raw.width and raw.height:
        return CheckedImage(raw.width, raw.height)
    try:
        info = root.inspect_image(raw.image, max_pixels)
    except ImageProblem as problem:
        return problem
    fixes = []
    if raw.width and raw.height and (raw.width, raw.height) != (info.width, info.height):
        fixes.append(SIZE_CORRECTED)
    if not info.extension_matches:
        fixes.append(FORMAT_DIFFERS)
    return CheckedImage(info.width, info.height, tuple(fixes))


def _checks(root: SourceRoot, raws: list[RawSample], max_pixels: int) -> list[CheckedImage | ImageProblem]:
    return [check_image(root, raw, max_pixels) for raw in raws]


def _sized_chunks(root: SourceRoot, samples: Iterator[RawSample], chunk: int = 64,
                  max_pixels: int = MAX_IMAGE_PIXELS) -> Iterator[list[tuple[RawSample, CheckedImage | ImageProblem]]]:
    """The samples `chunk` at a time, each with its image check (check_image), in order. Local files: read
    here, one after another, the kernel asked to read the chunk's files ahead first (threads would only fight
    over the GIL for ~10 us reads). Object stores: a thread pool reads a chunk's headers at once, since there
    each read is network latency. The reader runs a chunk ahead of conversion, so its quarantine entries for
    a chunk come first."""
    if root.is_local:
        while batch := list(islice(samples, chunk)):
            root.prefetch([raw.image for raw in batch])
            yield [(raw, check_image(root, raw, max_pixels)) for raw in batch]
        return
    with ThreadPoolExecutor(max_workers=16) as pool:
        while batch := list(islice(samples, chunk)):
            # a few images per task, not one: the pool's own cost per task is that of a header read
            parts = [pool.submit(_checks, root, batch[i:i + 4], max_pixels) for i in range(0, len(batch), 4)]
            yield list(zip(batch, (found for part in parts for found in part.result()), strict=True))


def _decode(root: SourceRoot, image: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """The pixels of an image file as PIL decodes it (as the data loader will read its tiles), refused above
    `max_pixels` from its header before any pixel is decoded (mmrs.imaging.open_image)."""
    with open_image(io.BytesIO(root.read_bytes(image)), max_pixels, root.uri(image)) as decoded:
        return np.asarray(decoded)


def _write_tile(pixels: np.ndarray, window: Window, url: str) -> None:
    atomic_write_bytes(url, encode_tile(pixels, window))


def annotation_count(raw: RawSample, tasks: Iterable[str] | None = None) -> int:
    """Annotation units of one image: a class label, captions, QA pairs, objects, referring expressions. With
    `tasks` (the source's), a label counts only for a classification source: caption sets derive a scene
    class from file names, which no record carries."""
    label = raw.label is not None and (tasks is None or "classification" in tasks)
    return label + len(raw.captions) + len(raw.qa) + len(raw.objects) + len(raw.referrals)


def record_units(records: list[dict[str, Any]]) -> int:
    """Annotation units one image's records hold, each counted once however many tasks carry it: its class
    label, its captions, its QA pairs, its objects (one detection record: HBB and OBB hold the same ones),
    its referring expressions (grounding and region captioning hold the same ones)."""
    units = objects = referrals = 0
    for record in records:
        target, task = record["target"], record["task"]
        if task == "classification":
            units += 1
        elif task == "captioning":
            units += len(target["captions"])
        elif task == "vqa":
            units += len(target["qa"])
        elif task in ("detection_hbb", "detection_obb"):
            objects = max(objects, len(target["labels"]))
        elif task in ("grounding", "region_caption"):
            referrals = max(referrals, len(target["referrals"]))
    return units + objects + referrals


def _collect_categories(spec: SourceSpec, root: SourceRoot) -> tuple[str, ...]:
    """Class list of a classification set that does not publish one (FGSCR-42): every label its reader
    yields, sorted. A counting-only first pass; its quarantine entries are not kept (the real pass reports)."""
    labels = {raw.label for raw in spec.reader(root, spec, Quarantine(spec.name)) if raw.label is not None}
    return tuple(sorted(labels))


class _PendingImages:
    """Images (or tiles) of one chunk waiting for conversion: converted together, so that the box
    normalisation is vectorised over them; records and quarantine entries come in the images' order."""

    def __init__(self, spec: SourceSpec, writer: ShardWriter, quarantine: Quarantine, fast: bool = True):
        self.spec, self.writer, self.quarantine, self.fast = spec, writer, quarantine, fast
        self.waiting: list[tuple[RawSample, int, int]] = []
        self.images: dict[str, int] = {}  # converted images per split
        self.units = 0  # annotation units in the records written (record_units)

    def add(self, sample: RawSample, width: int, height: int) -> None:
        self.waiting.append((sample, width, height))

    def skip(self, path: str, reason: str, detail: str, units: int = 1) -> None:
        """Quarantine an image, after converting those before it (the report stays in reading order)."""
        self.flush()
        self.quarantine.skip(path, reason, detail, units=units)

    def flush(self) -> None:
        if self.fast:
            converted = to_records_batch(self.waiting, self.spec, self.quarantine)
        else:
            converted = [to_records(raw, self.spec, w, h, self.quarantine) for raw, w, h in self.waiting]
        for (sample, _, _), records in zip(self.waiting, converted, strict=True):
            try:  # all of an image's records, or none: text that is not valid Unicode cannot be written
                lines = [encode_record(record) for record in records]
            except ValueError as error:
                self.quarantine.skip(sample.image, "record not writable", str(error), units=record_units(records))
                continue
            for record, line in zip(records, lines, strict=True):
                self.writer.write(record, line)
            self.images[sample.split] = self.images.get(sample.split, 0) + 1
            self.units += record_units(records)
        self.waiting.clear()


@dataclass
class _Skip:
    """An image (or what it holds) to quarantine, in its place in reading order."""

    path: str
    reason: str
    detail: Any
    units: int = 1  # annotation units it held (mmrs.quarantine)


_Image = tuple[RawSample, int, int]  # an image (or a tile of a scene) to convert, with its width and height in px


_Written = tuple[RawSample, SceneTiles, Exception | None]  # a scene, its tiles, what stopped writing them


class _TileWriter:
    """Writes the tiles of scenes on `workers` threads while the caller reads, cuts and converts the next ones
    (decoding, filtering and deflating the PNG and file writes run mostly outside the GIL). A scene's first
    task decodes it and queues one task per tile not written yet, so both cores stay busy to the last tile of
    a large scene. At most workers + 1 scenes are taken at a time, so memory holds at most that many decoded
    scenes whatever the release size. Scenes come back in the order given, each with the error that stopped
    it."""

    def __init__(self, root: SourceRoot, tile_out: str, workers: int, max_pixels: int = MAX_IMAGE_PIXELS):
        self.root, self.tile_out, self.limit, self.max_pixels = root, tile_out, workers + 1, max_pixels
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tiles")
        self.waiting: deque[tuple[RawSample, SceneTiles, Future[list[Future[None]]]]] = deque()

    def __enter__(self) -> _TileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(cancel_futures=True)

    def submit(self, raw: RawSample, scene: SceneTiles) -> list[_Written]:
        """Start writing one scene's tiles; returns the scenes that had to finish to make room, oldest first."""
        self.waiting.append((raw, scene, self.pool.submit(self._start, raw, scene)))
        return [self._finish() for _ in range(len(self.waiting) - self.limit)]

    def drain(self) -> list[_Written]:
        """Every waiting scene, once written, oldest first."""
        return [self._finish() for _ in range(len(self.waiting))]

    def _start(self, raw: RawSample, scene: SceneTiles) -> list[Future[None]]:
        """On a tile thread: decode the scene if some of its tiles are not written yet; queue those."""
        fs, base = fsspec.core.url_to_fs(self.tile_out)
        missing = [(window, tile.image.split("/", 1)[1]) for tile, window in scene.tiles]
        missing = [(window, name) for window, name in missing if not fs.exists(join(base, name))]
        if not missing:
            return []
        pixels = _decode(self.root, raw.image, self.max_pixels)
        return [self.pool.submit(_write_tile, pixels, window, join(self.tile_out, name)) for window, name in missing]

    def _finish(self) -> _Written:
        raw, scene, started = self.waiting.popleft()
        try:
            for tile in started.result():
                tile.result()
        except (OSError, ValueError) as error:
            return raw, scene, error
        return raw, scene, None


def _written_items(scenes: list[_Written], quarantine: Quarantine) -> list[_Image | _Skip]:
    """Written scenes as images to convert (their tiles, after what no tile kept), or as unreadable images.
    Parts of objects left out of a tile are counted in `quarantine`."""
    items: list[_Image | _Skip] = []
    for raw, scene, error in scenes:
        if error is not None:
            items.append(_Skip(raw.image, "unreadable image", str(error), annotation_count(raw)))
            continue
        items.extend(_Skip(raw.image, reason, what) for reason, what in scene.lost)
        for reason, n in scene.parts_left_out.items():
            quarantine.fix(reason, n)
        items.extend((tile, tile.width, tile.height) for tile, _ in scene.tiles)
    return items


def _images(spec: SourceSpec, root: SourceRoot, quarantine: Quarantine, tile_out: str, tile_workers: int,
            max_pixels: int = MAX_IMAGE_PIXELS) -> Iterator[tuple[int, int, list[_Image | _Skip]]]:
    """The reader's samples a chunk at a time as images to convert, in reading order: each checked
    (check_image: its header's size, the problem that stops it), a tiled source's scenes replaced by their
    tiles (whose files are written under `tile_out` here, on `tile_workers` threads), and what to quarantine
    in their place (with the annotation units it held). Yields (samples read, annotation units read, items)
    per chunk; a chunk's scenes are all written before it is yielded. Between reading a chunk and reading
    the next, quarantine.phase is "conversion" (the manifest's accounting tells the reader's losses from
    conversion's)."""
    with _TileWriter(root, tile_out, tile_workers, max_pixels) as writer:
        for chunk in _sized_chunks(root, spec.reader(root, spec, quarantine), max_pixels=max_pixels):
            quarantine.phase = "conversion"  # until the reader reads the next chunk
            # names a record cannot hold and links leading out, met while reading the chunk
            items: list[_Image | _Skip] = [_Skip(path, reason, None, 0) for path, reason in root.take_refused()]
            for raw, checked in chunk:
                if isinstance(checked, ImageProblem):
                    items += _written_items(writer.drain(), quarantine)  # the scenes before it come first
                    items.append(_Skip(raw.image, checked.reason, checked.detail, annotation_count(raw, spec.tasks)))
                    continue
                for fix in checked.fixes:
                    quarantine.fix(fix)
                if spec.tile:
                    scene = cut(raw, checked.width, checked.height, spec.tile)
                    items += _written_items(writer.submit(raw, scene), quarantine)
                else:
                    items.append((raw, checked.width, checked.height))
            items += _written_items(writer.drain(), quarantine)
            yield len(chunk), sum(annotation_count(raw, spec.tasks) for raw, _ in chunk), items
            quarantine.phase = "reading"


def tile_release(spec: SourceSpec, raw_url: str, out_url: str, tile_workers: int | None = None) -> int:
    """Cut a tiled source's scenes and write their tiles under out_url/<spec.name>/tiles as convert_source
    does, without converting records (the tiling benchmark runs this); returns the number of tiles."""
    root = SourceRoot(raw_url)
    with rare_gc_pauses():
        return sum(not isinstance(item, _Skip) for _, _, items in
                   _images(spec, root, Quarantine(spec.name), join(out_url, spec.name, "tiles"),
                           tile_workers or default_tile_workers()) for item in items)


def default_tile_workers() -> int:
    """Threads writing tiles: one per core."""
    return os.cpu_count() or 1


def convert_source(spec: SourceSpec, raw_url: str, out_url: str, progress: Progress | None = None,
                   max_records: int = 50_000, tile_workers: int | None = None, fast: bool = True,
                   max_image_pixels: int = MAX_IMAGE_PIXELS) -> dict[str, Any]:
    """Convert `spec`'s dataset at `raw_url` into shards under out_url/<spec.name>; returns the manifest.

    Bad files and records are skipped into quarantine.jsonl; a missing required file raises (it names it),
    and so does a release where nothing usable is found. Every image is checked first (check_image; its
    header's pixel count at most `max_image_pixels`, which also bounds the decoding of scenes for tiles).
    Tiles of a tiled source are written on `tile_workers` threads (default: one per core); the output does
    not depend on their number. Every output is written under a temporary name and renamed when complete;
    what a killed run left behind (`*.tmp-*` files, shards no manifest lists) is removed, so a rerun writes
    the same bytes as an uninterrupted run. `fast=False` converts image by image through the plain route of
    mmrs/convert.py (the same bytes).
    """
    root = SourceRoot(raw_url)
    out = join(out_url, spec.name)
    clean_leftovers(out)
    if "classification" in spec.tasks and not spec.categories:
        spec = replace(spec, categories=_collect_categories(spec, root))
    writer = ShardWriter(out, max_records=max_records)
    annotations = 0
    with atomic_writer(join(out, "quarantine.jsonl")) as sink, rare_gc_pauses():
        quarantine = Quarantine(spec.name, sink)
        pending = _PendingImages(spec, writer, quarantine, fast)
        for samples, annotations_read, items in _images(spec, root, quarantine, join(out, "tiles"),
                                                        tile_workers or default_tile_workers(), max_image_pixels):
            annotations += annotations_read
            for item in items:
                if isinstance(item, _Skip):
                    pending.skip(item.path, item.reason, item.detail, units=item.units)
                else:
                    pending.add(*item)
            pending.flush()  # before the reader reads the next chunk and reports its own problems
            if progress:
                progress(samples)
        for path, reason in root.take_refused():
            quarantine.skip(path, reason, None, units=0)
    shards = writer.close()
    if not shards and not sum(pending.images.values()) and not annotations and quarantine.absent:
        raise MissingFileError(f"{spec.name}: nothing usable under {root.uri('')} (absent: "
                               + "; ".join(f"{split}: {what}" for split, what in quarantine.absent.items()) + ")")
    anchor = _corpus_folder(out_url)
    manifest = {
        "source": spec.name, "title": spec.title, "modality": spec.modality, "tasks": list(spec.tasks),
        "raw_root": relative_location(root.uri(""), out, anchor),
        "image_root": relative_location(out if spec.tile else root.uri(""), out, anchor),
        "train_splits": list(spec.train_splits), "evaluation_only": spec.evaluation_only,
        "in_mmrs_1m": spec.in_mmrs_1m,
        "paper_samples": spec.paper_samples, "images": pending.images, "annotations": annotations,
        "absent_splits": dict(sorted(quarantine.absent.items())),
        "accounting": accounting(quarantine, annotations, pending.units, tiled=spec.tile is not None),
        "counts": writer.counts,
        "quarantine": quarantine.summary(), "shards": shards, "content_hash": content_hash(shards),
    }
    write_json(join(out, "manifest.json"), manifest)
    clean_leftovers(out, keep={s["path"] for s in shards})
    return manifest


def accounting(quarantine: Quarantine, read: int, in_records: int, tiled: bool = False) -> dict[str, Any]:
    """Where a source's annotation units went (docs/reliability.md, "Accounting"). `native`: what the native
    files hold, as far as they could be read: the units the reader passed on (`read`) and those it quarantined
    or left out by rule. Each is in the records, quarantined or dropped by a rule: `native = in_records +
    quarantined + dropped`. Units of a file that could not be read at all are not known (its entry names it).
    Tiled sources: a scene's object is in every tile that shows it, so `in_records` counts tile copies and
    only the reader's side (`native = read + reader losses`) balances; tiling's own losses are its entries."""
    reading = quarantine.skipped_units["reading"] + quarantine.dropped_units["reading"]
    converting = quarantine.skipped_units["conversion"] + quarantine.dropped_units["conversion"]
    return {
        "unit": "annotation unit: a class label, caption, QA pair, object or referring expression",
        "native": read + reading,
        "in_records": in_records,
        "quarantined": sum(quarantine.skipped_units.values()),
        "dropped": sum(quarantine.dropped_units.values()),
        "balanced": tiled or read == in_records + converting,
    }


def _corpus_folder(out_url: str) -> str:
    """The folder the converted corpus sits in (data/ for data/mmrs): raw data there moves with it."""
    return posixpath.dirname(out_url.rstrip("/")) or "."


def training_rounds(manifest: dict[str, Any]) -> int:
    """Conversation rounds in the training splits: the unit of the paper's Table I counts."""
    rounds = manifest["counts"]["rounds"]
    return sum(n for split in manifest["train_splits"] for n in rounds.get(split, {}).values())


def statistics_table(manifests: Iterable[dict[str, Any]]) -> str:
    """Markdown table in the shape of Table I: per source, tasks, modality, our training rounds, the paper's."""
    rows = ["| source | tasks | modality | images | records | training rounds | paper (Table I) |",
            "|---|---|---|---|---|---|---|"]
    total = paper_total = 0
    for m in sorted(manifests, key=lambda m: (m["tasks"][0], m["source"])):
        records = sum(n for per_task in m["counts"]["records"].values() for n in per_task.values())
        images = sum(m["images"].values())
        if m["evaluation_only"]:
            rows.append(f"| {m['title']} | {', '.join(m['tasks'])} | {m['modality']} | {images:,} | {records:,} "
                        f"| - | eval only |")
            continue
        ours = training_rounds(m)
        total += ours
        paper_total += m["paper_samples"] or 0
        paper = f"{m['paper_samples']:,}" if m["paper_samples"] else "-"
        rows.append(f"| {m['title']} | {', '.join(m['tasks'])} | {m['modality']} | {images:,} | {records:,} "
                    f"| {ours:,} | {paper} |")
    rows.append(f"| **total** | | | | | **{total:,}** | **{paper_total:,}** |")
    return "\n".join(rows)


def build_mmrs_1m(out_url: str, sources: Iterable[str]) -> dict[str, Any]:
    """Merge converted sources: the training shards of every MMRS-1M source (not evaluation-only, not a
    stage-2 alignment corpus such as COCO Caption or LAION), with hashes and totals. Local image roots are
    recorded relative to out_url (see relative_location). Sources in name order, whatever order they are
    given in: the CLI (registry order) and the Dagster asset (params order) write the same bytes, and the
    training stream, which mixes sources in this order, gets the same batches from either."""
    clean_leftovers(out_url, keep=None, folders=("",))  # mmrs_1m.json.tmp-* of a killed merge
    manifests = [read_json(join(out_url, name, "manifest.json")) for name in sorted(set(sources))]
    shards = [{"source": m["source"], "path": f"{m['source']}/{s['path']}", "split": s["split"],
               "records": s["records"], "rounds": s["rounds"], "sha256": s["sha256"], "modality": m["modality"]}
              for m in manifests if not m["evaluation_only"] and m.get("in_mmrs_1m", True)
              for s in m["shards"] if s["split"] in m["train_splits"]]
    merged = {
        "sources": {m["source"]: {"content_hash": m["content_hash"], "image_root": _merged_root(out_url, m),
                                  "modality": m["modality"], "tasks": m["tasks"]} for m in manifests},
        "shards": shards,
        "records": sum(s["records"] for s in shards),
        "rounds": sum(s["rounds"] for s in shards),
        "content_hash": content_hash(shards),
    }
    write_json(join(out_url, "mmrs_1m.json"), merged)
    atomic_write_bytes(join(out_url, "mmrs_1m_stats.md"), (statistics_table(manifests) + "\n").encode())
    return merged


def _merged_root(out_url: str, manifest: dict[str, Any]) -> str:
    """A source's image root as mmrs_1m.json (in out_url) records it: relative to out_url where the source's
    manifest has it relative to its own folder."""
    root = resolve_location(manifest["image_root"], join(out_url, manifest["source"]))
    return relative_location(root, out_url, _corpus_folder(out_url))


def load_manifest(out_url: str, source: str) -> dict[str, Any]:
    return read_json(join(out_url, source, "manifest.json"))

