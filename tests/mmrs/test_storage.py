import struct
import zlib

import pytest
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from PIL import Image

from mmrs.storage import ImageTooLargeError, MissingFileError, SourceRoot, decode_text, parse_xml

VOC = b"<annotation><object><name>ship</name><bndbox><xmin> 1.0e+01 </xmin></bndbox></object></annotation>"


def test_fast_xml_path_equals_defusedxml():
    fast, safe = parse_xml(VOC), SafeET.fromstring(VOC)
    assert [(e.tag, e.text) for e in fast.iter()] == [(e.tag, e.text) for e in safe.iter()]


def test_entity_bombs_and_external_entities_are_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx"><!ENTITY y "&x;&x;">]><a>&y;</a>'
    with pytest.raises(DefusedXmlException):
        parse_xml(bomb)
    external = b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'
    with pytest.raises(DefusedXmlException):
        parse_xml(external)


def test_gbk_xml_with_and_without_declaration():
    text = "<annotation><name>船</name></annotation>"
    for data in (text.encode("gb18030"), ('<?xml version="1.0" encoding="gbk"?>' + text).encode("gbk")):
        assert parse_xml(data).find("name").text == "船"


def test_text_decoding_rules():
    assert decode_text("\ufeffa\r\nb".encode("utf-8")) == "a\nb"
    assert decode_text("船".encode("gb18030")) == "船"


def test_listing_is_sorted_and_missing_files_are_named(tmp_path):
    for name in ("b.txt", "a.txt", "c/d.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    root = SourceRoot(str(tmp_path))
    assert root.listdir() == ["a.txt", "b.txt", "c"]
    assert list(root.walk_files()) == ["a.txt", "b.txt", "c/d.txt"]
    assert root.path("c/../a.txt") == str(tmp_path / "a.txt")
    with pytest.raises(MissingFileError, match="labels.json"):
        root.require("labels.json")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that announces width x height but carries no pixels (a few hundred bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def test_image_size_reads_the_header_only_and_refuses_huge_images(tmp_path):
    Image.new("RGB", (30, 20)).save(tmp_path / "small.png")
    root = SourceRoot(str(tmp_path))
    assert root.image_size("small.png") == (30, 20)
    (tmp_path / "huge.png").write_bytes(_png_header(50_000, 50_000))  # a header, no pixel data
    with pytest.raises(ImageTooLargeError, match="huge.png is 50000x50000"):
        root.image_size("huge.png")
    (tmp_path / "scene.png").write_bytes(_png_header(20_000, 20_000))  # DOTA v2-sized scenes are fine
    assert root.image_size("scene.png") == (20_000, 20_000)


def test_prefetch_is_a_hint_that_never_fails(tmp_path):
    Image.new("RGB", (7, 5)).save(tmp_path / "a.png")
    root = SourceRoot(str(tmp_path))
    assert root.is_local
    root.prefetch(["a.png", "missing.png", "../outside.png"])  # missing files: the real read reports them
    assert root.image_size("a.png") == (7, 5)
    remote = SourceRoot("memory://bucket/release")
    assert not remote.is_local
    remote.prefetch(["a.png"])  # object stores: nothing to ask the kernel
