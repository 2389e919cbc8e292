"""Noticing a changed raw release cheaply: listings of names, sizes and versions (modification times, or the
object store's ETags), advanced a time budget at a time, with all progress in a small JSON state.

A release's listing summary is (files, bytes, digest); the digest is the sum, modulo 2^64, of a 64-bit
BLAKE2b of each file's "relative path, size, version", so it does not depend on listing order and a
partial sum can be carried from one call to the next. Any added, removed, resized or rewritten file
changes it.

`ReleaseScan.advance(roots, budget)` continues the scan where the state left it: release after release, a
local folder directory by directory (os.scandir), an S3 prefix page by page (1,000 keys, resumed after
the last key), any other fsspec filesystem directory by directory (its `ls`). It lists at least one
directory or page, then stops when the budget is spent or when every release has been listed once in this
call, and returns the releases
whose listing finished with a summary different from the previous one. A release seen for the first time
is recorded, not reported; a release folder that does not exist is listed as absent, so one that
appears is reported. The state is what a Dagster sensor keeps as its cursor (pipelines/sensors.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec

from mmrs.storage import fs_protocol, is_local_fs

MASK = (1 << 64) - 1
PAGE = 1000  # keys per S3 list request (the API's maximum)


def file_hash(rel: str, size: int, version: object) -> int:
    """64-bit BLAKE2b of one file's listing entry."""
    digest = hashlib.blake2b(f"{rel}\0{size}\0{version}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Summary:
    """A release's listing: files, bytes, and the order-free digest (16 hex digits); `absent`: no folder."""

    files: int = 0
    bytes: int = 0
    digest: str = "0" * 16
    absent: bool = False

    @property
    def version(self) -> str:
        return "absent" if self.absent else f"{self.digest}-{self.files}-{self.bytes}"


@dataclass
class _Partial:
    """A release's listing in progress."""

    name: str
    pending: list[str] = field(default_factory=list)  # local/generic: directories still to list (relative)
    after: str | None = None  # S3: the last key listed
    files: int = 0
    bytes: int = 0
    total: int = 0  # the digest's running sum
    started: bool = False

    def add(self, rel: str, size: int, version: object) -> None:
        self.files += 1
        self.bytes += size
        self.total = (self.total + file_hash(rel, size, version)) & MASK

    def summary(self) -> Summary:
        return Summary(self.files, self.bytes, f"{self.total:016x}")


@dataclass(frozen=True)
class Change:
    """A release whose listing changed: its name, the summary before and now."""

    name: str
    before: Summary
    now: Summary


class ReleaseScan:
    """Listings of named releases (name -> root URL), advanced incrementally; see the module notes."""

    def __init__(self, state: Mapping[str, Any] | None = None):
        state = dict(state or {})
        self.done: dict[str, Summary] = {k: Summary(**v) for k, v in state.get("done", {}).items()}
        self.current: _Partial | None = _Partial(**state["current"]) if state.get("current") else None
        self.next: str | None = state.get("next")  # the release to list after the current one

    @classmethod
    def from_cursor(cls, cursor: str | None) -> ReleaseScan:
        return cls(json.loads(cursor) if cursor else None)

    def to_cursor(self) -> str:
        return json.dumps({"done": {k: asdict(v) for k, v in sorted(self.done.items())},
                           "current": asdict(self.current) if self.current else None, "next": self.next},
                          separators=(",", ":"))

    def advance(self, roots: Mapping[str, str], budget_seconds: float,
                clock: Callable[[], float] = time.monotonic) -> list[Change]:
        """List for about `budget_seconds`; the releases whose finished listing differs from the last one."""
        names = list(roots)
        if not names:
            return []
        deadline = clock() + budget_seconds
        changes: list[Change] = []
        finished_now: set[str] = set()
        while True:
            if self.current is None or self.current.name not in roots:
                name = self.next if self.next in roots else names[0]
                if name in finished_now:
                    break  # every release listed once in this call
                self.current = _Partial(name)
            partial = self.current
            if not _list_some(partial, roots[partial.name], deadline, clock):
                break  # out of time; the partial listing waits in the state
            summary = partial.summary() if partial.started else Summary(absent=True)
            before = self.done.get(partial.name)
            if before is not None and before.version != summary.version:
                changes.append(Change(partial.name, before, summary))
            self.done[partial.name] = summary
            finished_now.add(partial.name)
            self.next = names[(names.index(partial.name) + 1) % len(names)]
            self.current = None
            if clock() >= deadline:
                break
        return changes


def _list_some(partial: _Partial, root: str, deadline: float, clock: Callable[[], float]) -> bool:
    """Advance `partial` until done (True) or the deadline (False); at least one directory or page."""
    fs, base = fsspec.core.url_to_fs(root)
    base = base.rstrip("/")
    if not partial.started:
        if not fs.isdir(base):
            return True  # absent: `started` stays False
        partial.started = True
        partial.pending = [""]
    if fs_protocol(fs) == "s3":
        return _list_s3(fs, base, partial, deadline, clock)
    lister = _scandir if is_local_fs(fs) else _fsspec_ls(fs)
    while partial.pending:
        rel_dir = partial.pending.pop()
        for rel, size, version, is_dir in lister(base, rel_dir):
            if is_dir:
                partial.pending.append(rel)
            else:
                partial.add(rel, size, version)
        if partial.pending and clock() >= deadline:
            return False
    return True


def _scandir(base: str, rel_dir: str) -> Iterator[tuple[str, int, object, bool]]:
    """A local directory's entries: (relative path, size, mtime in ns, is a directory); links not followed."""
    try:
        entries = list(os.scandir(os.path.join(base, rel_dir) if rel_dir else base))
    except FileNotFoundError:  # removed while listing: what is left is listed
        return
    for entry in entries:
        rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                yield rel, 0, None, True
            else:
                stat = entry.stat(follow_symlinks=False)
                yield rel, stat.st_size, stat.st_mtime_ns, False
        except FileNotFoundError:
            continue


def _fsspec_ls(fs: fsspec.AbstractFileSystem) -> Callable[[str, str], Iterator[tuple[str, int, object, bool]]]:
    def ls(base: str, rel_dir: str) -> Iterator[tuple[str, int, object, bool]]:
        folder = posixpath.join(base, rel_dir) if rel_dir else base
        for info in fs.ls(folder, detail=True):
            rel = posixpath.relpath(info["name"].rstrip("/"), base)
            if info.get("type") == "directory":
                yield rel, 0, None, True
            else:
                version = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("updated")
                yield rel, int(info.get("size") or 0), version, False
    return ls


def _list_s3(fs, base: str, partial: _Partial, deadline: float, clock: Callable[[], float]) -> bool:
    """Every key under the prefix, a page at a time, resumed after the last key listed (ETag as version)."""
    bucket, _, prefix = base.partition("/")
    prefix = f"{prefix}/" if prefix else ""
    while True:
        request = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE}
        if partial.after:
            request["StartAfter"] = partial.after
        page = fs.call_s3("list_objects_v2", **request)
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith("/"):  # folder markers
                partial.add(key[len(prefix):], int(item["Size"]), item.get("ETag", "").strip('"'))
            partial.after = key
        if not page.get("IsTruncated"):
            partial.pending = []
            return True
        if clock() >= deadline:
            return False
