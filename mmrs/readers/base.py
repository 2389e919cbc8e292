"""The reader contract and the per-dataset source spec that configures a reader.

A reader is `read(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]`:
- it yields RawSamples in a stable order (sorted files, document order), one per image and split;
- a malformed file or record is skipped with `quarantine.skip(path, reason, record)`, never raised;
- a missing *required* file (e.g. the annotation JSON) raises MissingFileError naming it;
- it keeps native pixel geometry; clamping to the image and dropping degenerate boxes happen in
  conversion (mmrs.geometry), which counts them.
Each reader module lists its datasets as `SOURCES: list[SourceSpec]`; mmrs.registry collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.storage import SourceRoot

Reader = Callable[[SourceRoot, "SourceSpec", Quarantine], Iterator[RawSample]]


@dataclass(frozen=True)
class TileSpec:
    """Cut images larger than `size` into size x size tiles with `overlap` pixels; keep an object in a
    tile when at least `min_visible` of its area is inside (then clip it)."""

    size: int = 1024
    overlap: int = 200
    min_visible: float = 0.7


@dataclass(frozen=True)
class SourceSpec:
    """One source dataset or benchmark.

    name: snake_case registry and CLI name (e.g. "dior_rsvg"); title: as the paper writes it.
    tasks: MMRS tasks produced from it (see mmrs.raw.TASKS). modality: optical | sar | infrared.
    options: reader configuration (sub-paths, class aliases, ...), documented by each reader.
    train_splits: splits that go into MMRS-1M training data; the other splits are converted for
    evaluation only. paper_samples: Table I count (None for evaluation-only sets).
    categories: the class list a classification prompt offers (None: read from the files).
    """

    name: str
    title: str
    tasks: tuple[str, ...]
    modality: str
    reader: Reader
    options: Mapping[str, Any] = field(default_factory=dict)
    train_splits: tuple[str, ...] = ("train", "val")
    paper_samples: int | None = None
    categories: tuple[str, ...] | None = None
    tile: TileSpec | None = None
    evaluation_only: bool = False
    folder: str | None = None  # top folder name of the official release (default: title), for --all
    in_mmrs_1m: bool = True  # False for the stage-2 alignment corpora (COCO Caption, LAION-400M)

    @property
    def release_folder(self) -> str:
        return self.folder or self.title
