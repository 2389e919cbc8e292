"""Dataset roots on local disk or object storage (`s3://...`), through fsspec.

`SourceRoot` is what every reader receives: paths are relative to the dataset's top folder, listings are
sorted (stable ids and order), text is decoded with the datasets.md rules, XML goes through defusedxml, and
image headers are read without decoding pixels.
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings
import xml.etree.ElementTree as ET  # only for documents without a DTD: see _parse_safely
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import fsspec
import imagesize
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from PIL import Image

from mmrs.image_header import HEAD_BYTES, read_head, size_from_head

# Refuse images whose decoded size would not fit comfortably in memory (40k x 40k RGB8 is 4.8 GB).
MAX_IMAGE_PIXELS = 40_000 * 40_000
# PIL's own decompression-bomb guard (179 M pixels) would refuse real 20,000 px DOTA v2 scenes: it is
# raised to our limit, which is enforced explicitly below with a clear message.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


class MissingFileError(FileNotFoundError):
    """A file the dataset's format requires is absent."""


class ImageTooLargeError(ValueError):
    """An image header announces more pixels than MAX_IMAGE_PIXELS."""


def decode_text(data: bytes) -> str:
    """UTF-8 with BOM tolerance, GB18030 fallback; CR stripped (datasets.md 1.1)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")
    return text.replace("\r", "")


_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _parse_safely(document: bytes | str):
    # Entity-expansion bombs and external entities need a DTD (`<!DOCTYPE`, `<!ENTITY`). A document without
    # any `<!` has none, so the C parser is safe for it and about twice as fast; everything else goes
    # through defusedxml, which refuses DTD tricks.
    if (b"<!" if isinstance(document, bytes) else "<!") not in document:
        return ET.fromstring(document)
    return SafeET.fromstring(document)


def parse_xml(data: bytes):
    """Parsed ElementTree root of XML bytes. Encodings expat cannot decode (GBK, declared or not) are decoded
    by the datasets.md 1.1 rules and parsed as text. Raises ET.ParseError / ValueError on malformed input
    (defusedxml's refusals are ValueErrors too)."""
    try:
        return _parse_safely(data)
    except DefusedXmlException:
        raise
    except (ET.ParseError, ValueError):  # ValueError: "multi-byte encodings are not supported"
        return _parse_safely(_DECLARATION.sub("", decode_text(data), count=1))


def _pil_size(f, uri: str) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(f) as image:
                return image.size
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{uri}: {error}") from None


def fs_protocol(fs: fsspec.AbstractFileSystem) -> str:
    """The filesystem's main protocol name ("file", "s3", "memory", ...)."""
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    return fs_protocol(fs) in ("file", "local")


@dataclass
class SourceRoot:
    """A dataset's top folder: `url` is a local path or an fsspec URL such as s3://bucket/DOTA."""

    url: str

    def __post_init__(self) -> None:
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.base = self.base.rstrip("/")
        self._local = is_local_fs(self.fs)

    def path(self, rel: str) -> str:
        """Full path of `rel`; '..' segments are resolved (RSIVQA points into sibling releases)."""
        return posixpath.normpath(posixpath.join(self.base, rel)) if rel else self.base

    @property
    def is_local(self) -> bool:
        return self._local

    def uri(self, rel: str) -> str:
        """Full URL of a relative path (for messages and for opening from other processes)."""
        full = self.path(rel)
        if self._local:
            return full
        return f"{fs_protocol(self.fs)}://{full}"

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def isdir(self, rel: str) -> bool:
        return self.fs.isdir(self.path(rel))

    def require(self, rel: str, what: str = "file") -> str:
        """`rel` if it exists, else a MissingFileError naming it."""
        if not self.exists(rel):
            raise MissingFileError(f"required {what} missing: {self.uri(rel)}")
        return rel

    def listdir(self, rel: str = "") -> list[str]:
        """Sorted names (not paths) directly under `rel`."""
        entries = self.fs.ls(self.path(rel), detail=False)
        return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

    def walk_files(self, rel: str = "") -> Iterator[str]:
        """Every file under `rel`, as paths relative to the root, sorted."""
        prefix = self.base + "/"
        for full in sorted(self.fs.find(self.path(rel))):
            yield full[len(prefix):] if full.startswith(prefix) else full

    def open(self, rel: str, mode: str = "rb") -> IO:
        return self.fs.open(self.path(rel), mode)

    def read_bytes(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()

    def read_text(self, rel: str) -> str:
        return decode_text(self.read_bytes(rel))

    def read_xml(self, rel: str):
        """Parsed ElementTree root of an XML file (see `parse_xml`)."""
        return parse_xml(self.read_bytes(rel))

    def prefetch(self, rels: Iterable[str], head: int = HEAD_BYTES) -> None:
        """Ask the kernel to start reading the first `head` bytes of these local files in the background
        (posix_fadvise WILLNEED), so that reading their headers later finds them in the page cache. A no-op
        for object stores; errors are ignored (the real read reports them)."""
        if not self._local or not hasattr(os, "posix_fadvise"):
            return
        for rel in rels:
            try:
                fd = os.open(self.path(rel), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, head, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass
            finally:
                os.close(fd)

    def image_size(self, rel: str) -> tuple[int, int]:
        """(width, height) from the image header only; refuses images larger than MAX_IMAGE_PIXELS."""
        # the first bytes only: parsed in place for PNG, JPEG and TIFF (mmrs.image_header), else imagesize
        # (~10x faster than PIL.Image.open); local files by path (no fsspec read layer). The stored pixel
        # grid, as decoded for training: an EXIF orientation tag does not swap width and height.
        if self._local:
            path = self.path(rel)
            size = size_from_head(read_head(path, HEAD_BYTES))
            width, height = size or imagesize.get(path, exif_rotation=False)
        else:
            with self.open(rel) as f:
                size = size_from_head(f.read(HEAD_BYTES))
                if size is None:
                    f.seek(0)
                width, height = size or imagesize.get(f, exif_rotation=False)
        if width <= 0 or height <= 0:  # a format imagesize does not know: let PIL read the header
            with self.open(rel) as f:
                width, height = _pil_size(f, self.uri(rel))
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLargeError(f"{self.uri(rel)} is {width}x{height} pixels, over the limit of "
                                     f"{MAX_IMAGE_PIXELS} (raise mmrs.storage.MAX_IMAGE_PIXELS to allow it)")
        return width, height
