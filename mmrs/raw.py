"""What readers emit: one `RawSample` per image, in native pixel geometry, before any conversion.

Readers know each dataset's on-disk format and quirks; they do not normalise boxes, write prompts or
decide wording. `convert.py` turns RawSamples into MMRS-1M records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODALITIES = ("optical", "sar", "infrared")
TASKS = ("classification", "captioning", "vqa", "detection_hbb", "detection_obb", "grounding", "region_caption")


@dataclass
class Box:
    """One annotated object in native pixels of the full image.

    hbb: (x0, y0, x1, y1); obb: (x1, y1, ..., x4, y4) four vertices in the file's order. A reader fills
    what the format has (both when it has both); conversion derives the other one.
    """

    label: str  # the dataset's class name after its alias table (e.g. DIOR 'Expressway-Service-area')
    hbb: tuple[float, float, float, float] | None = None
    obb: tuple[float, ...] | None = None
    difficult: bool = False


@dataclass
class QAPair:
    question: str
    answer: str
    qtype: str | None = None  # the dataset's question type (presence, comp, count, area, ...) if it has one


@dataclass
class Referral:
    """A referring expression and the box it refers to (native pixels)."""

    text: str
    hbb: tuple[float, float, float, float]
    label: str | None = None


@dataclass
class RawSample:
    source: str  # registry name, e.g. "dior"
    split: str  # train | val | test | test_phili | all ...
    key: str  # stable id within the source (file stem, image id); unique per (source, split)
    image: str  # path of the image file relative to the dataset's root folder
    modality: str
    width: int | None = None  # None: the converter reads the image header
    height: int | None = None
    label: str | None = None  # classification
    captions: list[str] = field(default_factory=list)
    qa: list[QAPair] = field(default_factory=list)
    objects: list[Box] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)  # extra facts worth keeping (gsd, scenario, ...)
