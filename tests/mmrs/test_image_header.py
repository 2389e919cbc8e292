"""mmrs.image_header against imagesize and PIL, on every variant the datasets ship and the ones it declines."""

import io
import struct

import fsspec
import imagesize
import numpy as np
import pytest
import tifffile
from PIL import Image

from mmrs.image_header import HEAD_BYTES, size_from_head
from mmrs.storage import SourceRoot


def _pil_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _tiff_bytes(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


_GRADIENT = np.arange(37 * 53 * 3, dtype=np.uint8).reshape(37, 53, 3)


def _rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: "rotate 90 CW to display"; the stored grid is still 53 x 37
    return exif.tobytes()


VARIANTS = {
    "png rgb": _pil_bytes(Image.fromarray(_GRADIENT), "PNG"),
    "png 16-bit grey": _pil_bytes(Image.fromarray(np.zeros((37, 53), np.uint16)), "PNG"),
    "jpeg baseline": _pil_bytes(Image.fromarray(_GRADIENT), "JPEG"),
    "jpeg progressive": _pil_bytes(Image.fromarray(_GRADIENT), "JPEG", progressive=True),
    "jpeg grey": _pil_bytes(Image.fromarray(_GRADIENT[..., 0]), "JPEG"),
    "jpeg cmyk": _pil_bytes(Image.fromarray(_GRADIENT).convert("CMYK"), "JPEG"),
    "jpeg with exif and comment": _pil_bytes(Image.fromarray(_GRADIENT), "JPEG", exif=Image.Exif().tobytes(),
                                             comment=b"x" * 1000),
    "jpeg with an EXIF orientation": _pil_bytes(Image.fromarray(_GRADIENT), "JPEG", exif=_rotated_exif()),
    "tiff rgb (PIL)": _pil_bytes(Image.fromarray(_GRADIENT), "TIFF"),
    "tiff compressed (PIL)": _pil_bytes(Image.fromarray(_GRADIENT), "TIFF", compression="tiff_deflate"),
    "tiff 16-bit SAR, little-endian": _tiff_bytes(np.zeros((37, 53), np.uint16)),
    "tiff float32 big-endian": _tiff_bytes(np.zeros((37, 53), ">f4"), byteorder=">"),
    "tiff wide (LONG width)": _tiff_bytes(np.zeros((2, 70_000), np.uint8)),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_sizes_match_imagesize_and_pil(name):
    data = VARIANTS[name]
    want = Image.open(io.BytesIO(data)).size  # the stored pixel grid, as training decodes it
    assert size_from_head(data[:HEAD_BYTES]) == want
    assert imagesize.get(io.BytesIO(data), exif_rotation=False) == want


def test_declines_what_it_cannot_tell_from_the_first_bytes():
    jpeg = _pil_bytes(Image.fromarray(_GRADIENT), "JPEG", comment=b"x" * 6000)  # frame header past 4 KiB
    assert size_from_head(jpeg[:HEAD_BYTES]) is None
    assert size_from_head(_tiff_bytes(np.zeros((37, 53), np.uint8), bigtiff=True)) is None
    far = b"II*\x00" + struct.pack("<I", 5000) + bytes(100)  # first directory past the head
    assert size_from_head(far) is None
    assert size_from_head(b"GIF89a" + bytes(20)) is None
    assert size_from_head(b"\xff\xd8\xff") is None  # truncated
    assert size_from_head(b"\xff\xd8\x00\x00\x00\x00") is None  # not at a marker
    assert size_from_head(b"II*\x00") is None


def test_source_root_falls_back_to_imagesize_and_pil(tmp_path):
    late = _pil_bytes(Image.fromarray(_GRADIENT), "JPEG", comment=b"x" * 6000, exif=_rotated_exif())
    (tmp_path / "late.jpg").write_bytes(late)  # imagesize reads it: the orientation must not swap the size
    Image.fromarray(_GRADIENT).save(tmp_path / "a.gif")  # not parsed here, imagesize knows it
    Image.fromarray(_GRADIENT).save(tmp_path / "a.tga")  # neither: PIL reads the header
    (tmp_path / "a.tif").write_bytes(_tiff_bytes(np.zeros((37, 53), np.uint16)))
    root = SourceRoot(str(tmp_path))
    for name in ("late.jpg", "a.gif", "a.tga", "a.tif"):
        assert root.image_size(name) == (53, 37), name
    with pytest.raises(FileNotFoundError):
        root.image_size("missing.jpg")


def test_source_root_on_s3_parses_heads_and_falls_back(tmp_path, s3_bucket):
    late = _pil_bytes(Image.fromarray(_GRADIENT), "JPEG", comment=b"x" * 6000, exif=_rotated_exif())
    fs = fsspec.filesystem("s3")
    fs.pipe({f"{s3_bucket}/release/late.jpg": late, f"{s3_bucket}/release/a.jpg": VARIANTS["jpeg baseline"],
             f"{s3_bucket}/release/a.tga": _pil_bytes(Image.fromarray(_GRADIENT), "TGA")})
    root = SourceRoot(f"s3://{s3_bucket}/release")
    for name in ("a.jpg", "late.jpg", "a.tga"):  # in place, imagesize after a seek back, PIL
        assert root.image_size(name) == (53, 37), name
