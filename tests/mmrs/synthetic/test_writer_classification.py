"""Folder-per-class writers (NWPU-RESISC45, WHU-RS19, AID, CLRS, NaSC-TG2) against spec sections C0, C1, C4, C6,
C9, C10 and H."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}
NAMES = ("nwpu_resisc45", "whu_rs19", "aid", "clrs", "nasc_tg2")
# where the class folders lie, relative to the dataset folder
CLASS_ROOT = {"nwpu_resisc45": ".", "whu_rs19": ".", "aid": ".", "clrs": ".", "nasc_tg2": "RGB"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WriteReport]:
    out = tmp_path_factory.mktemp("classification")
    return {name: generate_dataset(name, out, seed=0, scale=1) for name in NAMES}


def read_folder_per_class(class_root: Path) -> list[tuple[str, Path]]:
    """Reader rules of C0: label = folder name, any image extension case-insensitively, hidden files
    ignored, folders sorted."""
    return [(folder.name, path)
            for folder in sorted(p for p in class_root.iterdir() if p.is_dir())
            for path in sorted(folder.iterdir())
            if not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS]


def expected_paths(name: str) -> list[tuple[GeneratedImage, str]]:
    """(sample, path relative to the class root) by the naming rule of each dataset."""
    spec = DATASETS[name]
    numbers: Counter[str] = Counter()
    out = []
    separators = {cls: "-" if i % 2 else "_" for i, cls in enumerate(spec.classes.values())}  # WHU-RS19's repack
    for sample in iter_samples(spec, 0, 1):
        cls = spec.classes[sample.scene_class]
        numbers[cls] += 1
        if name == "whu_rs19":
            file = f"{cls.lower()}{separators[cls]}{numbers[cls]:02d}.jpg"
        elif name == "aid":
            file = f"{cls.lower()}_{numbers[cls]}.jpg"
        elif name == "nwpu_resisc45":
            file = f"{cls}_{numbers[cls]:03d}.jpg"
        elif name == "clrs":
            file = f"{cls}_{numbers[cls]}.{'TIF' if sample.index % 10 == 3 else 'tif'}"
        else:
            file = f"{cls}_{numbers[cls]}.jpg"
        out.append((sample, f"{cls}/{file}"))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_layout_and_labels(generated: dict[str, WriteReport], name: str) -> None:
    report = generated[name]
    class_root = report.root / CLASS_ROOT[name]
    read = read_folder_per_class(class_root)
    expected = expected_paths(name)
    assert [p.relative_to(class_root).as_posix() for _, p in read] == sorted(rel for _, rel in expected)
    assert {label for label, _ in read} == set(DATASETS[name].classes.values())
    assert report.images == report.annotations == len(read) == DATASETS[name].images
    assert report.splits == {"all": len(read)}  # no official split


@pytest.mark.parametrize("name", NAMES)
def test_pixels_are_the_rendered_scene(generated: dict[str, WriteReport], name: str) -> None:
    """Every file decodes to the scene of its sample: exact for TIFF, within JPEG error (q92, 4:2:0)
    otherwise."""
    class_root = generated[name].root / CLASS_ROOT[name]
    spec = DATASETS[name]
    for sample, rel in expected_paths(name):
        with Image.open(class_root / rel) as image:
            assert image.mode == "RGB" and image.size == spec.size
            pixels = np.asarray(image).astype(int)
        diff = np.abs(pixels - sample.pixels().astype(int))
        if rel.lower().endswith(".tif"):
            assert diff.max() == 0, rel
        else:
            assert diff.mean() < 6.0, rel  # another scene differs by > 15


def test_resisc45_numbering() -> None:
    """C1: NNN is a 3-digit zero-padded per-class counter from 001."""
    per_class: dict[str, list[int]] = {}
    for _, rel in expected_paths("nwpu_resisc45"):
        cls, file = rel.split("/")
        match = re.fullmatch(rf"{re.escape(cls)}_(\d{{3}})\.jpg", file)
        assert match, file
        per_class.setdefault(cls, []).append(int(match.group(1)))
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in per_class.values())


@pytest.mark.parametrize("name", NAMES)
def test_ds_store_is_present_and_ignored(generated: dict[str, WriteReport], name: str) -> None:
    class_root = generated[name].root / CLASS_ROOT[name]
    stores = sorted(class_root.rglob(".DS_Store"))
    assert class_root / ".DS_Store" in stores and len(stores) == 2
    assert all(p.read_bytes()[4:8] == b"Bud1" for p in stores)
    assert all(path.name != ".DS_Store" for _, path in read_folder_per_class(class_root))


def test_clrs_mixed_extensions(generated: dict[str, WriteReport]) -> None:
    suffixes = Counter(p.suffix for p in generated["clrs"].root.rglob("*") if p.is_file() and p.suffix)
    assert suffixes[".tif"] > 0 and suffixes[".TIF"] > 0
    assert set(suffixes) == {".tif", ".TIF"}


def test_nasc_tg2_nested_folders_with_spaces(generated: dict[str, WriteReport]) -> None:
    root = generated["nasc_tg2"].root
    assert [p.name for p in root.iterdir()] == ["RGB"]
    assert (root / "RGB" / "rectangular farmland" / "rectangular farmland_1.jpg").is_file()


def test_whu_rs19_separators_differ_between_classes_and_aid_names_files_in_lower_case(generated) -> None:
    whu = {p.parent.name: p.name for p in generated["whu_rs19"].root.rglob("*.jpg")}
    assert whu["Airport"].startswith("airport_") and whu["Port"].startswith("port-")
    assert (generated["aid"].root / "DenseResidential" / "denseresidential_1.jpg").is_file()


def test_deterministic(generated: dict[str, WriteReport], tmp_path: Path) -> None:
    """Same seed, same bytes (NaSC-TG2 and CLRS: JPEG and TIFF encoders)."""
    for name in ("nasc_tg2", "clrs"):
        again = generate_dataset(name, tmp_path, seed=0, scale=1).root
        first = generated[name].root
        files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
        assert all((first / f).read_bytes() == (again / f).read_bytes() for f in files)
