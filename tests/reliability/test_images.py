"""Class 2: images are opened before they become records, and every decode has its own pixel limit.

An annotation that gives the size no longer vouches for the image: conversion reads every referenced
image's header (exists, not empty, an image format, under the limit) and looks for a cut-off end; a size that
differs from the header's is corrected and counted. PIL's process-wide limit is never raised."""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import mmrs.build  # noqa: F401  (imported for its side effects on PIL, if any)
import mmrs.storage  # noqa: F401
import models.image_transform
from mmrs.build import convert_source
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records
from mmrs.storage import SourceRoot

# What this branch added is imported where it is used, so that the behaviour tests above also run (and fail)
# on a checkout without it.

PIL_DEFAULT_LIMIT = int(1024 * 1024 * 1024 // 4 // 3)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + _chunk(b"IEND", b""))


def _encoded(fmt: str, size=(48, 32)) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    if fmt == "TIFF16":
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels[..., 0].astype(np.uint16) * 200)
        return buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def test_pil_process_wide_limit_is_not_raised():
    """Importing the builder, the readers and the model's image transform leaves PIL's guard as PIL ships it
    (main raised it to 1.6 G pixels for the whole process)."""
    assert models.image_transform is not None
    assert Image.MAX_IMAGE_PIXELS == PIL_DEFAULT_LIMIT


def _dior_images(root: Path) -> dict[str, Path]:
    return {p.stem: p for folder in ("JPEGImages-trainval", "JPEGImages-test") for p in (root / folder).glob("*.jpg")}


def test_images_with_sizes_in_the_annotation_are_still_opened(release, tmp_path, tried):
    """DIOR's xml gives every size, so main never opened the images: a missing, empty, cut-off, fake (text) or
    bomb image each became a record."""
    root = release("dior")
    images = _dior_images(root)
    stems = sorted(images)
    damage = {stems[0]: None, stems[1]: b"", stems[2]: images[stems[2]].read_bytes()[:300],
              stems[3]: b"this is not a jpeg", stems[4]: bomb_png()}
    for stem, data in damage.items():
        if data is None:
            images[stem].unlink()
        else:
            images[stem].write_bytes(data)
    manifest = convert_source(SOURCES["dior"], str(root), str(tmp_path))
    skipped = manifest["quarantine"]["skipped"]
    assert skipped == {"image missing": 1, "empty image file": 1, "truncated image": 1, "not an image": 1,
                       "image too large": 1}
    keys = {r["id"].split("/")[2] for r in iter_source_records(str(tmp_path / "dior"))}
    assert not keys & set(damage)
    tried("images: damaged images with annotated sizes", len(damage))


def test_a_release_with_most_images_absent_converts_only_the_present_ones(release, tmp_path):
    """The issue's HIT-UAV case (7 of 2,898 images present gave 5,796 records and an empty quarantine)."""
    root = release("hit_uav")
    images = sorted((root / "normal_json").glob("*/*.jpg"))
    for image in images[3:]:
        image.unlink()
    manifest = convert_source(SOURCES["hit_uav"], str(root), str(tmp_path))
    assert sum(manifest["images"].values()) == 3
    assert manifest["quarantine"]["skipped"]["image missing"] == len(images) - 3


def test_a_size_that_differs_from_the_header_is_corrected_and_counted(release, tmp_path):
    root = release("dior")
    xml = sorted((root / "Annotations/Horizontal Bounding Boxes").glob("*.xml"))[0]
    xml.write_bytes(xml.read_bytes().replace(b"<width>800</width>", b"<width>700</width>"))
    manifest = convert_source(SOURCES["dior"], str(root), str(tmp_path))
    assert manifest["quarantine"]["fixed"]["image size corrected from its header"] == 1
    record = next(r for r in iter_source_records(str(tmp_path / "dior")) if f"/{xml.stem}/" in r["id"])
    assert (record["width"], record["height"]) == (800, 800)


def test_scenes_are_decoded_for_tiles_within_the_limit(release, tmp_path):
    root = release("dota")
    manifest = convert_source(SOURCES["dota"], str(root), str(tmp_path), max_image_pixels=1_000_000)
    assert manifest["quarantine"]["skipped"]["image too large"] == sum(
        1 for p in (root / "train/images").glob("*.png") if np.prod(Image.open(p).size) > 1_000_000) + sum(
        1 for p in (root / "val/images").glob("*.png") if np.prod(Image.open(p).size) > 1_000_000)


def _read_pixels(data, limit):
    from mmrs.imaging import read_pixels

    return read_pixels(data, limit)


@pytest.mark.parametrize("decode", [_read_pixels, lambda data, limit: models.image_transform.read_image(data, limit)])
def test_every_decode_has_its_own_limit(decode):
    from mmrs.imaging import ImageTooLargeError

    with pytest.raises(ImageTooLargeError, match="100000x100000"):
        decode(bomb_png(), 1_600_000_000)
    with pytest.raises(ImageTooLargeError):
        decode(_encoded("PNG", (48, 32)), 48 * 32 - 1)
    assert decode(_encoded("PNG", (48, 32)), 48 * 32).shape == (32, 48, 3)
    with pytest.raises(ImageTooLargeError):
        decode(_encoded("TIFF16", (48, 32)), 100)


FORMATS = ["PNG", "JPEG", "TIFF", "TIFF16", "BMP", "WEBP"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(FORMATS), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1),
       st.integers(0, 255)), max_size=3), junk=st.binary(max_size=64))
def test_damaged_image_bytes_are_one_clear_error(tmp_path, fmt, cut, flips, junk, tried):
    """Cut, flipped and random bytes of every format: the decode returns pixels or raises UnreadableImageError;
    the conversion's image check returns a size or an ImageProblem. Nothing else escapes."""
    from mmrs.imaging import UnreadableImageError, read_pixels
    from mmrs.storage import ImageProblem

    tried(f"images: damaged {fmt} bytes")
    data = bytearray(_encoded(fmt))
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    data = bytes(data[: int(cut * len(data))]) + junk if cut < 0.999 else bytes(data)
    try:
        pixels = read_pixels(data, 10_000_000, "x")
        assert pixels.ndim in (2, 3)
    except UnreadableImageError:
        pass
    (tmp_path / "x.png").write_bytes(data)
    try:
        info = SourceRoot(str(tmp_path)).inspect_image("x.png", 10_000_000)
        assert info.width > 0 and info.height > 0
    except ImageProblem as problem:
        assert problem.reason in ("empty image file", "not an image", "unreadable image", "truncated image",
                                  "image too large")


def test_the_issue_41000_pixel_png_is_refused_everywhere(tmp_path):
    from mmrs.imaging import ImageTooLargeError
    from mmrs.storage import ImageProblem

    (tmp_path / "big.png").write_bytes(bomb_png(41_000, 41_000))
    with pytest.raises(ImageProblem, match="image too large"):
        SourceRoot(str(tmp_path)).inspect_image("big.png")
    with pytest.raises(ImageTooLargeError):
        models.image_transform.read_image(tmp_path / "big.png")
    with pytest.raises(ImageTooLargeError):
        models.image_transform.load_record_image(str(tmp_path), "big.png")
    assert json.dumps({"ok": True})
