"""The accounting rule on the sample corpus: for every source, what the native files hold = the annotation units
in the records + the units quarantined + the units dropped by a rule (docs/reliability.md, "Accounting").

"What the native files hold" is counted here straight from the files, independently of the readers, per
source family (one unit = a class label, a caption, a QA pair, an object or a referring expression):

- folder-per-class sets: the image files under the class folders (one label each);
- Karpathy / NWPU-Captions JSON: the sentences of every image record (`sentences` / `raw*` slots);
- RSVQA trios: the questions referred to by the active images, less those marked inactive;
- CRSVQA: the question lines (a question and the answer line after it);
- DOTA: the object lines of the labelled splits' label files (tiled: the scene objects, before tiling);
- VOC (DIOR, MAR20, SSDD) and Gaofen xml: the `<object>` elements of the listed annotation files;
- DIOR-RSVG: the object indices listed in the split files;
- COCO (HRSID, HIT-UAV): the entries of the `annotations` / `annotation` lists.

Then the same rule on damaged copies, where every unit a damage costs must show up in the quarantine.
"""

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from mmrs.build import convert_source
from mmrs.registry import SOURCES
from mmrs.synthetic.corpus import DATASETS

IMAGE = re.compile(r"\.(jpe?g|png|tiff?|bmp)$", re.IGNORECASE)
OBJECT = re.compile(rb"<object[\s>/]")


def _folder_images(root: Path, class_root: str = "") -> int:
    base = root / class_root
    return sum(1 for p in base.rglob("*") if p.is_file() and IMAGE.search(p.name) and not any(
        part.startswith(".") for part in p.relative_to(base).parts) and len(p.relative_to(base).parts) >= 2)


def _karpathy(root: Path, name: str) -> int:
    return sum(len(image.get("sentences", [])) for image in json.loads((root / name).read_bytes())["images"])


def _nwpu_captions(root: Path) -> int:
    document = json.loads((root / "dataset_nwpu.json").read_bytes())
    return sum(1 for records in document.values() for record in records for key in record
               if re.fullmatch(r"raw(_\d+)?", key))


def _rsvqa(root: Path, prefix: str) -> int:
    total = 0
    for images in root.glob(f"{prefix}_split_*_images.json"):
        questions = json.loads(Path(str(images).replace("_images.json", "_questions.json")).read_bytes())
        active = {q["id"]: q.get("active", True) for q in questions["questions"]}
        for image in json.loads(images.read_bytes())["images"]:
            if image.get("active", True):
                total += sum(1 for qid in image["questions_ids"] if active.get(qid, True))
    return total


def _crsvqa(root: Path) -> int:
    total = 0
    for text in (root / "data" / "text").glob("*.txt"):
        lines = text.read_bytes().split(b"\n")
        while lines and not lines[-1].strip():
            lines.pop()
        total += math.ceil(len(lines) / 2)
    return total


def _dota(root: Path) -> int:
    total = 0
    for split in ("train", "val"):
        for label in (root / split / "labelTxt-v1.0" / "labelTxt").glob("*.txt"):
            total += sum(1 for line in label.read_bytes().split(b"\n")
                         if line.strip() and not line.startswith((b"imagesource", b"gsd")))
    return total


def _voc(root: Path, folder: str, split_files: list[str] | None = None) -> int:
    listed = None
    if split_files is not None:
        listed = {line.split()[0] for f in split_files for line in (root / f).read_text().splitlines() if line.split()}
    return sum(len(OBJECT.findall(xml.read_bytes())) for xml in (root / folder).glob("*.xml")
               if listed is None or xml.stem in listed)


def _dior_rsvg(root: Path) -> int:
    indices = {int(line) for f in ("train.txt", "val.txt", "test.txt")
               for line in (root / f).read_text().split() if line.strip().isdigit()}
    objects = sum(len(OBJECT.findall(xml.read_bytes())) for xml in (root / "Annotations").glob("*.xml"))
    return sum(1 for index in indices if index < objects) + sum(1 for index in indices if index >= objects)


def _coco(root: Path, pattern: str) -> int:
    total = 0
    for path in root.glob(pattern):
        document = json.loads(path.read_bytes())
        total += len(document.get("annotations", document.get("annotation", [])))
    return total


NATIVE = {
    "nwpu_resisc45": lambda r: _folder_images(r),
    "whu_rs19": lambda r: _folder_images(r),
    "aid": lambda r: _folder_images(r),
    "clrs": lambda r: _folder_images(r),
    "nasc_tg2": lambda r: _folder_images(r, "RGB"),
    "rsicd": lambda r: _karpathy(r, "dataset_rsicd.json"),
    "nwpu_captions": _nwpu_captions,
    "rsvqa_lr": lambda r: _rsvqa(r, "LR"),
    "rsvqa_hr": lambda r: _rsvqa(r, "USGS"),
    "crsvqa": _crsvqa,
    "dota": _dota,
    "dior": lambda r: _voc(r, "Annotations/Horizontal Bounding Boxes",
                           [f"ImageSets/Main/{s}.txt" for s in ("train", "val", "test")]),
    "mar20": lambda r: _voc(r, "Annotations/Horizontal Bounding Boxes",
                            [f"ImageSets/Main/{s}.txt" for s in ("train", "test")]),
    "ssdd": lambda r: sum(_voc(r, f"BBox_RBox_PSeg_SSDD/voc_style/Annotations_{s}") for s in ("train", "test")),
    "dior_rsvg": _dior_rsvg,
    "hrsid": lambda r: _coco(r, "annotations/*2017.json"),
    "hit_uav": lambda r: _coco(r, "normal_json/annotations/*.json"),
    "air_sarship_2": lambda r: _voc(r, "AIR-SARShip-2.0-xml"),
}


def _check(manifest: dict, native: int) -> None:
    accounting = manifest["accounting"]
    assert accounting["native"] == native, accounting
    assert accounting["balanced"], accounting
    if not SOURCES[manifest["source"]].tile:  # tiled: a scene object is in every tile that shows it
        assert native == accounting["in_records"] + accounting["quarantined"] + accounting["dropped"], accounting


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_unit_of_the_sample_corpus_is_accounted_for(pristine, tmp_path, name):
    assert sorted(NATIVE) == sorted(DATASETS)
    root = pristine(name)
    manifest = convert_source(SOURCES[name], str(root), str(tmp_path))
    _check(manifest, NATIVE[name](root))


# --- damaged copies: what a damage costs is in the quarantine ------------------------------------------------

def _damage_dota(root: Path) -> None:
    label = root / "train/labelTxt-v1.0/labelTxt/P0003.txt"
    lines = label.read_bytes().split(b"\n")
    lines[2] = b"nan 440 327 444 318 443 318 439 small-vehicle 0"  # a NaN vertex
    lines[3] = b"\xff\xfe 323 1827 323 1827 334 1823 334 small-vehicle 0"  # bytes that are not text
    label.write_bytes(b"\n".join(lines))
    (root / "train/images/P0004.png").unlink()  # a label file whose image is gone


def _damage_dior(root: Path) -> None:
    hbb = root / "Annotations/Horizontal Bounding Boxes"
    first, second, third = sorted(hbb.glob("*.xml"))[:3]
    first.write_bytes(first.read_bytes().replace(b"<annotation>", b"<annotation>\xff<x", 1))  # does not parse
    second.write_bytes(second.read_bytes().replace(b"<annotation", b"<html", 1).replace(b"</annotation>", b"</html>"))
    image = next((root / "JPEGImages-trainval").glob(f"{third.stem}.jpg"), None) or next(
        (root / "JPEGImages-test").glob(f"{third.stem}.jpg"))
    image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])  # cut off


def _damage_rsicd(root: Path) -> None:
    path = root / "dataset_rsicd.json"
    document = json.loads(path.read_bytes())
    document["images"][1]["filename"] = "../../../../etc/passwd"
    document["images"][2]["sentences"][0]["raw"] = ""
    document["images"][2]["sentences"][0]["tokens"] = []
    document["images"][3]["split"] = "nowhere"
    path.write_text(json.dumps(document))
    (root / "RSICD_images" / document["images"][4]["filename"]).write_bytes(b"")  # an empty image file


def _damage_hit_uav(root: Path) -> None:
    path = root / "normal_json/annotations/train.json"
    document = json.loads(path.read_bytes())
    document["annotation"][0]["bbox"][0] = float("nan")
    document["annotation"][1]["category_id"] = 99
    document["images"][0]["file_name"] = "/etc/hostname"
    path.write_text(json.dumps(document))


def _damage_rsvqa(root: Path) -> None:
    path = root / "LR_split_train_answers.json"
    document = json.loads(path.read_bytes())
    document["answers"][0]["answer"] = float("nan")  # json.dumps writes NaN
    path.write_text(json.dumps(document))
    images = json.loads((root / "LR_split_val_images.json").read_bytes())
    (root / "Images_LR" / f"{images['images'][0]['id']}.tif").unlink()


def _damage_classes(root: Path) -> None:
    folder = next(p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    images = sorted(p for p in folder.iterdir() if IMAGE.search(p.name))
    images[0].write_bytes(b"not an image at all")
    images[1].write_bytes(images[1].read_bytes()[:200])
    shutil.move(images[2], root / images[2].name)  # outside any class folder: not a unit any more


DAMAGES = {"dota": _damage_dota, "dior": _damage_dior, "rsicd": _damage_rsicd, "hit_uav": _damage_hit_uav,
           "rsvqa_lr": _damage_rsvqa, "nwpu_resisc45": _damage_classes}


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_damaged_copies_account_for_every_unit(release, tmp_path, name):
    root = release(name)
    DAMAGES[name](root)
    native = NATIVE[name](root)
    manifest = convert_source(SOURCES[name], str(root), str(tmp_path))
    assert set(manifest["quarantine"]["skipped"]) == EXPECTED_REASONS[name]
    _check(manifest, native)


EXPECTED_REASONS = {
    "dota": {"bad number", "undecodable line", "image missing"},
    "dior": {"malformed xml", "truncated image"},
    "rsicd": {"unsafe path", "empty caption", "unknown split", "empty image file"},
    "hit_uav": {"malformed bbox", "unknown class", "unsafe path", "image missing from the horizontal file"},
    "rsvqa_lr": {"missing answer", "image missing"},
    "nwpu_resisc45": {"not an image", "truncated image", "image outside class folders"},
}
