"""File-writing helpers shared by the native-format writers: deterministic image encoding,
streaming JSON arrays (memory flat in the number of records) and VOC-style XML serialisation."""

from __future__ import annotations

import json
import shutil
import tempfile
import xml.etree.ElementTree as ET  # writing only; reading untrusted XML goes through defusedxml
from pathlib import Path
from typing import IO, Any

import numpy as np
import tifffile
from PIL import Image

JPEG_QUALITY = 92


def save_image(path: Path, pixels: np.ndarray) -> None:
    """Encode by extension: .jpg/.jpeg (quality 92, 4:2:0), .png, .tif (PIL; 8-bit), .tiff/.tif for
    uint16 (tifffile, no timestamp). (H, W) arrays are written single-channel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if pixels.dtype == np.uint16:
        tifffile.imwrite(path, pixels, photometric="minisblack", metadata=None)
        return
    image = Image.fromarray(pixels)
    if suffix in (".jpg", ".jpeg"):
        image.save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=2)
    elif suffix == ".png":
        image.save(path, format="PNG", compress_level=6)
    elif suffix in (".tif", ".tiff"):
        image.save(path, format="TIFF")
    elif suffix == ".bmp":
        image.save(path, format="BMP")
    else:
        raise ValueError(f"no encoder for {path.name}")


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) with the channel replicated (how SSDD/HRSID store SAR as JPEG)."""
    return np.repeat(gray[..., None], 3, axis=2)


class JsonArrayWriter:
    """Write a JSON array item by item into a spool file; `copy_into` splices it into a document.

    Used for documents such as COCO files whose arrays are too large to hold in memory.
    """

    def __init__(self) -> None:
        self._spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by copy_into)
        self.count = 0

    def append(self, item: Any) -> None:
        if self.count:
            self._spool.write(", ")
        self._spool.write(json.dumps(item, ensure_ascii=False))
        self.count += 1

    def copy_into(self, out: IO[str]) -> None:
        out.write("[")
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, out)
        out.write("]")
        self._spool.close()


def write_json_document(path: Path, head: dict[str, Any], arrays: dict[str, JsonArrayWriter],
                        tail: dict[str, Any] | None = None) -> None:
    """Write {head..., arrays..., tail...} with arrays streamed from their spools, keys in that order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write("{")
        first = True
        for key, value in head.items():
            out.write(("" if first else ", ") + json.dumps(key) + ": " + json.dumps(value, ensure_ascii=False))
            first = False
        for key, spool in arrays.items():
            out.write(("" if first else ", ") + json.dumps(key) + ": ")
            spool.copy_into(out)
            first = False
        for key, value in (tail or {}).items():
            out.write(", " + json.dumps(key) + ": " + json.dumps(value, ensure_ascii=False))
        out.write("}")


def sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    """Append a child element with optional text (numbers are written with str())."""
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def write_xml(path: Path, root: ET.Element) -> None:
    """Indented UTF-8 XML without declaration, as VOC tools write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root, space="\t")
    path.write_bytes(ET.tostring(root, encoding="utf-8") + b"\n")


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("".join(line + newline for line in lines))


def fmt_px(value: float) -> str:
    """Pixel coordinate as an integer string (the habit of most native formats)."""
    return str(int(round(value)))
