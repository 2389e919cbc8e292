"""Training data: MMRS-1M shards -> mixed, length-grouped, padded batches, with exact resume.

One epoch, for a seed (everything before image loading is a pure function of seed, epoch and the shards):

    per source   shards in seeded order -> raw lines through a seeded shuffle buffer -> task filter ->
                 `encode_conversation` (bad records are skipped, counted and replaced by later ones) ->
                 the next pass, reshuffled, when the source runs out
    mix          source i contributes exactly quota_i samples, in seeded random order; a quota is the
                 source's weight share of the epoch (default weights: the sources' sizes, i.e. one pass)
    batches      windows of bucket_batches * batch_size samples, sorted by token length, cut into batches
                 whose order is shuffled (seeded); `group_by_length=False` cuts the mixed order as it comes
    index        the epoch's plan, computed once and stored (see below)
    load         only for a batch this rank and DataLoader worker delivers: its records read again at their
                 stored offsets and encoded, images decoded, then `collate`

An epoch holds as many samples as the selected records (the manifests' counts for the selected splits and
tasks), so the number of batches is known up front and `len()` is exact; that also keeps Lightning from
fetching a batch ahead of the model. The position (epoch, batches delivered) is recorded in the main process
as each batch reaches the consumer; a resumed stream continues with the next batch.

The plan index (`PlanIndex`): the first process on a machine that needs an epoch's plan computes it (under a
file lock) and stores it in the plan cache (`EARTHGPT_PLAN_CACHE`, default <tmp>/earthgpt-plans, keyed by
everything that decides the batches, the code that encodes and plans included): for every planned sample its
source, shard, byte offset, record length and token count, the batch boundaries, and the skips and truncations
met while planning. Every rank and DataLoader worker memory-maps it and reads and tokenises only the records
of its own batches, so the cost of planning is paid once per machine, not once per rank and worker, and
resuming at any position costs nothing.

A skipped record's place goes to its source's next record, so a source with many unusable records repeats its
usable ones within an epoch: `stats.skipped` shows the reasons. A source with none at all is an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing
import os
import posixpath
import random
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import count, islice
from pathlib import Path
from typing import Any, TypeVar

import fsspec
import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from transformers import PreTrainedTokenizerBase

from mmrs.code_version import code_version
from mmrs.shards import join, read_json, resolve_location
from mmrs.storage import is_local_fs
from models.config import EarthGPTConfig
from models.earthgpt import IGNORE_INDEX
from models.image_transform import load_record_image, preprocess
from models.io import writable_folder
from models.prompt_variation import vary_record
from models.tokenization import encode_conversation, tokenizer_digest

logger = logging.getLogger(__name__)
T = TypeVar("T")

PLAN_CACHE_ENV = "EARTHGPT_PLAN_CACHE"  # where plan indexes are stored (a local folder)
MALFORMED_LINE = "malformed JSON line"
MALFORMED_RECORD = "malformed record"
UNREADABLE_IMAGE = "unreadable image"


@dataclass
class DataConfig:
    """Which records, and how they become batches.

    manifest: the merged `mmrs_1m.json` (local or s3://); its sources are those with training shards, each
        read through its own `<folder of mmrs_1m.json>/<source>/manifest.json`.
    sources: instead of `manifest`, converted source folders (`OUT/<source>`).
    train_splits: None = each source's training splits (none for evaluation-only sources).
    val_splits: held-out splits for validation; empty = no validation data.
    tasks: keep only records of these tasks (None: all); stage 2 trains on ("captioning",).
    weights: source -> mixing ratio (normalised over the sources; 0 leaves one out); None = by size.
    bucket_batches: length grouping sorts windows of bucket_batches * batch_size samples.
    shuffle_buffer: raw lines held per source for shuffling (bounds memory; 0 keeps shard order).
    num_workers: DataLoader processes that decode images; the batches are the same for any number.
    images: False gives text-only batches (no `pixels`, no image read): the tiny preset's text pretraining.
    holdout_permille: records whose id hashes into the first N of 1000 buckets are held out of training (a
        stable split of the training records, whatever the shards); they give the validation loss.
    val_samples: how many held-out records the validation set takes (spread over sources by size).
    prompt_variation: each record's instructions in one of the training paraphrases, chosen by (seed, record id)
        (`models.prompt_variation`; the tiny preset's remedy for a model that answers only one wording).
    """

    manifest: str | None = None
    sources: tuple[str, ...] = ()
    train_splits: tuple[str, ...] | None = None
    val_splits: tuple[str, ...] = ()
    tasks: tuple[str, ...] | None = None
    weights: dict[str, float] | None = None
    batch_size: int = 8
    group_by_length: bool = True
    bucket_batches: int = 16
    shuffle_buffer: int = 1000
    seed: int = 0
    num_workers: int = 0
    images: bool = True
    holdout_permille: int = 0
    val_samples: int = 256
    prompt_variation: bool = False

    def __post_init__(self) -> None:
        if (self.manifest is None) == (not self.sources):
            raise ValueError("give exactly one of `manifest` (mmrs_1m.json) and `sources` (source output folders)")
        if self.batch_size < 1 or self.bucket_batches < 1:
            raise ValueError("batch_size and bucket_batches must be >= 1")
        if self.shuffle_buffer < 0 or self.num_workers < 0:
            raise ValueError("shuffle_buffer and num_workers must be >= 0")
        if not 0 <= self.holdout_permille < 1000:
            raise ValueError(f"holdout_permille must be in [0, 1000), got {self.holdout_permille}")
        if self.holdout_permille and self.val_splits:
            raise ValueError("validate on held-out records (holdout_permille) or on val_splits, not both")
        self.sources = tuple(self.sources)  # lists from YAML
        self.val_splits = tuple(self.val_splits)
        self.train_splits = None if self.train_splits is None else tuple(self.train_splits)
        self.tasks = None if self.tasks is None else tuple(self.tasks)


# --- sources -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """A converted source's selected shards; size: its records in the selected splits and tasks."""

    name: str
    image_root: str
    shard_urls: tuple[str, ...]
    size: int
    content_hash: str


def _source_folders(config: DataConfig) -> list[str]:
    if config.manifest is None:
        return list(config.sources)
    merged = read_json(config.manifest)
    names = dict.fromkeys(shard["source"] for shard in merged["shards"])  # in manifest order, once each
    return [join(posixpath.dirname(config.manifest), name) for name in names]


def _select(folder: str, splits: tuple[str, ...] | None, tasks: tuple[str, ...] | None) -> Source:
    manifest = read_json(join(folder, "manifest.json"))
    if splits is None:
        splits = () if manifest["evaluation_only"] else tuple(manifest["train_splits"])
    records = manifest["counts"]["records"]
    size = sum(n for split in splits for task, n in records.get(split, {}).items() if tasks is None or task in tasks)
    urls = tuple(join(folder, shard["path"]) for shard in manifest["shards"] if shard["split"] in splits)
    return Source(manifest["source"], resolve_location(manifest["image_root"], folder), urls, size,
                  manifest["content_hash"])


def _check_image_root(source: Source) -> None:
    fs, path = fsspec.core.url_to_fs(source.image_root)
    if not fs.exists(path):
        raise FileNotFoundError(f"image root of source {source.name!r} not found: {source.image_root}")


def load_sources(config: DataConfig, splits: tuple[str, ...] | None) -> list[Source]:
    """Sources with records in `splits` (None: their training splits) of `config.tasks`; raises if none."""
    sources = [s for s in (_select(f, splits, config.tasks) for f in _source_folders(config)) if s.size]
    if not sources:
        raise ValueError(f"no records of tasks {config.tasks or 'any'} in splits {splits or 'training'} under "
                         f"{config.manifest or config.sources}")
    for source in sources:
        _check_image_root(source)
    return sources


def quotas(sources: list[Source], weights: Mapping[str, float] | None) -> dict[str, int]:
    """Samples per epoch from each source: its weight's share of the epoch (the sizes of the weighted sources).

    Default weights are the sizes: every record once. Weights may name sources that are not selected (the
    same mix serves both stages); each selected source needs one.
    """
    sizes = {s.name: s.size for s in sources}
    if weights is None:
        return sizes
    missing = sorted(set(sizes) - set(weights))
    if missing:
        raise ValueError(f"no mixing weight for sources {missing}; give every source one (0 leaves it out)")
    if any(weights[name] < 0 for name in sizes) or not any(weights[name] > 0 for name in sizes):
        raise ValueError(f"mixing weights must be >= 0 with at least one > 0: {dict(weights)}")
    total_weight = sum(weights[name] for name in sizes)
    epoch = sum(size for name, size in sizes.items() if weights[name] > 0)
    shares = {name: round(epoch * weights[name] / total_weight) for name in sizes}
    return {name: n for name, n in shares.items() if n}


# --- records -> samples ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """An encoded record: input_ids and labels (T,), and its image relative to image_root."""

    id: str
    image_root: str
    image: str
    input_ids: list[int]
    labels: list[int]


@dataclass
class _Tally:
    """Skips and truncations seen while planning, handed on with the next planned batch."""

    skipped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0

    def skip(self, reason: str, record_id: object) -> None:
        logger.debug("skipping record %s: %s", record_id, reason)
        self.skipped[reason] += 1

    def take(self) -> tuple[dict[str, int], int]:
        taken = dict(self.skipped), self.truncated
        self.skipped, self.truncated = Counter(), 0
        return taken


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def held_out(record_id: object, permille: int) -> bool:
    """Whether a record belongs to the held-out part: its id's SHA-256 falls in the first `permille` of 1000."""
    if not permille:
        return False
    digest = hashlib.sha256(str(record_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < permille


@dataclass(frozen=True)
class _Encoder:
    tokenizer: PreTrainedTokenizerBase
    max_tokens: int
    tasks: tuple[str, ...] | None
    holdout_permille: int = 0
    held_out: bool = False  # True: only the held-out records (validation); False: all others (training)
    vary_seed: int | None = None  # set: instructions reworded by `vary_record` with this seed

    def __call__(self, line: bytes, image_root: str, tally: _Tally) -> Sample | None:
        """A shard line -> Sample; None for another task, the other side of the holdout, or a bad record
        (counted in `tally`)."""
        record = _parse(line)
        if record is None:
            tally.skip(MALFORMED_LINE, None)
            return None
        if self.tasks is not None and record.get("task") not in self.tasks:
            return None
        if held_out(record.get("id"), self.holdout_permille) != self.held_out:
            return None
        try:
            if self.vary_seed is not None:
                record = vary_record(record, self.vary_seed)
            turns = record["conversations"]
            encoded = encode_conversation(self.tokenizer, turns, self.max_tokens)
            sample = Sample(record["id"], image_root, record["image"], encoded.input_ids, encoded.labels)
        except (KeyError, TypeError, AttributeError):
            tally.skip(MALFORMED_RECORD, record.get("id"))
            return None
        except ValueError as error:  # does not fit max_tokens, or turns that do not alternate
            tally.skip(str(error), record.get("id"))
            return None
        tally.truncated += int(encoded.rounds < len(turns) // 2)
        return sample


def _vary_seed(config: DataConfig) -> int | None:
    return config.seed if config.prompt_variation else None


def _rng(*parts: object) -> random.Random:
    """A generator seeded by a path such as (seed, epoch, source, pass); stable across processes."""
    return random.Random("/".join(map(str, parts)))


def _lines(url: str) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) of every non-blank line."""
    offset = 0
    with fsspec.open(url, "rb") as f:
        for line in f:
            if line.strip():
                yield offset, line
            offset += len(line)


def _shuffled(items: Iterable[T], size: int, rng: random.Random) -> Iterator[T]:
    """Items in random order with at most `size` held at once (size 0: unchanged)."""
    if size == 0:
        yield from items
        return
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
        else:
            i = rng.randrange(size)
            yield buffer[i]
            buffer[i] = item
    rng.shuffle(buffer)
    yield from buffer


def _mix(streams: Mapping[str, Iterator[T]], quota: Mapping[str, int], rng: random.Random) -> Iterator[T]:
    """Exactly quota[name] samples of each stream, in random order (a random permutation of the quotas)."""
    names = list(quota)
    remaining = [quota[name] for name in names]
    total = sum(remaining)
    while total:
        pick = rng.randrange(total)
        i = 0
        while pick >= remaining[i]:
            pick -= remaining[i]
            i += 1
        remaining[i] -= 1
        total -= 1
        yield next(streams[names[i]])


def _cut(window: list[_Row], batch_size: int, group_by_length: bool, rng: random.Random) -> list[list[_Row]]:
    if group_by_length:
        window = sorted(window, key=lambda row: row.tokens)
    batches = [window[i:i + batch_size] for i in range(0, len(window), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


@dataclass(frozen=True)
class PlannedBatch:
    """A batch before its images are read. index: position in the epoch over all ranks."""

    index: int
    samples: list[Sample]
    skipped: dict[str, int]  # records skipped while this batch's window was planned
    truncated: int  # conversations cut to fit while this batch's window was planned


@dataclass(frozen=True)
class _Row:
    """A planned sample: where its line is (source, shard, byte offset, bytes), its token count, and what
    planning met on the way to it (records skipped since the source's previous sample; 1 if truncated)."""

    location: tuple[int, int, int, int]
    tokens: int
    skipped: dict[str, int]
    truncated: int


@dataclass(frozen=True)
class _PlannedRows:
    index: int
    rows: list[_Row]
    skipped: dict[str, int]
    truncated: int


# --- the stored plan ---------------------------------------------------------------------------------------
def planning_code_version() -> str:
    """The version of the code that decides how records encode and batch: models.data and every repository
    module it imports (prompt variation, tokenization, templates), as mmrs.code_version digests them."""
    return code_version("models.data")


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def plan_cache() -> Path:
    """Where plan indexes are stored: $EARTHGPT_PLAN_CACHE, else <tmp>/earthgpt-plans (a local folder)."""
    return Path(os.environ.get(PLAN_CACHE_ENV) or Path(tempfile.gettempdir()) / "earthgpt-plans")


SAMPLE_ROW = np.dtype([("source", "<u2"), ("shard", "<u4"), ("offset", "<u8"), ("bytes", "<u4"), ("tokens", "<u4")])


@dataclass(frozen=True)
class PlanIndex:
    """An epoch's plan over all ranks, stored in `folder`: `samples.npy` (one SAMPLE_ROW per planned sample, in
    epoch order: source and shard indexes, byte offset and length of its line, its token count), `batches.npy`
    (int64 boundaries: batch i is samples[batches[i]:batches[i+1]]) and `tallies.json` (the skips and
    truncations met while planning, by the batch that reports them). Opened memory-mapped."""

    folder: str
    samples: np.ndarray
    batches: np.ndarray
    tallies: dict[int, tuple[dict[str, int], int]]

    def __len__(self) -> int:
        return len(self.batches) - 1

    def locations(self, index: int) -> list[tuple[int, int, int, int]]:
        rows = self.samples[self.batches[index]:self.batches[index + 1]]
        return [(int(r["source"]), int(r["shard"]), int(r["offset"]), int(r["bytes"])) for r in rows]

    def tally(self, index: int) -> tuple[dict[str, int], int]:
        return self.tallies.get(index, ({}, 0))

    @staticmethod
    def complete(folder: Path) -> bool:
        return (folder / "tallies.json").exists()  # written last

    @classmethod
    def open(cls, folder: Path) -> PlanIndex:
        tallies = json.loads((folder / "tallies.json").read_text())
        return cls(str(folder), np.load(folder / "samples.npy", mmap_mode="r"),
                   np.load(folder / "batches.npy", mmap_mode="r"),
                   {int(k): (dict(v[0]), int(v[1])) for k, v in tallies.items()})

    @staticmethod
    def write(folder: Path, batches: Iterable[_PlannedRows]) -> None:
        """Store a plan (atomically: written beside `folder`, then renamed)."""
        columns = {name: array(code) for name, code in
                   (("source", "H"), ("shard", "L"), ("offset", "Q"), ("bytes", "L"), ("tokens", "L"))}
        bounds, tallies = array("q", [0]), {}
        for batch in batches:
            for row in batch.rows:
                source, shard, offset, size = row.location
                for name, value in zip(("source", "shard", "offset", "bytes", "tokens"),
                                       (source, shard, offset, size, row.tokens), strict=True):
                    columns[name].append(value)
            bounds.append(len(columns["source"]))
            if batch.skipped or batch.truncated:
                tallies[batch.index] = [batch.skipped, batch.truncated]
        rows = np.empty(len(columns["source"]), SAMPLE_ROW)
        for name, values in columns.items():
            rows[name] = np.frombuffer(values, dtype=values.typecode) if values else []
        with writable_folder(folder) as scratch:
            np.save(scratch / "samples.npy", rows)
            np.save(scratch / "batches.npy", np.frombuffer(bounds, dtype=np.int64))
            (scratch / "tallies.json").write_text(json.dumps({str(k): v for k, v in tallies.items()}))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Held by one process of the machine at a time (the others wait): whoever builds `folder`."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- every line encoded once ----------------------------------------------------------------------------------
IGNORED, SKIPPED = -1, -2  # token counts of a line of another task (or the other side of the holdout), a bad one
PARALLEL_RECORDS = 50_000  # from this many selected records on, shards are encoded by a pool of processes
PLAN_PROCESSES_ENV = "EARTHGPT_PLAN_PROCESSES"  # its size (default: the machine's cores)


@dataclass
class _ShardLines:
    """What encoding makes of each non-blank line of a shard, in order: byte offset and length, token count
    (or IGNORED, SKIPPED), whether the conversation was cut to fit, and the reason of each SKIPPED line."""

    offsets: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def _encode_shard(job: tuple[_Encoder, str, str]) -> _ShardLines:
    encoder, image_root, url = job
    lines = _ShardLines()
    for offset, line in _lines(url):
        tally = _Tally()
        sample = encoder(line, image_root, tally)
        if tally.skipped:
            (reason,) = tally.skipped
            lines.reasons[len(lines.tokens)] = reason
        lines.offsets.append(offset)
        lines.sizes.append(len(line))
        lines.tokens.append(len(sample.input_ids) if sample else SKIPPED if tally.skipped else IGNORED)
        lines.truncated.append(tally.truncated)
    return lines


def encode_lines(encoder: _Encoder, sources: list[Source]) -> list[list[_ShardLines]]:
    """Every shard's lines encoded, per source and shard; by a pool of processes (fork) for large data."""
    jobs = [(encoder, s.image_root, url) for s in sources for url in s.shard_urls]
    processes = min(len(jobs), int(os.environ.get(PLAN_PROCESSES_ENV) or os.cpu_count() or 1))
    if processes > 1 and sum(s.size for s in sources) >= PARALLEL_RECORDS:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            done = iter(list(pool.map(_encode_shard, jobs)))
    else:
        done = map(_encode_shard, jobs)
    return [[next(done) for _ in s.shard_urls] for s in sources]


def save_lines(folder: Path, lines: list[list[_ShardLines]]) -> None:
    """Store encoded lines (atomically): one int64 array per column over all shards, shard boundaries, and the
    skip reasons."""
    shards = [shard for source in lines for shard in source]
    with writable_folder(folder) as scratch:
        for column in ("offsets", "sizes", "tokens", "truncated"):
            np.save(scratch / f"{column}.npy", np.fromiter((v for shard in shards for v in getattr(shard, column)),
                                                           dtype=np.int64))
        np.save(scratch / "bounds.npy", np.cumsum([0] + [len(shard.tokens) for shard in shards]))
        shape = [len(source) for source in lines]
        (scratch / "lines.json").write_text(json.dumps({"shards": shape, "reasons": [s.reasons for s in shards]}))


def load_lines(folder: Path) -> list[list[_ShardLines]]:
    meta = json.loads((folder / "lines.json").read_text())
    columns = {c: np.load(folder / f"{c}.npy").tolist() for c in ("offsets", "sizes", "tokens", "truncated")}
    bounds = np.load(folder / "bounds.npy").tolist()
    shards = [_ShardLines(*(columns[c][a:b] for c in ("offsets", "sizes", "tokens", "truncated")),
                          reasons={int(k): v for k, v in reasons.items()})
              for a, b, reasons in zip(bounds[:-1], bounds[1:], meta["reasons"], strict=True)]
    it = iter(shards)
    return [[next(it) for _ in range(n)] for n in meta["shards"]]


class _RangeReader:
    """Byte ranges of shards: local files through pread on a kept descriptor, others through fsspec."""

    def __init__(self) -> None:
        self._local: dict[str, int] = {}
        self._remote: dict[str, tuple[fsspec.AbstractFileSystem, str]] = {}

    def read(self, url: str, offset: int, size: int) -> bytes:
        if url in self._local:
            return os.pread(self._local[url], size, offset)
        if url not in self._remote:
            fs, path = fsspec.core.url_to_fs(url)
            if is_local_fs(fs):
                self._local[url] = os.open(path, os.O_RDONLY)
                return self.read(url, offset, size)
            self._remote[url] = (fs, path)
        fs, path = self._remote[url]
        return fs.cat_file(path, start=offset, end=offset + size)

    def __del__(self) -> None:
        for descriptor in self._local.values():
            with contextlib.suppress(OSError):
                os.close(descriptor)


# --- batches -----------------------------------------------------------------------------------------------
def collate(samples: list[Sample], pixels: list[torch.Tensor] | None, pad_id: int) -> dict[str, Any]:
    """B samples and their (3, S, S) images -> a training batch.

    pixels (B, 3, S, S) float32 (absent when `pixels` is None); input_ids, attention_mask, labels (B, T)
    int64 with T the longest sample,
    right-padded with pad_id, 0 and IGNORE_INDEX; ids: the B record ids.
    """
    width = max(len(s.input_ids) for s in samples)
    input_ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    attention_mask = torch.zeros_like(input_ids)
    for row, sample in enumerate(samples):
        n = len(sample.input_ids)
        input_ids[row, :n] = torch.tensor(sample.input_ids)
        labels[row, :n] = torch.tensor(sample.labels)
        attention_mask[row, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "ids": [s.id for s in samples]}
    return batch if pixels is None else {"pixels": torch.stack(pixels), **batch}


@dataclass(frozen=True)
class BatchInfo:
    """What a delivered batch tells its stream: its position and what it cost."""

    epoch: int
    step: int  # index among this rank's batches of the epoch
    samples: int
    text_tokens: int  # B * T
    pad_tokens: int
    skipped: dict[str, int]
    truncated: int


@dataclass
class StreamStats:
    """Totals over the batches delivered so far (kept across resume)."""

    batches: int = 0
    samples: int = 0
    text_tokens: int = 0
    pad_tokens: int = 0
    truncated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def padding_fraction(self) -> float:
        """Pad tokens / all text tokens of the delivered batches."""
        return self.pad_tokens / self.text_tokens if self.text_tokens else 0.0

    def add(self, info: BatchInfo) -> None:
        self.batches += int(info.samples > 0)
        self.samples += info.samples
        self.text_tokens += info.text_tokens
        self.pad_tokens += info.pad_tokens
        self.truncated += info.truncated
        for reason, n in info.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n


def load_batch(samples: list[Sample], model_config: EarthGPTConfig, images: bool, pad_id: int,
               skipped: Counter[str]) -> dict[str, Any] | None:
    """Decode and preprocess the samples' images (unless `images` is False) and collate them; samples whose
    image cannot be read are left out and counted in `skipped`. None when no sample is left."""
    if not images:
        return collate(samples, None, pad_id)
    kept, pixels = [], []
    for sample in samples:
        try:
            pixels.append(preprocess(load_record_image(sample.image_root, sample.image), model_config))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            logger.warning("skipping record %s: %s %s (%s)", sample.id, UNREADABLE_IMAGE, sample.image, error)
            skipped[UNREADABLE_IMAGE] += 1
            continue
        kept.append(sample)
    return collate(kept, pixels, pad_id) if kept else None


def _worker_share() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


class MMRSStream(IterableDataset):
    """The batches of one rank, epoch after epoch; `len()` is this rank's batches per epoch.

    Yields collated batches (see `collate`) plus "info" (a BatchInfo) for `StreamLoader`, which hands it to
    `record`; a batch whose images all fail to load is only its "info". The stream moves to the next epoch
    when the last batch of one is recorded. `resumable=False` (validation) replays epoch 0 every time.
    """

    def __init__(self, sources: list[Source], config: DataConfig, model_config: EarthGPTConfig,
                 tokenizer: PreTrainedTokenizerBase, weights: Mapping[str, float] | None = None,
                 rank: int = 0, world_size: int = 1, resumable: bool = True):
        self.sources = sources
        self.config = config
        self.model_config = model_config
        self.encoder = _Encoder(tokenizer, model_config.max_text_tokens, config.tasks, config.holdout_permille,
                                vary_seed=_vary_seed(config))
        self.pad_id = tokenizer.pad_token_id
        self.quota = quotas(sources, weights)
        self.rank, self.world_size, self.resumable = rank, world_size, resumable
        self.epoch, self.position = 0, 0
        self.stats = StreamStats()
        if len(self) == 0:
            raise ValueError(f"{sum(self.quota.values())} samples make no batch of {config.batch_size} "
                             f"on each of {world_size} ranks")

    def __len__(self) -> int:
        return math.ceil(sum(self.quota.values()) / self.config.batch_size) // self.world_size

    @property
    def _encoding(self) -> dict[str, Any]:
        """What decides how each line encodes, the part every key below holds: the data, the tasks, the holdout,
        the text budget, prompt variation (absent when off, so the keys stay those of older plans) and the
        planning code (a plan stored by other code is never reused, so a machine's cache cannot change a run)."""
        c = self.config
        variation = {} if self.encoder.vary_seed is None else {"vary_seed": self.encoder.vary_seed}
        return {"tasks": c.tasks, "holdout_permille": c.holdout_permille, "max_tokens": self.encoder.max_tokens,
                **variation, "code": planning_code_version(),
                "sources": [(s.name, s.content_hash, [posixpath.basename(u) for u in s.shard_urls])
                            for s in self.sources]}

    @property
    def _batching(self) -> dict[str, Any]:
        c = self.config
        return {"seed": c.seed, "batch_size": c.batch_size, "group_by_length": c.group_by_length,
                "bucket_batches": c.bucket_batches, "shuffle_buffer": c.shuffle_buffer, "quota": self.quota}

    @property
    def fingerprint(self) -> str:
        """Hash of everything that decides the batches; a saved position is only valid for the same one."""
        return _digest({**self._encoding, **self._batching, "vocab": len(self.encoder.tokenizer),
                        "world_size": self.world_size})

    @property
    def plan_key(self) -> str:
        """Hash of everything that decides an epoch's plan (over all ranks): the fingerprint's settings less the
        number of ranks, and the whole tokenizer (its lengths decide the length grouping)."""
        return _digest({**self._encoding, **self._batching, "tokenizer": tokenizer_digest(self.encoder.tokenizer)})

    @property
    def lines_key(self) -> str:
        """Hash of what decides how each line encodes: the data, the tasks, the holdout, the text budget and the
        whole tokenizer (not the order, the batching or the mixing)."""
        return _digest({**self._encoding, "tokenizer": tokenizer_digest(self.encoder.tokenizer)})

    # --- the plan: no images -------------------------------------------------------------------------------
    def encoded_lines(self) -> list[list[_ShardLines]]:
        """Every line of the selected shards encoded once per run (on a machine), stored in the plan cache
        (`lines-<key>`): token counts and skips for every epoch's plan."""
        folder = plan_cache() / f"lines-{self.lines_key[:24]}"
        if not (folder / "lines.json").exists():
            with _locked(folder):
                if not (folder / "lines.json").exists():
                    save_lines(folder, encode_lines(self.encoder, self.sources))
        return load_lines(folder)

    def _source_rows(self, index: int, source: Source, epoch: int, lines: list[_ShardLines]) -> Iterator[_Row]:
        """Good samples of one source, pass after pass (each pass reshuffled); raises if a pass has none."""
        pending: Counter[str] = Counter()  # skipped since the previous sample
        for cycle in count():
            rng = _rng(self.config.seed, epoch, source.name, cycle)
            order = rng.sample(range(len(source.shard_urls)), len(source.shard_urls))
            items = ((shard, i) for shard in order for i in range(len(lines[shard].tokens)))
            produced, skipped = 0, Counter()
            for shard, i in _shuffled(items, self.config.shuffle_buffer, rng):
                encoded = lines[shard]
                tokens = encoded.tokens[i]
                if tokens == SKIPPED:
                    pending[encoded.reasons[i]] += 1
                    skipped[encoded.reasons[i]] += 1
                elif tokens != IGNORED:
                    produced += 1
                    yield _Row((index, shard, encoded.offsets[i], encoded.sizes[i]), tokens, dict(pending),
                               encoded.truncated[i])
                    pending = Counter()
            if not produced:
                raise ValueError(f"source {source.name!r} has no usable record in {list(source.shard_urls)}; "
                                 f"skipped: {dict(skipped)}")

    def plan(self, epoch: int) -> Iterator[_PlannedRows]:
        """Every batch of `epoch` over all ranks, in order, from the encoded lines (no image, no tokenising)."""
        lines = self.encoded_lines()
        streams = {s.name: self._source_rows(i, s, epoch, lines[i]) for i, s in enumerate(self.sources)
                   if s.name in self.quota}
        rows = _mix(streams, self.quota, _rng(self.config.seed, epoch, "mix"))
        order = _rng(self.config.seed, epoch, "batches")
        size = self.config.batch_size
        window = size * self.config.bucket_batches if self.config.group_by_length else size
        index = 0
        while chunk := list(islice(rows, window)):
            skipped: Counter[str] = Counter()
            for row in chunk:
                skipped.update(row.skipped)
            skipped_now, truncated = dict(skipped), sum(row.truncated for row in chunk)
            for batch in _cut(chunk, size, self.config.group_by_length, order):
                yield _PlannedRows(index, batch, skipped_now, truncated)
                index += 1
                skipped_now, truncated = {}, 0

    def plan_index(self, epoch: int) -> PlanIndex:
        """The stored plan of `epoch`: found in the plan cache, or computed now by this process while the
        others on the machine wait for it (a file lock); memory-mapped, kept for this process."""
        plans = self.__dict__.setdefault("_plans", {})
        if epoch not in plans:
            folder = plan_cache() / self.plan_key[:24] / f"epoch-{epoch:05d}"
            if not PlanIndex.complete(folder):
                with _locked(folder):
                    if not PlanIndex.complete(folder):
                        PlanIndex.write(folder, self.plan(epoch))
            plans.clear()  # one epoch at a time
            plans[epoch] = PlanIndex.open(folder)
        return plans[epoch]

    def planned_batch(self, plan: PlanIndex, index: int) -> PlannedBatch:
        """Batch `index` of a stored plan: its records read again at their offsets and encoded."""
        samples = []
        for source, shard, offset, size in plan.locations(index):
            home = self.sources[source]
            line = self._reader.read(home.shard_urls[shard], offset, size)
            sample = self.encoder(line, home.image_root, _Tally())
            if sample is None:
                raise ValueError(f"{home.shard_urls[shard]} changed after its plan was made (byte {offset}): "
                                 f"remove {plan.folder} and start again")
            samples.append(sample)
        skipped, truncated = plan.tally(index)
        return PlannedBatch(index, samples, skipped, truncated)

    @property
    def _reader(self) -> _RangeReader:
        return self.__dict__.setdefault("_ranges", _RangeReader())

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for DataLoader workers without the memory maps and open files (each process opens its own)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_plans", "_ranges")}

    # --- delivery ------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch, start = self.epoch, self.position
        worker, workers = _worker_share()
        plan = self.plan_index(epoch)
        for step in range(start, len(self)):
            if (step - start) % workers == worker:
                yield self._load(self.planned_batch(plan, step * self.world_size + self.rank), epoch, step)

    def _load(self, planned: PlannedBatch, epoch: int, step: int) -> dict[str, Any]:
        """The collated batch with "info"; samples whose image cannot be read are left out and counted."""
        skipped = Counter(planned.skipped)
        batch = load_batch(planned.samples, self.model_config, self.config.images, self.pad_id, skipped)
        if batch is None:
            return {"info": BatchInfo(epoch, step, 0, 0, 0, dict(skipped), planned.truncated)}
        text = batch["input_ids"].numel()
        pad = text - int(batch["attention_mask"].sum())
        batch["info"] = BatchInfo(epoch, step, len(batch["ids"]), text, pad, dict(skipped), planned.truncated)
        return batch

    def record(self, info: BatchInfo) -> None:
        """Called as a batch reaches the consumer: count it and move the position past it."""
        self.stats.add(info)
        if not self.resumable:
            return
        if info.step + 1 < len(self):
            self.epoch, self.position = info.epoch, info.step + 1
        else:
            self.epoch, self.position = info.epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first batch (no-op if the stream is already in it)."""
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "fingerprint": self.fingerprint,
                "stats": asdict(self.stats)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["fingerprint"] != self.fingerprint:
            raise ValueError("the saved data position belongs to other data or batching settings (seed, batch "
                             "size, sources, splits, tasks, weights, tokenizer, ranks); it cannot be resumed "
                             "exactly: restore those settings or start a new run")
        self.epoch, self.position = state["epoch"], state["position"]
        self.stats = StreamStats(**state["stats"])


class StreamLoader(DataLoader):
    """A DataLoader over an MMRSStream (batches come ready-made: batch_size=None). In this process it hands
    each batch's BatchInfo back to the stream before yielding it, so the stream's position is the batches the
    consumer received, with or without worker processes (workers take turns: batch k comes from worker
    k mod num_workers, and the DataLoader returns them in that order).

    Its state_dict is the stream's, so Lightning also resumes it when it is passed without the DataModule.
    """

    def __init__(self, stream: MMRSStream, num_workers: int = 0):
        super().__init__(stream, batch_size=None, num_workers=num_workers)
        self.stream = stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.stream.plan_index(self.stream.epoch)  # here, before worker processes start and map it
        for batch in super().__iter__():
            self.stream.record(batch.pop("info"))
            if batch:
                yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.stream.load_state_dict(state_dict)


# --- validation on held-out records ------------------------------------------------------------------------
def held_out_samples(sources: list[Source], config: DataConfig, model_config: EarthGPTConfig,
                     tokenizer: PreTrainedTokenizerBase) -> list[Sample]:
    """Up to `config.val_samples` held-out samples (see `held_out`), each source's share by its size, taken
    in shard order (a source is read until its share is found, or to its end)."""
    encoder = _Encoder(tokenizer, model_config.max_text_tokens, config.tasks, config.holdout_permille, held_out=True,
                       vary_seed=_vary_seed(config))
    total = sum(s.size for s in sources)
    samples: list[Sample] = []
    tally = _Tally()
    for source in sources:
        share = max(1, round(config.val_samples * source.size / total))
        found = (sample for url in source.shard_urls for _, line in _lines(url)
                 if (sample := encoder(line, source.image_root, tally)) is not None)
        samples += islice(found, share)
    return samples


class HeldOutBatches(IterableDataset):
    """The validation batches: held-out samples sorted by length, the same batches every time."""

    def __init__(self, samples: list[Sample], config: DataConfig, model_config: EarthGPTConfig, pad_id: int):
        ordered = sorted(samples, key=lambda s: (len(s.input_ids), s.id))
        self.batches = [ordered[i:i + config.batch_size] for i in range(0, len(ordered), config.batch_size)]
        self.model_config, self.images, self.pad_id = model_config, config.images, pad_id

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker, workers = _worker_share()
        for i, samples in enumerate(self.batches):
            if i % workers == worker:
                batch = load_batch(samples, self.model_config, self.images, self.pad_id, Counter())
                if batch is not None:
                    yield batch


# --- Lightning -----------------------------------------------------------------------------------------------
class MMRSDataModule(L.LightningDataModule):
    """Training and validation batches over MMRS shards for both training stages.

    Batches: pixels (B, 3, S, S); input_ids, attention_mask, labels (B, T); ids (B record ids).
    `state_dict()` (saved by Lightning in checkpoints) is the training stream's position and statistics;
    after `load_state_dict` the stream continues with the next batch. `stats` has the padding fraction and
    the skip counts so far.
    """

    def __init__(self, config: DataConfig, model_config: EarthGPTConfig, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config = config
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.train_stream: MMRSStream | None = None
        self.val_stream: MMRSStream | None = None
        self.held_out: HeldOutBatches | None = None
        self._saved_state: dict[str, Any] | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read the manifests once (later calls keep the streams and their position)."""
        if self.train_stream is not None:
            return
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        self.train_stream = self._stream(self.config.train_splits, self.config.weights, rank, world_size, True)
        if self.config.val_splits:
            self.val_stream = self._stream(self.config.val_splits, None, rank, world_size, False)
        if self.config.holdout_permille:
            samples = held_out_samples(self.train_stream.sources, self.config, self.model_config, self.tokenizer)
            if samples:
                self.held_out = HeldOutBatches(samples, self.config, self.model_config, self.tokenizer.pad_token_id)
            else:
                logger.warning("no held-out records (holdout_permille=%d): no validation loss",
                               self.config.holdout_permille)
        if self._saved_state is not None:
            self.train_stream.load_state_dict(self._saved_state)
            self._saved_state = None

    def _stream(self, splits: tuple[str, ...] | None, weights: Mapping[str, float] | None, rank: int,
                world_size: int, resumable: bool) -> MMRSStream:
        return MMRSStream(load_sources(self.config, splits), self.config, self.model_config, self.tokenizer,
                          weights, rank, world_size, resumable)

    def train_dataloader(self) -> StreamLoader:
        return StreamLoader(self._train(), self.config.num_workers)

    def val_dataloader(self) -> StreamLoader | DataLoader | list:
        """The held-out records or splits, the same batches every time; [] (no validation) without either."""
        if self.held_out is not None:
            return DataLoader(self.held_out, batch_size=None, num_workers=self.config.num_workers)
        if self.val_stream is None:
            self._train()  # raises before setup()
            return []
        return StreamLoader(self.val_stream, self.config.num_workers)

    def _train(self) -> MMRSStream:
        if self.train_stream is None:
            raise RuntimeError("call setup() first (the Lightning Trainer does)")
        return self.train_stream

    @property
    def stats(self) -> StreamStats:
        return self._train().stats

    @property
    def validates(self) -> bool:
        """Whether there is validation data: held-out records or validation splits."""
        return bool(self.config.holdout_permille or self.config.val_splits)

    def state_dict(self) -> dict[str, Any]:
        if self.train_stream is None:
            return dict(self._saved_state or {})
        return self.train_stream.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.train_stream is None:
            self._saved_state = dict(state_dict)
        else:
            self.train_stream.load_state_dict(state_dict)
