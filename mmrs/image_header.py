"""Image width and height from the first bytes of a file: the common cases of PNG, JPEG and TIFF; the format a
file's first bytes announce; whether its last bytes end the stream as the format requires (truncation).

`imagesize` (which SourceRoot falls back to) reads a header with many small buffered reads and Python-level
loops: 24-33 us an image on the bench corpus, where reading the file's first 4 KiB costs 3-5 us. Converting
the bench corpus reads ~45,000 headers a million annotation records, so here one read of `HEAD_BYTES` is
parsed in place: 8 us an image, the read included. Anything unusual (a JPEG frame header past the first
bytes, BigTIFF, a format not listed) gives None, and the caller asks imagesize, then PIL. Tested against both.
"""

from __future__ import annotations

import os
import struct

HEAD_BYTES = 4096
TAIL_BYTES = 1024  # end markers are looked for this far from the end (encoders may pad after them)

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...): C0-CF except DHT C4, JPG C8, DAC CC
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM and RSTn carry no length
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_TIFF_SHORT, _TIFF_LONG = 3, 4


def size_from_head(head: bytes) -> tuple[int, int] | None:
    """(width, height) if `head` (a file's first bytes) holds a PNG, JPEG or classic TIFF header that says
    it; None otherwise (the caller asks a full reader)."""
    if head.startswith(_PNG):
        return _png(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(head)
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return _positive(*struct.unpack_from(">II", head, 16))


def _jpeg(head: bytes) -> tuple[int, int] | None:
    i, n = 2, len(head)
    while i + 4 <= n:
        if head[i] != 0xFF:
            return None  # not at a marker: a broken stream, the full reader reports it
        marker = head[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
        elif marker in _STANDALONE:
            i += 2
        elif marker in _SOF:  # FF Cn, length, precision, height, width
            if i + 9 > n:
                return None
            height, width = struct.unpack_from(">HH", head, i + 5)
            return _positive(width, height)
        elif marker in (0xD9, 0xDA):  # end of image, or a scan before any frame header
            return None
        else:
            i += 2 + struct.unpack_from(">H", head, i + 2)[0]
    return None


def _tiff(head: bytes) -> tuple[int, int] | None:
    if len(head) < 8:
        return None
    order = "<" if head[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", head, 4)  # of the first image file directory
    if offset + 2 > len(head):
        return None
    (entries,) = struct.unpack_from(order + "H", head, offset)
    if offset + 2 + 12 * entries > len(head):
        return None
    found: dict[int, int] = {}
    for entry in range(offset + 2, offset + 2 + 12 * entries, 12):  # tag, type, count, value
        tag, kind, count = struct.unpack_from(order + "HHI", head, entry)
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT) and count == 1 and kind in (_TIFF_SHORT, _TIFF_LONG):
            found[tag] = struct.unpack_from(order + ("H" if kind == _TIFF_SHORT else "I"), head, entry + 8)[0]
    if _TIFF_WIDTH in found and _TIFF_HEIGHT in found:
        return _positive(found[_TIFF_WIDTH], found[_TIFF_HEIGHT])
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    """Zero means "not here" (a JPEG may give its height in a later DNL segment): the full reader decides."""
    return (width, height) if width > 0 and height > 0 else None


def read_head(path: str, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of a local file (os.open: a third of the cost of open(), and this runs for every
    image whose size the annotation does not give)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


# --- format and completeness ----------------------------------------------------------------------------------
EXTENSION_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                     ".bmp": "BMP", ".gif": "GIF", ".webp": "WEBP"}
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of every complete PNG
_JPEG_END = b"\xff\xd9"
_TIFF_STRIPS = ((273, 279), (324, 325))  # (StripOffsets, StripByteCounts), (TileOffsets, TileByteCounts)


def image_format(head: bytes) -> str | None:
    """The format the first bytes announce (PNG, JPEG, TIFF, BMP, GIF, WEBP), None for anything else."""
    if head.startswith(_PNG):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def looks_complete(fmt: str | None, head: bytes, tail: bytes, size: int) -> bool | None:
    """Whether a file of `size` bytes whose first bytes are `head` and last bytes `tail` ends its stream:
    PNG with its IEND chunk, JPEG with its end-of-image marker (within the last TAIL_BYTES: encoders may pad),
    a classic TIFF whose strips or tiles end inside the file (when its first directory lies in `head`).
    None where the bytes cannot tell (other formats, TIFF directories further in): the caller may decode."""
    if fmt == "PNG":
        return _PNG_END in tail
    if fmt == "JPEG":
        return _JPEG_END in tail
    if fmt == "TIFF" and head[:4] in (b"II*\x00", b"MM\x00*"):
        end = _tiff_data_end(head)
        return None if end is None else end <= size
    return None


def _tiff_data_end(head: bytes) -> int | None:
    """The largest offset + byte count of the first directory's strips (or tiles), when `head` holds them."""
    order = "<" if head[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", head, 4)
    if offset + 2 > len(head):
        return None
    (entries,) = struct.unpack_from(order + "H", head, offset)
    if offset + 2 + 12 * entries > len(head):
        return None
    values: dict[int, list[int]] = {}
    for entry in range(offset + 2, offset + 2 + 12 * entries, 12):
        tag, kind, count = struct.unpack_from(order + "HHI", head, entry)
        if kind not in (_TIFF_SHORT, _TIFF_LONG) or not any(tag in pair for pair in _TIFF_STRIPS):
            continue
        width = 2 if kind == _TIFF_SHORT else 4
        where = entry + 8 if count * width <= 4 else struct.unpack_from(order + "I", head, entry + 8)[0]
        if where + count * width > len(head):
            return None
        values[tag] = list(struct.unpack_from(order + ("H" if kind == _TIFF_SHORT else "I") * count, head, where))
    for offsets, counts in _TIFF_STRIPS:
        if offsets in values and counts in values and len(values[offsets]) == len(values[counts]):
            return max((o + n for o, n in zip(values[offsets], values[counts], strict=True)), default=0)
    return None
