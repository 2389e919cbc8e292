"""Folder-per-class scene and ship classification sets (datasets.md C0-C6, C8-C10).

Layout: `<class root>/<class folder>/.../<image>`; the label is the class folder (the first folder under the
class root), images may lie deeper inside it. There is no annotation file, so width/height stay None (the
converter reads the headers). Rules of C0: any extension in {jpg, jpeg, png, tif, tiff, bmp} whatever its
case, hidden files and folders (`.DS_Store`, `.git`, `__MACOSX`) and non-image files (`Thumbs.db`) ignored,
files listed in sorted order.

Options (`SourceSpec.options`):
- `class_roots`: candidate folders holding the class folders, relative to the dataset root; the first that
  exists is used ("" = the root itself). E.g. UCMerced `Images`, NaSC-TG2 `RGB`.
- `classes`: the class folders in the dataset's own spelling, which is the label (`RawSample.label`) and the
  `categories` of the prompt. Folders match exactly, then case-/separator-insensitively (`Airport` =
  `airport`, `footballField` = `footballfield` = `football_field`); a folder outside the list is quarantined
  image by image as "unknown class". None: any folder name is a label as written (FGSCR-42, whose class
  list is not published).
- `display_names`: label -> natural wording where `display_name` would not find it (`denseresidential` ->
  "dense residential", RSSCN7 `aGrass` -> "grass": the ordering letter stripped); the converter words
  answers and categories through it.
- `fractions`: split -> fraction for `hash_split` on the key (no dataset here has an official split):
  {"train": 0.2, "test": 0.8} is the paper's protocol (Table II); {"test": 1.0} for the zero-shot
  benchmarks.
- `packagings` / `packaging`: named option sets merged over the others, `packaging` picking one (EuroSAT's
  RGB jpg and 13-band MS GeoTIFF releases), or "auto": the one whose own class root the release has, else
  the one whose `extensions` its files have (`effective_options`). A packaging's `bands` (band names in
  file order) is recorded in each sample's meta as `bands`, with `rgb_bands` naming the bands of an RGB
  preview.

Key: the image path below the class root without its extension (`baseball_diamond/baseball_diamond_042`);
image: the path relative to the dataset root.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import ClassMap, hash_split, is_image
from mmrs.storage import MissingFileError, SourceRoot

PAPER_FRACTIONS = {"train": 0.2, "test": 0.8}  # Table II: 20 % of each set trains, 80 % tests
ZERO_SHOT = {"test": 1.0}
HIDDEN_FOLDERS = ("__MACOSX",)


class FolderClasses:
    """Resolve class folders to canonical names: the ClassMap rules (exact, loose, then compact: `footballfield`
    matches `footballField`)."""

    def __init__(self, names: Iterable[str]):
        self.map = ClassMap(names)

    def resolve(self, folder: str) -> str | None:
        return self.map.resolve(folder)


def effective_options(spec: SourceSpec, root: SourceRoot | None = None) -> dict[str, Any]:
    """spec.options with the selected packaging's options merged over them. Packaging "auto" (needs `root`)
    picks the packaging whose own class root exists (the first non-empty candidate found, in the order of
    `packagings`), else the one whose images' file type the release holds (EuroSAT: `.jpg` RGB, `.tif` MS)."""
    options = dict(spec.options)
    packaging = options.get("packaging")
    if packaging == "auto":
        packaging = detect_packaging(root, options["packagings"]) if root is not None else next(
            iter(options["packagings"]))
    if packaging is not None:
        options |= options["packagings"][packaging]
    return options


def detect_packaging(root: SourceRoot, packagings: Mapping[str, Mapping[str, Any]]) -> str:
    """The packaging a release is in (see effective_options)."""
    for name, options in packagings.items():
        if any(folder and root.isdir(folder) for folder in options.get("class_roots", ())):
            return name
    suffixes = {posixpath.splitext(path)[1].lower() for path in islice(root.walk_files(""), 2000)}
    for name, options in packagings.items():
        if suffixes & set(options.get("extensions", ())):
            return name
    return next(iter(packagings))


def class_root(root: SourceRoot, candidates: Iterable[str]) -> str:
    """The first candidate folder that exists; MissingFileError naming the candidates when none does."""
    candidates = tuple(candidates)
    for rel in candidates:
        if root.isdir(rel):
            return rel
    raise MissingFileError(f"required class folder missing: none of {list(candidates)} under {root.uri('')}")


def _hidden(parts: list[str]) -> bool:
    return any(part.startswith(".") or part in HIDDEN_FOLDERS for part in parts)


def _band_meta(options: Mapping[str, Any]) -> dict[str, str]:
    bands = options.get("bands")
    if not bands:
        return {}
    return {"bands": ",".join(bands), "rgb_bands": ",".join(options["rgb_bands"])}


def read_folder_per_class(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """One RawSample per image under the class root, labelled by its class folder (see module docstring)."""
    options = effective_options(spec, root)
    base = class_root(root, options.get("class_roots", ("",)))
    names = options.get("classes")
    classes = FolderClasses(names) if names is not None else None
    fractions = options["fractions"]
    meta = _band_meta(options)
    prefix = base + "/" if base else ""
    seen: set[str] = set()
    for path in root.walk_files(base):
        inner = path[len(prefix):]
        parts = inner.split("/")
        if _hidden(parts) or not is_image(parts[-1]):
            continue
        if len(parts) < 2:
            quarantine.skip(root.uri(path), "image outside class folders", units=0)  # no folder: no label
            continue
        label = classes.resolve(parts[0]) if classes is not None else parts[0]
        if label is None:
            quarantine.skip(root.uri(path), "unknown class", parts[0])
            continue
        key = posixpath.splitext(inner)[0]
        if key in seen:
            quarantine.skip(root.uri(path), "duplicate key", key)
            continue
        seen.add(key)
        yield RawSample(spec.name, hash_split(key, fractions), key, path, spec.modality, label=label,
                        meta=dict(meta))


def _spec(name: str, title: str, classes: tuple[str, ...] | None, paper_samples: int | None,
          evaluation_only: bool = False, folder: str | None = None, **options: Any) -> SourceSpec:
    return SourceSpec(
        name=name, title=title, tasks=("classification",), modality="optical", reader=read_folder_per_class,
        options={"classes": classes, "fractions": ZERO_SHOT if evaluation_only else PAPER_FRACTIONS, **options},
        train_splits=() if evaluation_only else ("train",), paper_samples=paper_samples, categories=classes,
        evaluation_only=evaluation_only, folder=folder,
    )


NWPU_RESISC45_FOLDERS = (
    "airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral", "church",
    "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert", "forest", "freeway",
    "golf_course", "ground_track_field", "harbor", "industrial_area", "intersection", "island", "lake", "meadow",
    "medium_residential", "mobile_home_park", "mountain", "overpass", "palace", "parking_lot", "railway",
    "railway_station", "rectangular_farmland", "river", "roundabout", "runway", "sea_ice", "ship", "snowberg",
    "sparse_residential", "stadium", "storage_tank", "tennis_court", "terrace", "thermal_power_station", "wetland",
)
EUROSAT_FOLDERS = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")
# C2: band order of the MS GeoTIFFs (B8A last, EuroSAT issue #7); RGB = B04, B03, B02.
EUROSAT_MS_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
EUROSAT_PACKAGINGS = {
    "rgb": {"class_roots": ("2750", "EuroSAT_RGB", ""), "extensions": (".jpg", ".jpeg")},
    "ms": {"class_roots": ("EuroSAT_MS", "ds/images/remote_sensing/otherDatasets/sentinel_2/tif", ""),
           "extensions": (".tif", ".tiff"), "bands": EUROSAT_MS_BANDS, "rgb_bands": ("B04", "B03", "B02")},
}
UCMERCED_NAMES = {
    "baseballdiamond": "baseball diamond", "denseresidential": "dense residential", "golfcourse": "golf course",
    "mediumresidential": "medium residential", "mobilehomepark": "mobile home park", "parkinglot": "parking lot",
    "sparseresidential": "sparse residential", "storagetanks": "storage tanks", "tenniscourt": "tennis court",
}
UCMERCED_FOLDERS = (
    "agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral", "denseresidential", "forest",
    "freeway", "golfcourse", "harbor", "intersection", "mediumresidential", "mobilehomepark", "overpass",
    "parkinglot", "river", "runway", "sparseresidential", "storagetanks", "tenniscourt",
)
WHU_RS19_FOLDERS = ("Airport", "Beach", "Bridge", "Commercial", "Desert", "Farmland", "Forest", "Industrial",
                    "Meadow", "Mountain", "Park", "Parking", "Pond", "Port", "Residential", "River", "Viaduct",
                    "footballField", "railwayStation")
# C5: the first letter is an ordering prefix, stripped from the name.
RSSCN7_NAMES = {"aGrass": "grass", "bField": "field", "cIndustry": "industry", "dRiverLake": "river and lake",
                "eForest": "forest", "fResident": "residential", "gParking": "parking"}
AID_FOLDERS = ("Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
               "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "MediumResidential",
               "Mountain", "Park", "Parking", "Playground", "Pond", "Port", "RailwayStation", "Resort", "River",
               "School", "SparseResidential", "Square", "Stadium", "StorageTanks", "Viaduct")
CLRS_FOLDERS = ("airport", "bare-land", "beach", "bridge", "commercial", "desert", "farmland", "forest",
                "golf-course", "highway", "industrial", "meadow", "mountain", "overpass", "park", "parking",
                "playground", "port", "railway", "railway-station", "residential", "river", "runway", "stadium",
                "storage-tank")
# C10: names recalled from the paper (UNCERTAIN, as is their folder spelling: matched loosely).
NASC_TG2_FOLDERS = ("beach", "circular farmland", "cloud", "desert", "forest", "mountain", "rectangular farmland",
                    "residential", "river", "snowberg")

SOURCES: list[SourceSpec] = [
    _spec("nwpu_resisc45", "NWPU-RESISC45", NWPU_RESISC45_FOLDERS, 6300),
    _spec("eurosat", "EuroSAT", EUROSAT_FOLDERS, 5400, packagings=EUROSAT_PACKAGINGS, packaging="auto"),
    _spec("ucmerced", "UCMerced-LandUse", UCMERCED_FOLDERS, 420, display_names=UCMERCED_NAMES,
          class_roots=("Images", ""), folder="UCMerced_LandUse"),
    _spec("whu_rs19", "WHU-RS19", WHU_RS19_FOLDERS, 196),
    _spec("rsscn7", "RSSCN7", tuple(RSSCN7_NAMES), 560, display_names=RSSCN7_NAMES),
    _spec("aid", "AID", AID_FOLDERS, None),  # named in the paper's text, not in Table I
    _spec("fgscr_42", "FGSCR-42", None, 3878),  # class list unpublished: the folder names are the labels
    _spec("clrs", "CLRS", CLRS_FOLDERS, None, evaluation_only=True),
    _spec("nasc_tg2", "NaSC-TG2", NASC_TG2_FOLDERS, None, evaluation_only=True, class_roots=("RGB", "")),
]
