"""Weight folders on local disk or object storage. Nothing is ever fetched from a model hub."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import fsspec


def cache_dir() -> Path:
    """Where s3:// weight folders are copied: $EARTHGPT_WEIGHT_CACHE or ~/.cache/earthgpt/weights."""
    return Path(os.environ.get("EARTHGPT_WEIGHT_CACHE", Path.home() / ".cache" / "earthgpt" / "weights"))


class MissingWeightsError(FileNotFoundError):
    """A configured weight folder or file does not exist."""


def localize(path: str, what: str) -> Path:
    """A local directory holding `path`'s files: local paths are checked, `s3://...` folders are copied
    once into the cache, keyed by the URI and its listing (names, sizes, ETags or modification times), so a
    folder written again at the same URI is copied again. `what` names the weights in the error message."""
    if "://" not in path:
        local = Path(path).expanduser()
        if not local.exists():
            raise MissingWeightsError(f"{what} weights not found: {local} does not exist")
        return local
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.exists(root):
        raise MissingWeightsError(f"{what} weights not found: {path} does not exist")
    target = cache_dir() / hashlib.sha256(f"{path}\n{_listing(fs, root)}".encode()).hexdigest()[:16]
    if not (target / ".complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        if fs.isdir(root):
            fs.get(root.rstrip("/") + "/", str(target), recursive=True)
        else:
            fs.get(root, str(target / Path(root).name))
        (target / ".complete").touch()
    return target if fs.isdir(root) else target / Path(root).name


def _listing(fs, root: str) -> str:
    """One line per file under `root` (or of `root`): name, size, ETag or modification time."""
    entries = fs.find(root, detail=True) if fs.isdir(root) else {root: fs.info(root)}
    return "\n".join(f"{name} {info.get('size')} {info.get('ETag') or info.get('LastModified') or info.get('mtime')}"
                     for name, info in sorted(entries.items()))
