"""Record images for scoring and pictures (box crops for CLIP, galleries): RGB uint8 on the padded square,
the frame the records' normalised boxes live in."""

from __future__ import annotations

import posixpath

import fsspec
import numpy as np

from mmrs.imaging import MAX_IMAGE_PIXELS, pad_to_square, read_pixels, to_rgb_uint8


def load_square_rgb(image_root: str, image: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """(side, side, 3) uint8: a record's image (relative to `image_root`, local or s3://; a tar member as
    "shard.tar::member") as RGB, centred on its padded square. 16-bit SAR is log-stretched. Decoded within
    `max_pixels` (mmrs.imaging.read_pixels: refused from the header above it)."""
    archive, sep, member = image.partition("::")
    url = f"tar://{member}::{posixpath.join(image_root, archive)}" if sep else posixpath.join(image_root, image)
    with fsspec.open(url, "rb") as f:
        data = f.read()
    return pad_to_square(to_rgb_uint8(read_pixels(data, max_pixels, url)))


def box_pixels(box: tuple[float, ...], side: int) -> tuple[int, int, int, int]:
    """The pixel window (left, top, right, bottom) of a normalised HBB or OBB (its bounding rectangle) on a
    side x side square, at least one pixel wide and high."""
    xs, ys = box[0::2], box[1::2]
    left = min(max(int(np.floor(min(xs) * side)), 0), side - 1)
    top = min(max(int(np.floor(min(ys) * side)), 0), side - 1)
    right = max(min(int(np.ceil(max(xs) * side)), side), left + 1)
    bottom = max(min(int(np.ceil(max(ys) * side)), side), top + 1)
    return left, top, right, bottom
