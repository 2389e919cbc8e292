"""The model's input: any image file or array -> (3, S, S) float tensor in [0, 1].

Steps: decode (PIL; 16-bit TIFF through tifffile), to RGB uint8 (`mmrs.imaging.to_rgb_uint8`: single
channel replicated, 16-bit SAR log-stretched), centred pad to square with black, bicubic resize to S,
scale to [0, 1]. Each encoder normalises with its own mean and std inside the model (models/vision.py).
"""

from __future__ import annotations

import io
import posixpath
from pathlib import Path

import fsspec
import numpy as np
import tifffile
import torch
from PIL import Image

from mmrs.imaging import pad_to_square, to_rgb_uint8
from models.config import EarthGPTConfig


def read_image(source: str | Path | bytes) -> np.ndarray:
    """Decode a file path or encoded bytes to an array, keeping 16-bit depth."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return tifffile.imread(io.BytesIO(data))
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def load_record_image(image_root: str, image: str) -> np.ndarray:
    """Pixels of an MMRS record's image: `image` is relative to `image_root` (local or s3://). A member of a
    tar archive (webdataset shards) is written "shard-00000.tar::000000123.jpg"."""
    archive, sep, member = image.partition("::")
    if sep:
        with fsspec.open(f"tar://{member}::{posixpath.join(image_root, archive)}", "rb") as f:
            return read_image(f.read())
    with fsspec.open(posixpath.join(image_root, image), "rb") as f:
        return read_image(f.read())


def preprocess(pixels: np.ndarray, config: EarthGPTConfig) -> torch.Tensor:
    """(H, W[, C]) image -> (3, S, S) float32 in [0, 1], S = config.image_size."""
    rgb = pad_to_square(to_rgb_uint8(pixels))
    resized = Image.fromarray(rgb).resize((config.image_size, config.image_size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
