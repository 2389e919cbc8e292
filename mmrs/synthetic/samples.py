"""Dataset specs of the sample corpus and the deterministic stream of scenes each one draws.

A `SyntheticDataset` says what a real dataset looks like (sensor, classes under its own names, image
size, ground sample distance, splits, size at scale 1); `iter_samples` yields its `GeneratedImage`s one at a
time from (seed, dataset name, index) alone, so any sample can be rebuilt without the others, output
is identical across runs, and memory stays flat as `scale` grows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from mmrs.synthetic.render import render
from mmrs.synthetic.scene import Scene, sample_scene


@dataclass
class WriteReport:
    """What a writer produced. `annotations` counts annotation records (objects, captions, QA pairs,
    referring expressions or class labels), the unit of the throughput benchmark."""

    dataset: str
    root: Path
    images: int = 0
    annotations: int = 0
    splits: dict[str, int] = field(default_factory=dict)

    def add_image(self, split: str, annotations: int) -> None:
        self.images += 1
        self.annotations += annotations
        self.splits[split] = self.splits.get(split, 0) + 1


@dataclass(frozen=True)
class GeneratedImage:
    """One image-to-be of a dataset. The scene is drawn on first access; pixels are rendered on demand."""

    dataset: str
    index: int
    split: str
    scene_class: str
    sensor: str
    width: int
    height: int
    gsd: float
    seed: int
    edge_objects: bool = False

    @cached_property
    def scene(self) -> Scene:
        return sample_scene(self.rng("scene"), self.scene_class, self.sensor, self.width, self.height, self.gsd,
                            edge_objects=self.edge_objects)

    def rng(self, purpose: str) -> np.random.Generator:
        """An independent generator for one purpose ("scene", "vqa", "quirks", ...) of this sample."""
        return np.random.default_rng([self.seed, zlib.crc32(purpose.encode()), self.index])

    def pixels(self) -> np.ndarray:
        return render(self.scene)


Writer = Callable[["SyntheticDataset", Iterator[GeneratedImage], Path], WriteReport]


@dataclass(frozen=True)
class SyntheticDataset:
    """How one real dataset is imitated.

    classes: our scene class -> the dataset's own class name (only these classes are drawn).
    size: (width, height) in pixels, or (min, max) of a square side when `size_range` is set.
    gsd: (min, max) metres per pixel.
    splits: (split name, fraction) in a fixed order; `split_of` may override by index.
    images: images at scale 1.
    """

    name: str
    folder: str
    sensor: str
    classes: dict[str, str]
    size: tuple[int, int]
    gsd: tuple[float, float]
    splits: tuple[tuple[str, float], ...]
    images: int
    writer: Writer
    size_range: bool = False
    edge_objects: bool = False
    split_of: Callable[[int], str] | None = None

    def split_pattern(self) -> list[str]:
        """A 20-slot cycle of split names with the requested fractions, interleaved (each slot goes to the
        split furthest behind its quota) so that even a handful of images reaches every split."""
        pattern: list[str] = []
        for slot in range(1, 21):
            name, _ = max(self.splits, key=lambda s: s[1] * slot - pattern.count(s[0]))
            pattern.append(name)
        return pattern


def iter_samples(spec: SyntheticDataset, seed: int, scale: int) -> Iterator[GeneratedImage]:
    """Yield spec.images * scale samples; classes rotate so every class reaches every split."""
    pattern = spec.split_pattern()
    classes = list(spec.classes)
    base = zlib.crc32(spec.name.encode())
    for i in range(spec.images * scale):
        split = spec.split_of(i) if spec.split_of else pattern[i % len(pattern)]
        scene_class = classes[(i + i // len(pattern)) % len(classes)]
        rng = np.random.default_rng([seed, base, i, 7])
        if spec.size_range:
            side = int(rng.integers(spec.size[0], spec.size[1] + 1))
            width, height = side, int(rng.integers(int(side * 0.75), side + 1))
        else:
            width, height = spec.size
        gsd = float(rng.uniform(*spec.gsd))
        yield GeneratedImage(spec.name, i, split, scene_class, spec.sensor, width, height, gsd,
                             seed=int(rng.integers(0, 2**31 - 1)), edge_objects=spec.edge_objects)
