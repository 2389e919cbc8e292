"""The model's input: any image file or array -> (3, S, S) float tensor in [0, 1].

Steps: decode (PIL; 16-bit TIFF through tifffile; `mmrs.imaging.read_pixels`, bounded by a pixel limit per
image checked in the header before any pixel is decoded), to RGB uint8 (`mmrs.imaging.to_rgb_uint8`: single
channel replicated, 16-bit SAR log-stretched), centred pad to square with black, bicubic resize to S,
scale to [0, 1]. Each encoder normalises with its own mean and std inside the model (models/vision.py).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import fsspec
import numpy as np
import torch
from PIL import Image

from mmrs.imaging import MAX_IMAGE_PIXELS, pad_to_square, read_pixels, to_rgb_uint8
from models.config import EarthGPTConfig


def read_image(source: str | Path | bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a file path or encoded bytes to an array, keeping 16-bit depth. mmrs.imaging.ImageTooLargeError
    above `max_pixels` (the conversion's limit by default: no record's image exceeds it), UnreadableImageError
    for bytes that do not decode (empty, truncated, not an image): ValueErrors naming the file."""
    name = "image" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return read_pixels(data, max_pixels, name)


def load_record_image(image_root: str, image: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Pixels of an MMRS record's image: `image` is relative to `image_root` (local or s3://). A member of a
    tar archive (webdataset shards) is written "shard-00000.tar::000000123.jpg"."""
    archive, sep, member = image.partition("::")
    url = (f"tar://{member}::{posixpath.join(image_root, archive)}" if sep
           else posixpath.join(image_root, image))
    with fsspec.open(url, "rb") as f:
        return read_pixels(f.read(), max_pixels, url)


def preprocess(pixels: np.ndarray, config: EarthGPTConfig) -> torch.Tensor:
    """(H, W[, C]) image -> (3, S, S) float32 in [0, 1], S = config.image_size."""
    rgb = pad_to_square(to_rgb_uint8(pixels))
    resized = Image.fromarray(rgb).resize((config.image_size, config.image_size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
