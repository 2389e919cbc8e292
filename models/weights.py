"""Weight folders on local disk or object storage. Nothing is ever fetched from a model hub."""

from __future__ import annotations

import hashlib
import json
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


class BadModelError(ValueError):
    """A saved model folder or weight file whose content is not what it claims (not safetensors, cut off)."""


MODEL_FILES = ("earthgpt.json", "model.safetensors")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own bound on the JSON header


def check_safetensors(head: bytes, size: int, name: str) -> None:
    """BadModelError unless `head` (the file's first bytes, at least its header) opens a safetensors file of
    `size` bytes: an 8-byte little-endian header length, a JSON object header, every tensor's byte range
    inside the file. Cheap (no tensor is read), and without torch: a pickle or a truncated download saved
    under the name is refused before any weights are loaded."""
    if size < 8 or len(head) < 8:
        raise BadModelError(f"{name} is not a safetensors file ({size} bytes)")
    length = int.from_bytes(head[:8], "little")
    if not 2 <= length <= min(_MAX_HEADER, size - 8):
        raise BadModelError(f"{name} is not a safetensors file (header length {length} for a file of {size} bytes;"
                            f" a pickle or another format saved under this name?)")
    if len(head) < 8 + length:
        raise BadModelError(f"{name}: safetensors header not read whole")
    try:
        header = json.loads(head[8:8 + length])
    except ValueError:
        raise BadModelError(f"{name} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise BadModelError(f"{name} is not a safetensors file (its header is not a JSON object)")
    data = size - 8 - length
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data):
            raise BadModelError(f"{name} is cut off or damaged: tensor {tensor!r} lies outside the file")


def check_model_folder(path: str) -> None:
    """What `models.io.load_model` needs of a saved model folder, checked without torch and without reading
    the weights (the CLI asks this before loading anything): the folder exists, holds earthgpt.json (JSON)
    and a model.safetensors whose header is sound. MissingWeightsError / BadModelError naming the file."""
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.isdir(root):
        raise MissingWeightsError(f"model folder not found: {path} does not exist")
    for name in MODEL_FILES:
        if not fs.exists(f"{root.rstrip('/')}/{name}"):
            raise MissingWeightsError(f"not a saved EarthGPT model folder: {path} has no {name}")
    try:
        json.loads(fs.cat_file(f"{root.rstrip('/')}/earthgpt.json"))
    except ValueError as error:
        raise BadModelError(f"{path}/earthgpt.json is not JSON: {error}") from None
    weights = f"{root.rstrip('/')}/model.safetensors"
    size = fs.size(weights)
    with fs.open(weights, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else 0
        if 2 <= length <= min(_MAX_HEADER, size - 8):
            head += f.read(length)
    check_safetensors(head, size, f"{path}/model.safetensors")
