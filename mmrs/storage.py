"""Dataset roots on local disk or object storage (`s3://...`), through fsspec.

`SourceRoot` is what every reader receives: paths are relative to the dataset's top folder, listings are
sorted (stable ids and order), text is decoded with the datasets.md rules, XML goes through defusedxml, and
image headers are read without decoding pixels.

It is also the release's guard (docs/reliability.md):
- `member(name, folder)` is the one resolver for every path a reader takes from an annotation (a COCO
  `file_name`, a Karpathy `filename`, a question's image id): absolute paths, drive letters, URLs, `..`
  segments, NUL bytes and names that are not valid UTF-8 are refused (UnsafePathError);
- every file read through the root (annotations, images, headers) must resolve inside the release: on local
  disk a symlink, or a folder reached through one, that leads outside the release root is refused
  (OutsideReleaseError). Folders a source's own configuration places beside the release (RSIVQA's images
  in the sibling releases) are allowed once `member` has been asked for a name inside them;
- `inspect_image` checks an image referenced by an annotation before it becomes a record: it exists, is not
  empty, its first bytes are an image format, its header's size is under the pixel limit, and its stream is
  complete where the format shows it cheaply (PNG IEND, JPEG end marker, TIFF strip extents);
- object-store calls are retried with exponential backoff on connection failures; when the store stays
  unreachable the error is StorageUnavailableError, an environment failure rather than bad input.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
import sys
import time
import xml.etree.ElementTree as ET  # only for documents without a DTD: see _parse_safely
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TypeVar

import fsspec
import imagesize
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from mmrs.image_header import (
    EXTENSION_FORMATS,
    HEAD_BYTES,
    TAIL_BYTES,
    image_format,
    looks_complete,
    read_head,
    size_from_head,
)
from mmrs.imaging import MAX_IMAGE_PIXELS, ImageTooLargeError, UnreadableImageError, open_image, read_pixels

T = TypeVar("T")

__all__ = ["MAX_IMAGE_PIXELS", "ImageTooLargeError", "UnreadableImageError"]  # re-exported: readers import them here

# Object-store calls: attempts and the first pause (doubled after each failure: 0.5 + 1 + 2 + 4 s by default).
RETRY_ATTEMPTS = 5
RETRY_FIRST_DELAY = 0.5


class MissingFileError(FileNotFoundError):
    """A file the dataset's format requires is absent."""


class UnsafePathError(ValueError):
    """A path taken from an annotation that would leave the release (absolute, `..`, a URL, ...)."""


class OutsideReleaseError(ValueError):
    """A file that resolves outside the release root (a symlink leading out)."""


class UndecodableTextError(ValueError):
    """A text file that is neither UTF-8 nor GB18030."""


class StorageUnavailableError(OSError):
    """The object store stayed unreachable through every retry: an environment failure, not bad input."""


class ImageProblem(Exception):
    """An image referenced by an annotation that cannot become a record; `reason` is the quarantine reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ImageInfo:
    """What the image check found: the format its bytes announce, its stored size, whether the file name's
    extension names that format."""

    format: str
    width: int
    height: int
    extension_matches: bool


def is_environment_error(error: BaseException) -> bool:
    """A failure of the environment (network, object store) rather than of the data: connection refused,
    reset or timed out, botocore's connection and HTTP-client errors."""
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None and isinstance(error, botocore.ConnectionError | botocore.HTTPClientError):
        return True
    if isinstance(error, ConnectionError | TimeoutError | StorageUnavailableError):
        return True
    return isinstance(error, OSError) and error.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT,
                                                          errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPIPE)


def retrying(operation: Callable[[], T], what: str, attempts: int | None = None,
             first_delay: float | None = None) -> T:
    """`operation()`, tried again after 0.5, 1, 2, 4 s (by default) while it fails for environment reasons;
    StorageUnavailableError naming `what` when it still fails. Other errors pass through at once."""
    attempts = RETRY_ATTEMPTS if attempts is None else attempts
    delay = RETRY_FIRST_DELAY if first_delay is None else first_delay
    waited = 0.0
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as error:
            if not is_environment_error(error) or isinstance(error, StorageUnavailableError):
                raise
            if attempt == attempts:
                raise StorageUnavailableError(f"object store unreachable after {attempts} attempts over "
                                              f"{waited:.1f} s ({what}): {error}") from error
        time.sleep(delay)
        waited += delay
        delay *= 2
    raise AssertionError("unreachable")


def decode_text(data: bytes, name: str = "text") -> str:
    """UTF-8 with BOM tolerance, GB18030 fallback; CR stripped (datasets.md 1.1). UndecodableTextError (a
    ValueError naming `name`) when neither decodes it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as error:
            raise UndecodableTextError(f"{name}: neither UTF-8 nor GB18030 (byte {error.start})") from None
    return text.replace("\r", "")


def decode_lines(data: bytes) -> list[str | None]:
    """The lines of a text file by the decode_text rules, each line on its own when the whole file does not
    decode: a line that is neither UTF-8 nor GB18030 is None (its reader reports it), the others keep their
    text. Line breaks: LF, CR stripped. For line-per-record formats, where one bad line must not cost the
    file (a GB18030 file decodes line by line exactly as whole: no multi-byte character contains a LF byte)."""
    try:
        return decode_text(data).split("\n")
    except UndecodableTextError:
        pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines: list[str | None] = []
    for raw in data.split(b"\n"):
        try:
            lines.append(decode_text(raw))
        except UndecodableTextError:
            lines.append(None)
    return lines


def printable_name(name: str) -> str:
    """A file name as text that can be written anywhere: bytes that are not UTF-8 (kept by the OS listing as
    surrogate escapes) shown as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def valid_name(name: str) -> bool:
    """Whether `name` is valid Unicode text (no lone surrogates: from a listing of non-UTF-8 bytes, or a JSON
    `\\udcff` escape)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_DRIVE = re.compile(r"^[A-Za-z]:")


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


def _pil_header(f: IO[bytes], uri: str) -> tuple[str, int, int]:
    """(format, width, height) from PIL's header reading, without its process-wide pixel limit."""
    with open_image(f, max_pixels=sys.maxsize, name=uri) as image:
        return image.format or "", *image.size


def fs_protocol(fs: fsspec.AbstractFileSystem) -> str:
    """The filesystem's main protocol name ("file", "s3", "memory", ...)."""
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    return fs_protocol(fs) in ("file", "local")


@dataclass
class SourceRoot:
    """A dataset's top folder: `url` is a local path or an fsspec URL such as s3://bucket/DOTA."""

    url: str
    _boundaries: list[str] = field(default_factory=list, init=False, repr=False)
    _real_dirs: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _refused: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # path -> reason

    def __post_init__(self) -> None:
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.base = self.base.rstrip("/")
        self._local = is_local_fs(self.fs)
        if self._local:
            self._boundaries.append(os.path.realpath(self.base or "/"))

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

    # --- the guard ----------------------------------------------------------------------------------------
    def member(self, name: str, folder: str = "") -> str:
        """`folder/name` relative to the root, for a file name taken from an annotation. `folder` is the
        source's configuration (trusted; it may lead beside the release, as RSIVQA's do: files under it are
        then readable too); `name` is data: UnsafePathError when it is empty, absolute (`/x`, `\\x`, `C:x`),
        a URL, holds a NUL byte or a `..` segment, or is not valid UTF-8. Backslashes are separators;
        `.` segments and repeated slashes are dropped."""
        text = name.replace("\\", "/") if isinstance(name, str) else ""
        problem = None
        if not text.strip():
            problem = "empty file name"
        elif not valid_name(text):
            problem = "file name is not valid UTF-8"
        elif "\x00" in text:
            problem = "file name holds a NUL byte"
        elif text.startswith("/") or _DRIVE.match(text) or "://" in text:
            problem = "absolute path or URL"
        elif ".." in text.split("/"):
            problem = "'..' leaves the folder"
        if problem is not None:
            raise UnsafePathError(f"{problem}: {printable_name(name) if isinstance(name, str) else name!r}")
        clean = "/".join(part for part in text.split("/") if part not in ("", "."))
        if folder and self._local and posixpath.normpath(folder).startswith(".."):
            outside = os.path.realpath(self.path(folder))
            if outside not in self._boundaries:
                self._boundaries.append(outside)
        return posixpath.join(folder, clean) if folder else clean

    def _inside(self, real: str) -> bool:
        return any(real == b or real.startswith(b.rstrip("/") + "/") for b in self._boundaries)

    def confine(self, rel: str) -> str:
        """The full local path of `rel` after checking that it resolves inside the release (or inside a
        folder `member` allowed beside it): its folder's real path (cached per folder) and, when the file
        itself is a symlink, the real path of the file. OutsideReleaseError otherwise; object stores have no
        links (the path is returned as it is)."""
        full = self.path(rel)
        if not self._local or full == self.base:
            return full
        folder = posixpath.dirname(full)
        real = self._real_dirs.get(folder)
        if real is None:
            real = self._real_dirs[folder] = os.path.realpath(folder or "/")
        if not self._inside(real):
            raise OutsideReleaseError(f"{full} resolves outside the release {self.base}: {real}")
        try:
            mode = os.lstat(full).st_mode
        except OSError:
            return full  # missing: the read itself reports it
        if stat.S_ISLNK(mode) and not self._inside(target := os.path.realpath(full)):
            raise OutsideReleaseError(f"{full} is a link leading outside the release {self.base}: {target}")
        return full

    NAME_NOT_UTF8 = "file name not valid UTF-8"
    LEAVES_RELEASE = "path leaves the release"

    def take_refused(self) -> list[tuple[str, str]]:
        """(path, reason) of what listings and lookups refused since the last call, once each: file names that
        are not valid UTF-8 (a record cannot hold them) and links leading outside the release. Readers never
        see them; the converter reports them."""
        refused, self._refused = list(self._refused.items()), {}
        return refused

    def _valid(self, rel: str) -> bool:
        if valid_name(rel):
            return True
        self._refused.setdefault(printable_name(rel), self.NAME_NOT_UTF8)
        return False

    def _leaves(self, full: str) -> bool:
        """Whether a local path is, or lies in a folder that is, a link leading outside the release (recorded)."""
        try:
            self.confine(posixpath.relpath(full, self.base) if full != self.base else "")
        except OutsideReleaseError:
            self._refused.setdefault(full, self.LEAVES_RELEASE)
            return True
        return False

    # --- files ----------------------------------------------------------------------------------------------
    def _call(self, operation: Callable[[], T], rel: str) -> T:
        return operation() if self._local else retrying(operation, self.uri(rel))

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists inside the release (a link leading outside does not: it is refused)."""
        if self._local:
            return self.fs.exists(self.path(rel)) and not self._leaves(self.path(rel))
        return self._call(lambda: self.fs.exists(self.path(rel)), rel)

    def isdir(self, rel: str) -> bool:
        if self._local:
            return self.fs.isdir(self.path(rel)) and not self._leaves(self.path(rel))
        return self._call(lambda: self.fs.isdir(self.path(rel)), rel)

    def require(self, rel: str, what: str = "file") -> str:
        """`rel` if it exists, else a MissingFileError naming it."""
        if not self.exists(rel):
            raise MissingFileError(f"required {what} missing: {self.uri(rel)}")
        return rel

    def listdir(self, rel: str = "") -> list[str]:
        """Sorted names (not paths) directly under `rel`; names that are not valid UTF-8 and links leading
        outside the release are left out (see take_refused)."""
        if self._local:
            folder = self.path(rel)
            with os.scandir(folder) as entries:
                names = sorted(e.name for e in entries
                               if not (e.is_symlink() and self._leaves(posixpath.join(folder, e.name))))
        else:
            entries = self._call(lambda: self.fs.ls(self.path(rel), detail=False), rel)
            names = sorted(posixpath.basename(e.rstrip("/")) for e in entries)
        return [n for n in names if self._valid(posixpath.join(rel, n) if rel else n)]

    def walk_files(self, rel: str = "") -> Iterator[str]:
        """Every file under `rel`, as paths relative to the root, sorted; names that are not valid UTF-8 and
        links leading outside the release are left out (see take_refused), linked folders not followed."""
        if self._local:
            found = []
            for folder, dirs, files in os.walk(self.path(rel)):
                for name in files:
                    full = posixpath.join(folder, name)
                    if not (os.path.islink(full) and self._leaves(full)):
                        found.append(full[len(self.base) + 1:] if self.base else full)
                dirs.sort()
            paths: Iterable[str] = sorted(found)
        else:
            prefix = self.base + "/"
            paths = (full[len(prefix):] if full.startswith(prefix) else full
                     for full in sorted(self._call(lambda: self.fs.find(self.path(rel)), rel)))
        for path in paths:
            if self._valid(path):
                yield path

    def open(self, rel: str, mode: str = "rb") -> IO:
        full = self.confine(rel)
        return self._call(lambda: self.fs.open(full, mode), rel)

    def read_bytes(self, rel: str) -> bytes:
        def read() -> bytes:
            with self.fs.open(full, "rb") as f:
                return f.read()

        full = self.confine(rel)
        return self._call(read, rel)

    def read_text(self, rel: str) -> str:
        """The file's text (decode_text rules); UndecodableTextError naming it when it does not decode."""
        return decode_text(self.read_bytes(rel), self.uri(rel))

    def read_lines(self, rel: str) -> list[str | None]:
        """The file's lines (decode_lines rules): None for a line that does not decode."""
        return decode_lines(self.read_bytes(rel))

    def read_xml(self, rel: str):
        """Parsed ElementTree root of an XML file (see `parse_xml`)."""
        return parse_xml(self.read_bytes(rel))

    def prefetch(self, rels: Iterable[str], head: int = HEAD_BYTES) -> None:
        """Ask the kernel to start reading the first `head` and the last TAIL_BYTES bytes of these local files
        in the background (posix_fadvise WILLNEED), so that the image check later finds them in the page
        cache. A no-op for object stores; errors are ignored (the real read reports them)."""
        if not self._local or not hasattr(os, "posix_fadvise"):
            return
        for rel in rels:
            try:
                fd = os.open(self.path(rel), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, head, os.POSIX_FADV_WILLNEED)
                size = os.fstat(fd).st_size
                if size > head:
                    os.posix_fadvise(fd, max(head, size - TAIL_BYTES), TAIL_BYTES, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass
            finally:
                os.close(fd)

    # --- images ---------------------------------------------------------------------------------------------
    def image_size(self, rel: str, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
        """(width, height) from the image header only; refuses images larger than `max_pixels`. A header that
        cannot be read is an UnreadableImageError (a ValueError) naming the file."""
        try:
            width, height = self._header_size(rel)
        except (OSError, ValueError) as error:
            if is_environment_error(error) or isinstance(error, FileNotFoundError | OutsideReleaseError):
                raise
            raise UnreadableImageError(f"{self.uri(rel)}: no image header: {error}") from None
        except Exception as error:  # untrusted bytes in header readers (struct.error, ...)
            raise UnreadableImageError(f"{self.uri(rel)}: no image header: {error}") from None
        if width * height > max_pixels:
            raise ImageTooLargeError(f"{self.uri(rel)} is {width}x{height} pixels, over the limit of "
                                     f"{max_pixels} (raise mmrs.storage.MAX_IMAGE_PIXELS to allow it)")
        return width, height

    def _header_size(self, rel: str) -> tuple[int, int]:
        # the first bytes only: parsed in place for PNG, JPEG and TIFF (mmrs.image_header), else imagesize
        # (~10x faster than PIL.Image.open); local files by path (no fsspec read layer). The stored pixel
        # grid, as decoded for training: an EXIF orientation tag does not swap width and height.
        if self._local:
            path = self.confine(rel)
            size = size_from_head(read_head(path, HEAD_BYTES))
            width, height = size or imagesize.get(path, exif_rotation=False)
        else:
            def header() -> tuple[int, int]:
                with self.fs.open(self.path(rel), "rb") as f:
                    size = size_from_head(f.read(HEAD_BYTES))
                    if size is None:
                        f.seek(0)
                    return size or imagesize.get(f, exif_rotation=False)

            width, height = self._call(header, rel)
        if width <= 0 or height <= 0:  # a format imagesize does not know: let PIL read the header
            with self.open(rel) as f:
                _, width, height = _pil_header(f, self.uri(rel))
        return width, height

    def _head_and_tail(self, rel: str) -> tuple[bytes, bytes, int]:
        """(first HEAD_BYTES, last TAIL_BYTES, size) of a file; ImageProblem when it is missing or empty."""
        try:
            if self._local:
                fd = os.open(self.confine(rel), os.O_RDONLY)
                try:
                    size = os.fstat(fd).st_size
                    head = os.read(fd, HEAD_BYTES)
                    tail = head[-TAIL_BYTES:] if size <= len(head) else os.pread(fd, TAIL_BYTES, size - TAIL_BYTES)
                finally:
                    os.close(fd)
            else:
                def read() -> tuple[bytes, bytes, int]:
                    with self.fs.open(self.path(rel), "rb") as f:
                        size = f.size
                        head = f.read(HEAD_BYTES)
                        if size <= len(head):
                            return head, head[-TAIL_BYTES:], size
                        f.seek(size - TAIL_BYTES)
                        return head, f.read(TAIL_BYTES), size

                head, tail, size = self._call(read, rel)
        except FileNotFoundError:
            raise ImageProblem("image missing", self.uri(rel)) from None
        except OutsideReleaseError as error:
            raise ImageProblem("path leaves the release", str(error)) from None
        except IsADirectoryError:
            raise ImageProblem("not an image", f"{self.uri(rel)} is a folder") from None
        except OSError as error:
            if is_environment_error(error):
                raise
            raise ImageProblem("unreadable image", f"{self.uri(rel)}: {error}") from None
        if size == 0:
            raise ImageProblem("empty image file", self.uri(rel))
        return head, tail, size

    def inspect_image(self, rel: str, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageInfo:
        """The image check of conversion (module docstring): the header of `rel` read, its format and size
        found, the pixel limit applied, truncation looked for where the format shows it cheaply (a second
        small read at the end of the file), and a full decode only where that finds the end missing.
        ImageProblem (with the quarantine reason) when the image cannot become a record."""
        head, tail, size = self._head_and_tail(rel)
        uri = self.uri(rel)
        fmt = image_format(head)
        dims = size_from_head(head)
        if dims is None:
            try:
                with self.open(rel) as f:
                    pil_format, *dims = _pil_header(f, uri)
            except Exception as error:  # untrusted bytes in PIL's header readers: any failure is "unreadable"
                if is_environment_error(error):
                    raise
                raise ImageProblem("not an image" if fmt is None else "unreadable image", str(error)) from None
            fmt = fmt or pil_format.upper()
        width, height = dims
        if width * height > max_pixels:
            raise ImageProblem("image too large", f"{uri} is {width}x{height} pixels, over the limit of {max_pixels}")
        if looks_complete(fmt, head, tail, size) is False:
            try:  # the end marker is missing: only a full decode can tell trailing junk from a cut file
                read_pixels(self.read_bytes(rel), max_pixels, uri)
            except UnreadableImageError as error:
                raise ImageProblem("truncated image", str(error)) from None
        extension = posixpath.splitext(rel)[1].lower()
        return ImageInfo(fmt, width, height, EXTENSION_FORMATS.get(extension, fmt) == fmt)
