"""JSON Lines shards, manifests and statistics of converted sources (local paths or s3:// URLs).

Layout under OUT:
    <source>/<split>-00000.jsonl      records, at most `max_records` per shard
    <source>/quarantine.jsonl         skipped inputs with reasons
    <source>/manifest.json            counts, shard hashes, quarantine summary, image and raw roots
                                      (relative to <source>/ when local: see relative_location)
    <source>/tiles/*.png              cut tiles of large scenes (tiled sources only)
    mmrs_1m.json, mmrs_1m_stats.md    the merged manifest and the Table I-style statistics

Every file is written to a temporary name and renamed into place, so a reader never sees half a shard (nor
half a quarantine report); `clean_leftovers` removes what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, AnyStr

import fsspec
import orjson

from mmrs.storage import is_local_fs


def join(url: str, *parts: str) -> str:
    return posixpath.join(url.rstrip("/"), *parts)


def relative_location(target: str, base: str, anchor: str) -> str:
    """How a manifest in folder `base` records `target` (an image or raw root): relative to `base` when both
    are local and `target` lies inside the local folder `anchor` (the folder the converted corpus sits in,
    e.g. data/ for data/sample -> data/mmrs), so that data moved together keeps working (another clone, a
    DVC checkout, a bucket) and the same input gives the same bytes anywhere. Otherwise `target` as it is:
    a fixed location such as /datasets/DOTA, or an object-store URL."""
    target_fs, target_path = fsspec.core.url_to_fs(target)
    base_fs, base_path = fsspec.core.url_to_fs(base)
    anchor_fs, anchor_path = fsspec.core.url_to_fs(anchor)
    if not (is_local_fs(target_fs) and is_local_fs(base_fs) and is_local_fs(anchor_fs)):
        return target
    if posixpath.commonpath([target_path, anchor_path]) != anchor_path:
        return target
    return posixpath.relpath(target_path, base_path)


def resolve_location(location: str, base: str) -> str:
    """The inverse of relative_location: a location read from the manifest in folder `base`, as a path or
    URL to open ('..' resolved, also in URLs: a local corpus copied to a bucket with its raw data works).
    A relative location that would climb out of the bucket is an error."""
    if "://" in location or posixpath.isabs(location):
        return location
    protocol, sep, path = base.rpartition("://")
    resolved = posixpath.normpath(posixpath.join(path, location))
    if sep and (resolved.startswith("..") or resolved.split("/")[0] != path.split("/")[0]):
        raise ValueError(f"{location!r} from {base} leaves the bucket")
    return f"{protocol}{sep}{resolved}"


def atomic_write_bytes(url: str, data: bytes) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open(tmp, "wb") as f:
        f.write(data)
    fs.mv(tmp, path)


@contextlib.contextmanager
def atomic_writer(url: str) -> Iterator[Any]:
    """A text file (UTF-8) written under a temporary name beside `url` and renamed to `url` when the block
    ends without error; on an error the temporary file is removed and `url` keeps what it held."""
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(tmp, "w", encoding="utf-8") as f:
            yield f
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.rm(tmp)
        raise


_TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{8}$")
_SHARD = re.compile(r"^[^/]+-\d{5}\.jsonl$")


def clean_leftovers(out: str, keep: Iterable[str] | None = None, folders: Iterable[str] | None = None) -> list[str]:
    """Remove what an interrupted conversion left in a source's output folder `out`: temporary files of
    atomic writes (`*.tmp-xxxxxxxx`, also among the tiles) and, given the shard names of the manifest just
    written (`keep`), shard files it does not list (a previous run's extra shards). `folders`: the sub-folders
    to look in (default: the folder and its tiles before a run, the folder alone after it). Returns what was
    removed."""
    fs, base = fsspec.core.url_to_fs(out)
    if not fs.isdir(base):
        return []
    removed, kept = [], set(keep or ())
    if folders is None:
        folders = ("",) if keep is not None else ("", "tiles")  # after a run: no tile temps
    for folder in (posixpath.join(base, sub) if sub else base for sub in folders):
        if not fs.isdir(folder):
            continue
        for path in fs.ls(folder, detail=False):
            name = posixpath.basename(path.rstrip("/"))
            stale = keep is not None and _SHARD.match(name) and name not in kept
            if _TEMPORARY.search(name) or stale:
                fs.rm(path)
                removed.append(name)
    return removed


def encode_record(record: dict[str, Any]) -> bytes:
    """One JSON Lines line of a record (compact UTF-8, as json.dumps(separators=(",", ":")) writes it, with
    the Unicode line separators escaped: see `escape_line_separators`). ValueError when it cannot be written:
    text that is not valid Unicode (a lone surrogate from a JSON escape or a file name), or a number JSON
    cannot hold."""
    try:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError as error:
        raise ValueError(f"record {record.get('id')!r} cannot be written: {error}") from None
    return escape_line_separators(line)


# U+0085, U+2028 and U+2029 are valid raw inside JSON strings, but str.splitlines() and JavaScript split lines
# on them: a caption or a damaged annotation holding one would cut its JSON Lines line in two for such readers.
_LINE_SEPARATORS = {char: f"\\u{ord(char):04x}" for char in "\x85\u2028\u2029"}
_LINE_SEPARATOR_BYTES = {char.encode(): escape.encode() for char, escape in _LINE_SEPARATORS.items()}


def escape_line_separators(line: AnyStr) -> AnyStr:
    """JSON text (str, or UTF-8 bytes) with U+0085, U+2028 and U+2029 written as \\u escapes (the same JSON
    value, one line for every reader)."""
    table = _LINE_SEPARATOR_BYTES if isinstance(line, bytes) else _LINE_SEPARATORS
    for raw, escaped in table.items():
        if raw in line:
            line = line.replace(raw, escaped)
    return line


def write_json(url: str, document: Any) -> None:
    atomic_write_bytes(url, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(url: str) -> Any:
    with fsspec.open(url, "rb") as f:
        return json.loads(f.read())


def read_text(url: str) -> str:
    with fsspec.open(url, "r", encoding="utf-8") as f:
        return f.read()


@dataclass
class _OpenShard:
    split: str
    index: int
    tmp_path: str
    handle: Any
    digest: Any = field(default_factory=hashlib.sha256)
    records: int = 0
    rounds: int = 0
    lines: list[bytes] = field(default_factory=list)  # written and hashed a batch at a time

    def flush(self) -> None:
        if self.lines:
            data = b"".join(self.lines)
            self.handle.write(data)
            self.digest.update(data)
            self.lines.clear()


class ShardWriter:
    """Streams records into per-split shards under `out` (the source's output folder)."""

    def __init__(self, out: str, max_records: int = 50_000):
        self.out = out
        self.fs, self.base = fsspec.core.url_to_fs(out)
        self.fs.makedirs(self.base, exist_ok=True)
        self.max_records = max_records
        self._open: dict[str, _OpenShard] = {}
        self._next_index: dict[str, int] = defaultdict(int)
        self.shards: list[dict[str, Any]] = []
        self.counts: dict[str, dict[str, dict[str, int]]] = {"records": {}, "rounds": {}}

    def write(self, record: dict[str, Any], line: bytes | None = None) -> None:
        """Add a record; `line`: its encode_record, when the caller has it already."""
        split = record["split"]
        shard = self._open.get(split) or self._start(split)
        shard.lines.append(line if line is not None else encode_record(record))
        if len(shard.lines) >= 512:
            shard.flush()
        rounds = len(record["conversations"]) // 2
        shard.records += 1
        shard.rounds += rounds
        task = record["task"]
        per_task = self.counts["records"].setdefault(split, {})
        per_task[task] = per_task.get(task, 0) + 1
        per_task = self.counts["rounds"].setdefault(split, {})
        per_task[task] = per_task.get(task, 0) + rounds
        if shard.records >= self.max_records:
            self._finish(split)

    def _start(self, split: str) -> _OpenShard:
        index = self._next_index[split]
        self._next_index[split] += 1
        tmp = posixpath.join(self.base, f".{split}-{index:05d}.jsonl.tmp-{uuid.uuid4().hex[:8]}")
        shard = _OpenShard(split, index, tmp, self.fs.open(tmp, "wb"))
        self._open[split] = shard
        return shard

    def _finish(self, split: str) -> None:
        shard = self._open.pop(split)
        shard.flush()
        shard.handle.close()
        name = f"{split}-{shard.index:05d}.jsonl"
        self.fs.mv(shard.tmp_path, posixpath.join(self.base, name))
        self.shards.append({"path": name, "split": split, "records": shard.records, "rounds": shard.rounds,
                            "sha256": shard.digest.hexdigest()})

    def close(self) -> list[dict[str, Any]]:
        for split in list(self._open):
            self._finish(split)
        self.shards.sort(key=lambda s: s["path"])
        return self.shards


def content_hash(shards: list[dict[str, Any]]) -> str:
    """One hash over the shards' hashes (order-independent of writing, stable for the same content)."""
    digest = hashlib.sha256()
    for shard in sorted(shards, key=lambda s: s["path"]):
        digest.update(f"{shard['path']}:{shard['sha256']}\n".encode())
    return digest.hexdigest()


def iter_records(url: str) -> Iterator[dict[str, Any]]:
    """Records of one shard file, streamed."""
    with fsspec.open(url, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def iter_source_records(source_out: str, splits: tuple[str, ...] | None = None) -> Iterator[dict[str, Any]]:
    """All records of a converted source (optionally only some splits), shard by shard in name order."""
    manifest = read_json(join(source_out, "manifest.json"))
    for shard in manifest["shards"]:
        if splits is None or shard["split"] in splits:
            yield from iter_records(join(source_out, shard["path"]))
