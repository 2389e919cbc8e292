"""Pixel conversions shared by the builder, the sample corpus and the model's image transform.

- 16-bit (and float) single-channel SAR: 20*log10 amplitude, 1st..99th percentile stretched to 0..255.
  A plain `>> 8` would leave almost every pixel black (the amplitude histogram has a long tail).
- Single-channel images become RGB by replicating the channel, which is what RGB-trained encoders expect.
- Pad to square: centred, offsets int((side - W) / 2) and int((side - H) / 2), the MMRS-1M rule that
  box normalisation uses too.
- Decoding with a pixel limit per image (`open_image`, `read_pixels`): the size in the header is checked
  against the caller's limit before any pixel is decoded. PIL's process-wide guard (`Image.MAX_IMAGE_PIXELS`,
  179 M pixels, which would refuse real 20,000 px DOTA v2 scenes) is never raised or consulted: every decode
  here is bounded by its own limit, and a decode that fails is one clear error.
"""

from __future__ import annotations

import io
import struct
from typing import IO

import numpy as np
import tifffile
from PIL import Image

# Refuse images whose decoded size would not fit comfortably in memory (40k x 40k RGB8 is 4.8 GB): the default
# limit of conversion (header checks, scene decoding for tiles) and of every decode for training and chat.
MAX_IMAGE_PIXELS = 40_000 * 40_000


class UnreadableImageError(ValueError):
    """Bytes that do not decode as an image (unknown format, truncated, corrupt); the message names the file."""


class ImageTooLargeError(UnreadableImageError):
    """An image header announces more pixels than the caller's limit."""


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"{name} is {width}x{height} pixels, over the limit of {max_pixels} "
                              f"(raise the limit to allow it)")


def open_image(fp: IO[bytes], max_pixels: int = MAX_IMAGE_PIXELS, name: str = "image") -> Image.Image:
    """PIL's lazy image of a binary file object (header read, no pixel decoded), refused above `max_pixels`.

    Image.open's own decompression-bomb check reads the process-wide Image.MAX_IMAGE_PIXELS; this opens the
    file through the same format plugins in the same order without it, so the limit is the caller's."""
    fp.seek(0)
    prefix = fp.read(16)
    Image.preinit()
    image = _open_with_plugins(fp, prefix, Image.ID)
    if image is None:
        tried = set(Image.ID)
        Image.init()
        image = _open_with_plugins(fp, prefix, [f for f in Image.ID if f not in tried])
    if image is None:
        raise UnreadableImageError(f"{name}: not an image (no decoder recognises its first bytes)")
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_large(name, width, height, max_pixels)
    return image


def _open_with_plugins(fp: IO[bytes], prefix: bytes, formats: list[str]) -> Image.Image | None:
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        if accept and accept(prefix) is not True:  # False, or a string: "looks like it but unsupported"
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError, struct.error):
            continue
    return None


def read_pixels(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, name: str = "image") -> np.ndarray:
    """Decoded pixels of an encoded image, keeping its depth (TIFF through tifffile: 16-bit SAR, float; else
    PIL). Raises ImageTooLargeError above `max_pixels` (from the header, before decoding) and
    UnreadableImageError for anything that does not decode whole (empty, truncated, not an image)."""
    if not data:
        raise UnreadableImageError(f"{name}: empty file")
    try:
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages.first
                if page.imagewidth * page.imagelength > max_pixels:
                    raise _too_large(name, page.imagewidth, page.imagelength, max_pixels)
                pixels = page.asarray()
        else:
            with open_image(io.BytesIO(data), max_pixels, name) as image:
                pixels = np.asarray(image)
    except UnreadableImageError:
        raise
    except Exception as error:  # untrusted bytes in complex decoders: any failure is "does not decode"
        raise UnreadableImageError(f"{name}: does not decode as an image ({type(error).__name__}: {error})") from None
    if pixels.ndim not in (2, 3) or 0 in pixels.shape:  # a damaged directory can decode to nothing
        raise UnreadableImageError(f"{name}: decodes to no image (array of shape {pixels.shape})")
    return pixels


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
