"""Pixel conversions shared by the builder, the sample corpus and the model's image transform.

- 16-bit (and float) single-channel SAR: 20*log10 amplitude, 1st..99th percentile stretched to 0..255.
  A plain `>> 8` would leave almost every pixel black (the amplitude histogram has a long tail).
- Single-channel images become RGB by replicating the channel, which is what RGB-trained encoders expect.
- Pad to square: centred, offsets int((side - W) / 2) and int((side - H) / 2), the MMRS-1M rule that
  box normalisation uses too.
"""

from __future__ import annotations

import numpy as np


def log_stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """(H, W) amplitude-like array of any numeric dtype -> (H, W) uint8."""
    db = 20.0 * np.log10(values.astype(np.float64) + 1e-4)
    lo, hi = np.percentile(db, [1.0, 99.0])
    return np.clip((db - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)


def to_rgb_uint8(pixels: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image -> (H, W, 3) uint8."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3:
        pixels = pixels[..., :3]
    if pixels.dtype != np.uint8:
        if pixels.ndim == 3:
            raise ValueError(f"multi-channel {pixels.dtype} images need a band-specific conversion")
        pixels = log_stretch_to_uint8(pixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return pixels


def pad_offsets(width: int, height: int) -> tuple[int, int, int]:
    """(side, pad_x0, pad_y0) of the centred square padding."""
    side = max(width, height)
    return side, int((side - width) / 2), int((side - height) / 2)


def pad_to_square(pixels: np.ndarray, fill: int = 0) -> np.ndarray:
    """(H, W, C) -> (side, side, C), image centred by `pad_offsets`."""
    h, w = pixels.shape[:2]
    side, x0, y0 = pad_offsets(w, h)
    out = np.full((side, side, *pixels.shape[2:]), fill, dtype=pixels.dtype)
    out[y0:y0 + h, x0:x0 + w] = pixels
    return out
