"""Folder-per-class reader (datasets.md C0-C6, C8-C10, section H): native trees with every quirk, and the
sample corpus (NWPU-RESISC45, CLRS, NaSC-TG2) against its ground truth."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from mmrs.convert import to_records
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import hash_split
from mmrs.readers.folders import EUROSAT_MS_BANDS, SOURCES, read_folder_per_class
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import iter_samples

SPECS = {spec.name: spec for spec in SOURCES}
PAPER = {"train": 0.2, "test": 0.8}


def _image(path: Path, size: tuple[int, int] = (8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
    Image.new("RGB", size, (10, 20, 30)).save(path, format=fmt[path.suffix.lower()])


def _read(root: Path, spec: SourceSpec) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(spec.name)
    return list(read_folder_per_class(SourceRoot(str(root)), spec, quarantine)), quarantine


def _sample(spec: SourceSpec, key: str, image: str, label: str, split: str | None = None,
            meta: dict[str, str] | None = None) -> RawSample:
    split = split or hash_split(key, spec.options["fractions"])
    return RawSample(spec.name, split, key, image, "optical", label=label, meta=meta or {})


def test_ucmerced_quirks(tmp_path: Path) -> None:
    """Nested class root, mixed-case extensions, hidden files and folders, a sub-folder inside a class,
    a case variant of a class folder, and the three quarantine reasons."""
    images = tmp_path / "Images"
    for rel in ("tenniscourt/tenniscourt07.tif", "tenniscourt/tenniscourt08.TIF", "tenniscourt/extra/t1.JPEG",
                "DenseResidential/denseresidential00.png", "beach/b.jpg", "beach/b.png",  # same key twice
                "roads/roads00.tif",  # not a UCMerced class
                "stray.tif",  # no class folder
                "beach/.hidden.jpg", ".cache/beach/x.jpg", "__MACOSX/beach/._b.jpg"):
        _image(images / rel)
    for rel in (".DS_Store", "beach/.DS_Store", "beach/Thumbs.db", "tenniscourt/readme.txt"):
        (images / rel).write_bytes(b"\x00\x00\x00\x01Bud1")
    spec = SPECS["ucmerced"]
    samples, quarantine = _read(tmp_path, spec)
    assert samples == [
        _sample(spec, "DenseResidential/denseresidential00", "Images/DenseResidential/denseresidential00.png",
                "denseresidential"),
        _sample(spec, "beach/b", "Images/beach/b.jpg", "beach"),
        _sample(spec, "tenniscourt/extra/t1", "Images/tenniscourt/extra/t1.JPEG", "tenniscourt"),
        _sample(spec, "tenniscourt/tenniscourt07", "Images/tenniscourt/tenniscourt07.tif", "tenniscourt"),
        _sample(spec, "tenniscourt/tenniscourt08", "Images/tenniscourt/tenniscourt08.TIF", "tenniscourt"),
    ]
    assert quarantine.skipped == {"unknown class": 1, "image outside class folders": 1, "duplicate key": 1}


def test_class_root_fallback_and_missing(tmp_path: Path) -> None:
    """UCMerced also reads a copy whose classes sit at the root; a required class root that is absent
    raises naming it."""
    _image(tmp_path / "flat" / "river" / "river00.tif")
    samples, _ = _read(tmp_path / "flat", SPECS["ucmerced"])
    assert [(s.key, s.image, s.label) for s in samples] == [("river/river00", "river/river00.tif", "river")]
    only_images = dataclasses.replace(SPECS["ucmerced"],
                                      options={**SPECS["ucmerced"].options, "class_roots": ("Images",)})
    with pytest.raises(MissingFileError, match="Images"):
        _read(tmp_path / "flat", only_images)


def test_whu_rs19_folder_case_variants(tmp_path: Path) -> None:
    """C4: lower-case and separated packagings resolve to the torchrs spelling; file names never matter."""
    for rel in ("airport/airport_01.jpg", "footballfield/x.jpg", "Railway_Station/beach-01.jpg"):
        _image(tmp_path / rel)
    samples, quarantine = _read(tmp_path, SPECS["whu_rs19"])
    assert [(s.key, s.label) for s in samples] == [
        ("Railway_Station/beach-01", "railwayStation"), ("airport/airport_01", "Airport"),
        ("footballfield/x", "footballField")]
    assert quarantine.total_skipped == 0


def test_rsscn7_prefix_is_stripped_in_wording(tmp_path: Path) -> None:
    """C5: the label keeps the folder spelling; the prompt and answer drop the ordering letter."""
    _image(tmp_path / "dRiverLake" / "d001.jpg")
    spec = SPECS["rsscn7"]
    samples, _ = _read(tmp_path, spec)
    assert [(s.key, s.label) for s in samples] == [("dRiverLake/d001", "dRiverLake")]
    record = to_records(samples[0], spec, 400, 400, Quarantine("rsscn7"))[0]
    prompt, answer = (turn["value"] for turn in record["conversations"])
    assert answer == "river and lake"
    assert prompt.endswith("grass, field, industry, river and lake, forest, residential, parking.")


def test_eurosat_rgb_and_ms_packagings(tmp_path: Path) -> None:
    """C2: the RGB jpg packaging by default (old DFKI `2750/`), the 13-band uint16 GeoTIFF on request, its
    band order recorded in meta."""
    _image(tmp_path / "2750" / "AnnualCrop" / "AnnualCrop_1.jpg", (64, 64))
    ms = tmp_path / "EuroSAT_MS" / "SeaLake" / "SeaLake_12.tif"
    ms.parent.mkdir(parents=True)
    tifffile.imwrite(ms, np.arange(13 * 4 * 4, dtype=np.uint16).reshape(4, 4, 13), photometric="minisblack",
                     planarconfig="contig")
    spec = SPECS["eurosat"]
    samples, _ = _read(tmp_path, spec)
    assert samples == [_sample(spec, "AnnualCrop/AnnualCrop_1", "2750/AnnualCrop/AnnualCrop_1.jpg", "AnnualCrop")]
    ms_spec = dataclasses.replace(spec, options={**spec.options, "packaging": "ms"})
    samples, _ = _read(tmp_path, ms_spec)
    meta = {"bands": ",".join(EUROSAT_MS_BANDS), "rgb_bands": "B04,B03,B02"}
    assert samples == [_sample(ms_spec, "SeaLake/SeaLake_12", "EuroSAT_MS/SeaLake/SeaLake_12.tif", "SeaLake",
                               meta=meta)]
    assert meta["bands"].endswith("B11,B12,B8A")
    with tifffile.TiffFile(tmp_path / samples[0].image) as tif:
        assert tif.pages[0].shape == (4, 4, 13) and tif.pages[0].dtype == np.uint16


def test_fgscr_42_labels_are_folder_names(tmp_path: Path) -> None:
    """C8: the class list is unpublished, so any folder is a class, spelled as on disk."""
    _image(tmp_path / "Nimitz-class aircraft carrier" / "0001.bmp")
    samples, _ = _read(tmp_path, SPECS["fgscr_42"])
    assert [(s.key, s.label) for s in samples] == [("Nimitz-class aircraft carrier/0001",
                                                    "Nimitz-class aircraft carrier")]


def test_sources() -> None:
    expected = {"nwpu_resisc45": ("NWPU-RESISC45", 6300, 45), "eurosat": ("EuroSAT", 5400, 10),
                "ucmerced": ("UCMerced-LandUse", 420, 21), "whu_rs19": ("WHU-RS19", 196, 19),
                "rsscn7": ("RSSCN7", 560, 7), "aid": ("AID", None, 30), "fgscr_42": ("FGSCR-42", 3878, None),
                "clrs": ("CLRS", None, 25), "nasc_tg2": ("NaSC-TG2", None, 10)}
    assert {name: (s.title, s.paper_samples, s.categories and len(s.categories)) for name, s in SPECS.items()} \
        == expected
    assert SPECS["ucmerced"].release_folder == "UCMerced_LandUse"
    for name, spec in SPECS.items():
        zero_shot = name in ("clrs", "nasc_tg2")
        assert spec.evaluation_only == zero_shot and spec.tasks == ("classification",)
        assert spec.options["fractions"] == ({"test": 1.0} if zero_shot else PAPER)
        assert spec.train_splits == (() if zero_shot else ("train",))


# --- the sample corpus ------------------------------------------------------------------------------

CORPUS = ("nwpu_resisc45", "clrs", "nasc_tg2")
CLASS_ROOT = {"nwpu_resisc45": "", "clrs": "", "nasc_tg2": "RGB/"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("folders")
    for name in CORPUS:
        generate_dataset(name, out, seed=0, scale=1)
    return out


def _truth(name: str) -> list[tuple[str, str, str]]:
    """(key, image, label) of every generated image, from the generator's samples and naming rules."""
    spec = DATASETS[name]
    numbers: Counter[str] = Counter()
    rows = []
    for sample in iter_samples(spec, 0, 1):
        cls = spec.classes[sample.scene_class]
        numbers[cls] += 1
        n = numbers[cls]
        ext = {"nwpu_resisc45": ".jpg", "nasc_tg2": ".jpg"}.get(name) or (".TIF" if sample.index % 10 == 3 else ".tif")
        stem = f"{cls}_{n:03d}" if name == "nwpu_resisc45" else f"{cls}_{n}"
        rows.append((f"{cls}/{stem}", f"{CLASS_ROOT[name]}{cls}/{stem}{ext}", cls))
    return sorted(rows)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_matches_ground_truth(corpus: Path, name: str) -> None:
    spec = SPECS[name]
    samples, quarantine = _read(corpus / DATASETS[name].folder, spec)
    assert [(s.key, s.image, s.label) for s in samples] == _truth(name)
    assert quarantine.total_skipped == 0  # the .DS_Store files are ignored
    assert all(s.label in spec.categories and s.source == name and s.width is None for s in samples)
    splits = Counter(s.split for s in samples)
    if name == "nwpu_resisc45":
        assert all(s.split == hash_split(s.key, PAPER) for s in samples) and set(splits) == {"train", "test"}
    else:
        assert splits == {"test": DATASETS[name].images}
