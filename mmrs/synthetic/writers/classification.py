"""Folder-per-class scene classification datasets (spec sections C0, C1, C4, C6, C9, C10).

The class label is the folder name; there is no annotation file and no official split. Layouts:

- NWPU-RESISC45: `NWPU-RESISC45/<class>/<class>_<NNN>.jpg`, NNN = 001, 002, ... per class.
- CLRS: `CLRS/<class>/<class>_<n>.tif`, n = 1, 2, ... per class; every tenth image (by sample index)
  has the upper-case extension `.TIF` (the mixed-extension quirk; the naming itself is UNCERTAIN).
- NaSC-TG2: `NaSC-TG2/RGB/<class>/<class>_<n>.jpg` (class folders nested one level down; names such as
  `rectangular farmland` contain spaces).
- WHU-RS19: `WHU-RS19/<Class>/<class>_<NN>.jpg`, 600x600, folder names capitalised except `footballField` and
  `railwayStation`; in every other class the separator is `-` (`beach-01.jpg`), the repack quirk that forbids
  reading the class from the file name.
- AID: `AID/<Class>/<lowercaseclass>_<n>.jpg`, 600x600 (`StorageTanks/storagetanks_12.jpg`).

Each dataset also holds macOS `.DS_Store` files (in the folder holding the classes and in the first
class folder written), which readers must ignore.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.writers.common import save_image

# A Finder metadata file: the "Bud1" buddy-allocator magic followed by an empty block.
DS_STORE = b"\x00\x00\x00\x01Bud1" + bytes(2040)

# file name of an image from (class folder name, 1-based number within the class, sample)
FileNamer = Callable[[str, int, GeneratedImage], str]


def write_class_folders(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path,
                        class_root: Path, file_name: FileNamer) -> WriteReport:
    """Write `class_root/<class>/<file_name(class, n, sample)>` per sample, n counted per class from 1,
    plus `.DS_Store` files in `class_root` and in the first class folder."""
    report = WriteReport(spec.name, root)
    numbers: Counter[str] = Counter()
    first_folder: Path | None = None
    for sample in samples:
        class_name = spec.classes[sample.scene_class]
        numbers[class_name] += 1
        path = class_root / class_name / file_name(class_name, numbers[class_name], sample)
        save_image(path, sample.pixels())
        first_folder = first_folder or path.parent
        report.add_image(sample.split, 1)
    for folder in (class_root, first_folder):
        if folder is not None:
            (folder / ".DS_Store").write_bytes(DS_STORE)
    return report


def write_nwpu_resisc45(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """NWPU-RESISC45 (C1): `<class>/<class>_<NNN>.jpg`, 256x256 RGB JPEG."""
    return write_class_folders(spec, samples, root, root, lambda cls, n, _: f"{cls}_{n:03d}.jpg")


def clrs_extension(index: int) -> str:
    """`.TIF` for every tenth sample index (3, 13, 23, ...), `.tif` otherwise."""
    return ".TIF" if index % 10 == 3 else ".tif"


def write_clrs(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """CLRS (C9): `<class>/<class>_<n>.tif` RGB TIFF, a few with the extension `.TIF`."""
    return write_class_folders(spec, samples, root, root,
                               lambda cls, n, sample: f"{cls}_{n}{clrs_extension(sample.index)}")


def whu_rs19_file(class_name: str, number: int, class_index: int) -> str:
    """`airport_01.jpg`, or `beach-01.jpg` in every other class (by the class's position in the dataset)."""
    return f"{class_name.lower()}{'-' if class_index % 2 else '_'}{number:02d}.jpg"


def write_whu_rs19(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """WHU-RS19 (C4): `<Class>/<class>_<NN>.jpg` or `<class>-<NN>.jpg`, 600x600 RGB JPEG."""
    order = {name: i for i, name in enumerate(spec.classes.values())}
    return write_class_folders(spec, samples, root, root, lambda cls, n, _: whu_rs19_file(cls, n, order[cls]))


def write_aid(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """AID (C6): `<Class>/<lowercaseclass>_<n>.jpg`, 600x600 RGB JPEG."""
    return write_class_folders(spec, samples, root, root, lambda cls, n, _: f"{cls.lower()}_{n}.jpg")


def write_nasc_tg2(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """NaSC-TG2 (C10): `RGB/<class>/<class>_<n>.jpg`, 128x128 RGB JPEG."""
    return write_class_folders(spec, samples, root, root / "RGB", lambda cls, n, _: f"{cls}_{n}.jpg")
