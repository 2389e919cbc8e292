"""The sample corpus: which real datasets are imitated, and how they are generated.

Sizes at scale 1 keep the whole pipeline to a few minutes on 2 CPU cores; `scale` multiplies every
dataset's image count. Image sizes follow the real datasets; ground sample distances are chosen so
objects stay visible at those sizes (documented per dataset where they differ from the real sensor).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mmrs.synthetic.samples import SyntheticDataset, WriteReport, iter_samples


@dataclass(frozen=True)
class SampleCorpusSettings:
    """params.yaml `sample_corpus`: same seed, same bytes; `scale` multiplies every dataset's image count."""

    seed: int = 0
    scale: int = 1

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")


def _writer(ref: str):
    """Resolve "module:function" lazily so importing the registry stays cheap."""
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(f"mmrs.synthetic.writers.{module}"), func)


def _ssdd_split(index: int) -> str:
    """SSDD: test images are those whose 1-based file index ends in 1 or 9."""
    return "test" if (index + 1) % 10 in (1, 9) else "train"


_RESISC_CLASSES = {
    "airport": "airport", "harbor": "harbor", "parking_lot": "parking_lot", "residential": "dense_residential",
    "industrial": "industrial_area", "sports_ground": "tennis_court", "farmland": "rectangular_farmland",
    "forest": "forest", "desert": "desert", "river": "river",
}
_DETECTION_SCENES = ("airport", "harbor", "parking_lot", "industrial", "sports_ground")

DOTA_OBJECTS = {"plane": "plane", "ship": "ship", "vehicle": "small-vehicle", "truck": "large-vehicle",
                "storage_tank": "storage-tank", "tennis_court": "tennis-court"}
DIOR_OBJECTS = {"plane": "airplane", "ship": "ship", "vehicle": "vehicle", "truck": "vehicle",
                "storage_tank": "storagetank", "tennis_court": "tenniscourt"}
HIT_UAV_OBJECTS = {"person": "Person", "vehicle": "Car", "bicycle": "Bicycle", "truck": "OtherVehicle"}

DATASETS: dict[str, SyntheticDataset] = {
    d.name: d
    for d in (
        # --- classification (folder per class) ---
        SyntheticDataset("nwpu_resisc45", "NWPU-RESISC45", "optical", _RESISC_CLASSES, (256, 256), (0.8, 1.2),
                         (("all", 1.0),), 120, "classification:write_nwpu_resisc45"),
        SyntheticDataset("clrs", "CLRS", "optical",
                         {"airport": "airport", "harbor": "port", "parking_lot": "parking",
                          "residential": "residential", "industrial": "industrial", "farmland": "farmland",
                          "forest": "forest", "desert": "desert", "river": "river"},
                         (256, 256), (0.8, 1.2), (("all", 1.0),), 45, "classification:write_clrs"),
        SyntheticDataset("nasc_tg2", "NaSC-TG2", "optical",
                         {"farmland": "rectangular farmland", "forest": "forest", "desert": "desert",
                          "residential": "residential", "river": "river"},
                         (128, 128), (1.5, 2.0), (("all", 1.0),), 25, "classification:write_nasc_tg2"),
        # training sets whose class names are the zero-shot sets' (CLRS port, parking, residential, ...), each
        # with its own category list in the prompt: what lets a model learn to answer from the list it is given
        SyntheticDataset("whu_rs19", "WHU-RS19", "optical",
                         {"airport": "Airport", "harbor": "Port", "parking_lot": "Parking",
                          "residential": "Residential", "industrial": "Industrial", "sports_ground": "footballField",
                          "farmland": "Farmland", "forest": "Forest", "desert": "Desert", "river": "River"},
                         (600, 600), (0.4, 0.6), (("all", 1.0),), 60, "classification:write_whu_rs19"),
        SyntheticDataset("aid", "AID", "optical",
                         {"airport": "Airport", "harbor": "Port", "parking_lot": "Parking",
                          "residential": "DenseResidential", "industrial": "Industrial",
                          "sports_ground": "Playground", "farmland": "Farmland", "forest": "Forest",
                          "desert": "Desert", "river": "River"},
                         (600, 600), (0.5, 2.0), (("all", 1.0),), 60, "classification:write_aid"),
        # --- captioning ---
        SyntheticDataset("rsicd", "RSICD", "optical",
                         {"airport": "airport", "harbor": "port", "parking_lot": "parking",
                          "residential": "denseresidential", "industrial": "industrial",
                          "sports_ground": "playground", "farmland": "farmland", "forest": "forest",
                          "desert": "desert", "river": "river"},
                         (224, 224), (0.8, 1.2), (("train", 0.8), ("val", 0.1), ("test", 0.1)), 60,
                         "captions:write_rsicd"),
        SyntheticDataset("nwpu_captions", "NWPU-Captions", "optical", _RESISC_CLASSES, (256, 256), (0.8, 1.2),
                         (("train", 0.8), ("val", 0.1), ("test", 0.1)), 60, "captions:write_nwpu_captions"),
        # --- VQA (RSVQA-LR is Sentinel-2 at 10 m; objects would vanish, so the corpus uses 1-1.5 m) ---
        SyntheticDataset("rsvqa_lr", "RSVQA_LR", "optical", {c: c for c in _RESISC_CLASSES}, (256, 256),
                         (1.0, 1.5), (("train", 0.8), ("val", 0.1), ("test", 0.1)), 40, "vqa:write_rsvqa_lr"),
        SyntheticDataset("rsvqa_hr", "RSVQA_HR", "optical", {c: c for c in _RESISC_CLASSES}, (512, 512),
                         (0.5, 0.8), (("train", 0.6), ("val", 0.1), ("test", 0.2), ("test_phili", 0.1)), 40,
                         "vqa:write_rsvqa_hr"),
        SyntheticDataset("crsvqa", "CRSVQA", "optical", {c: c for c in _RESISC_CLASSES}, (256, 256), (0.8, 1.2),
                         (("all", 1.0),), 30, "vqa:write_crsvqa"),
        # --- optical detection and grounding ---
        SyntheticDataset("dota", "DOTA", "optical", {c: c for c in ("farmland", *_DETECTION_SCENES)},
                         (1100, 2000), (0.4, 0.8),
                         (("train", 0.5), ("val", 0.2), ("test", 0.3)), 8, "dota:write_dota",
                         size_range=True, edge_objects=True),
        SyntheticDataset("dior", "DIOR", "optical", {c: c for c in _DETECTION_SCENES}, (800, 800), (0.5, 1.0),
                         (("train", 0.25), ("val", 0.25), ("test", 0.5)), 24, "voc:write_dior"),
        SyntheticDataset("mar20", "MAR20", "optical", {"airport": "airport"}, (800, 800), (0.3, 0.5),
                         (("train", 0.35), ("test", 0.65)), 12, "voc:write_mar20"),
        SyntheticDataset("dior_rsvg", "DIOR_RSVG", "optical", {c: c for c in _DETECTION_SCENES}, (800, 800),
                         (0.5, 1.0), (("train", 0.7), ("val", 0.1), ("test", 0.2)), 24, "voc:write_dior_rsvg"),
        # --- SAR ---
        SyntheticDataset("hrsid", "HRSID_JPG", "sar", {"sea": "offshore", "harbor": "inshore"}, (800, 800),
                         (1.0, 3.0), (("train", 0.65), ("test", 0.35)), 20, "sar:write_hrsid"),
        SyntheticDataset("ssdd", "Official-SSDD-OPEN", "sar", {"sea": "offshore", "harbor": "inshore"},
                         (350, 600), (1.0, 3.0), (("train", 0.8), ("test", 0.2)), 30, "sar:write_ssdd",
                         size_range=True, split_of=_ssdd_split),
        SyntheticDataset("air_sarship_2", "AIR-SARShip-2.0", "sar", {"sea": "offshore", "harbor": "inshore"},
                         (1000, 1000), (1.0, 3.0), (("all", 1.0),), 10, "sar:write_air_sarship_2"),
        # --- infrared (UAV at 60-130 m: a few cm per pixel) ---
        SyntheticDataset("hit_uav", "HIT-UAV", "infrared", {"street": "street"}, (640, 512), (0.04, 0.08),
                         (("train", 0.7), ("val", 0.1), ("test", 0.2)), 30, "infrared:write_hit_uav"),
    )
}


def generate_dataset(name: str, out: Path, seed: int = 0, scale: int = 1) -> WriteReport:
    """Write one dataset under out/<spec.folder> and report what was written."""
    spec = DATASETS[name]
    root = Path(out) / spec.folder
    return _writer(spec.writer)(spec, iter_samples(spec, seed, scale), root)


def generate_corpus(out: Path, seed: int = 0, scale: int = 1, names: Iterable[str] | None = None,
                    workers: int = 1) -> Iterator[WriteReport]:
    """Write every dataset (or `names`) of the sample corpus under `out`, `workers` datasets at a time.

    Reports come in the order of `names`; the bytes written do not depend on `workers`."""
    names = list(names or DATASETS)
    if workers <= 1:
        yield from (generate_dataset(name, out, seed, scale) for name in names)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(generate_dataset, names, [out] * len(names), [seed] * len(names),
                            [scale] * len(names))
