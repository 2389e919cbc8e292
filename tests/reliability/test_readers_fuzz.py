"""Every reader family against damaged native files, property-based (hypothesis).

A small intact release of each family (the sample corpus where it has one, a minimal native fixture
otherwise) gets one damage per example in one of its annotation files or images: a byte replaced, bytes that
are not UTF-8, a number replaced by NaN / infinity / a huge or negative one, a line dropped or repeated (a
duplicate record, a dangling id), the file cut short, random text inserted; an image emptied, cut short or
replaced. Then the whole conversion runs, and whatever the damage:

- it finishes and writes a manifest (no traceback; a missing required file would be the only error, and no
  damage removes one);
- every record passes the quality checks (schema, coordinates in [0, 1], unique ids), and no answer or
  target holds NaN, an infinity or null where a number belongs;
- every record's image lies inside the release;
- what the reader read is in the records or in the quarantine (the manifest's accounting balances);
- the quarantine report is one JSON object per line.
"""

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmrs.build import convert_source
from mmrs.quality import check_source
from mmrs.readers.base import SourceSpec
from mmrs.registry import READER_MODULES, SOURCES
from mmrs.shards import iter_source_records
from mmrs.synthetic.corpus import DATASETS

ANNOTATION = re.compile(r"\.(json|xml|txt|csv|yaml)$", re.IGNORECASE)
IMAGE = re.compile(r"\.(jpe?g|png|tiff?|bmp)$", re.IGNORECASE)
NUMBER = re.compile(rb"-?\d+(\.\d+)?(e[+-]?\d+)?")
HOSTILE_NUMBERS = [b"nan", b"NaN", b"inf", b"-inf", b"Infinity", b"1e400", b"-1", b"0", b"1e308", b"-0.0",
                   b"99999999999999999999", b"1.5"]


def _jpg(path: Path, size=(64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(path)


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --- minimal native releases of the families the sample corpus does not hold ---------------------------------

def _visdrone(root: Path) -> None:
    for split, folder in (("train", "VisDrone2019-DET-train"), ("val", "VisDrone2019-DET-val")):
        for i in range(3):
            _jpg(root / folder / "images" / f"{split}_{i}.jpg")
            _text(root / folder / "annotations" / f"{split}_{i}.txt",
                  "2,3,10,12,1,4,0,0\n20,5,8,9,1,1,0,1,\n1,1,3,3,0,0,0,0\n30,30,5,5,1,11,0,0\n")


def _nwpu_vhr(root: Path) -> None:
    for i in range(1, 4):
        _jpg(root / "positive image set" / f"{i:03d}.jpg")
        _text(root / "ground truth" / f"{i:03d}.txt", "(2,3),(20,30),1\n\n(30, 10),(50, 40),10\n")
        _jpg(root / "negative image set" / f"{i:03d}.jpg")


def _ucas_aod(root: Path) -> None:
    for folder in ("CAR", "PLANE"):
        for i in range(1, 4):
            _jpg(root / folder / f"P{i:04d}.png")
            _text(root / folder / f"P{i:04d}.txt",
                  "1.0e+01\t1.0e+01\t3.0e+01\t1.0e+01\t3.0e+01\t2.0e+01\t1.0e+01\t2.0e+01\t0\t20\t15\t20\t10\t\n")
    _jpg(root / "Neg" / "n1.png")


def _yolo(root: Path) -> None:
    _text(root / "data.yaml", "names: [ship, boat]\n")
    for split in ("train", "val"):
        for i in range(3):
            _jpg(root / "images" / split / f"{i}.jpg")
            _text(root / "labels" / split / f"{i}.txt", "0 0.5 0.5 0.2 0.3\n1 0.25 0.25 0.1 0.1\n")


def _dscr(root: Path) -> None:
    for split in ("train", "val", "test"):
        rows = ["class,label"]
        for i in range(3):
            _jpg(root / "images" / split / f"{split}{i}.bmp")
            rows.append(f"{split}{i}.bmp,{('destroyer', 'civil', 'cruiser')[i]}")
        _text(root / "annotations" / f"{split}.csv", "\n".join(rows) + "\n")


def _floodnet(root: Path) -> None:
    for split, (questions, images) in {"train": ("Training Question.json", "Train_Image"),
                                       "val": ("Valid Question.json", "Valid_Image"),
                                       "test": ("Test_Question.json", "Test_Image")}.items():
        records = {}
        for i in range(3):
            _jpg(root / "Images" / images / f"{split}{i}.jpg")
            records[str(2 * i)] = {"Image_ID": f"{split}{i}.jpg", "Question": "How many buildings are there?",
                                   "Ground_Truth": i + 1, "Question_Type": "Simple_Counting"}
            records[str(2 * i + 1)] = {"Image_ID": f"{split}{i}.jpg", "Question": "Is the road flooded?",
                                       "Ground_Truth": "No", "Question_Type": "Yes_No"}
        _text(root / "Questions" / questions, json.dumps(records))


def _rsivqa(root: Path) -> None:
    release = root / "RSIVQA"
    for name, folder in SOURCES["rsivqa"].options["folders"].items():
        lines = []
        for i in range(3):
            key = f"{i + 1:05d}" if folder.extension else f"{i + 1}.tif"
            image = (release / folder.images.format(split="train") / (key + folder.extension)).resolve()
            _jpg(image)
            if "{split}" in folder.images:
                _jpg((release / folder.images.format(split="val") / (key + folder.extension)).resolve())
            lines += [f"{key}:what is the theme of this picture?farmland",
                      f"{key}:how many trees are there in this picture?{i + 2}"]
        files = list(folder.file_splits) or [f"{name.lower()}_vqa.txt"]
        for file in files:
            _text(release / name / file, "\n".join(lines) + "\n")


def _coco_captions(root: Path) -> None:
    for split in ("train", "val"):
        images = [{"id": i, "file_name": f"{split}{i}.jpg", "width": 64, "height": 48} for i in range(3)]
        for image in images:
            _jpg(root / f"{split}2017" / image["file_name"])
        annotations = [{"id": 10 * i + j, "image_id": i, "caption": f"A picture number {i} of a field ."}
                       for i in range(3) for j in range(2)]
        _text(root / "annotations" / f"captions_{split}2017.json",
              json.dumps({"images": images, "annotations": annotations}))


def _laion(root: Path) -> None:
    for i in range(3):
        _jpg(root / "00000" / f"00000000{i}.jpg")
        _text(root / "00000" / f"00000000{i}.txt", f"a photo of field number {i}")
        _text(root / "00000" / f"00000000{i}.json", json.dumps({"width": 64, "height": 48}))


FIXTURES = {"visdrone": _visdrone, "nwpu_vhr10": _nwpu_vhr, "ucas_aod": _ucas_aod, "sea_shipping": _yolo,
            "dscr": _dscr, "floodnet": _floodnet, "rsivqa": _rsivqa, "coco_captions": _coco_captions,
            "laion": _laion}
# one source per reader family (and per layout where one family reads several)
FAMILIES = {
    "folders": "nasc_tg2", "karpathy": "rsicd", "nwpu_captions": "nwpu_captions", "rsvqa": "rsvqa_lr",
    "crsvqa": "crsvqa", "floodnet": "floodnet", "rsivqa": "rsivqa", "dota": "dota", "voc": "dior",
    "voc_ssdd": "ssdd", "dior_rsvg": "dior_rsvg", "coco": "hrsid", "coco_twin": "hit_uav", "gaofen": "air_sarship_2",
    "yolo": "sea_shipping", "visdrone": "visdrone", "nwpu_vhr": "nwpu_vhr10", "ucas_aod": "ucas_aod",
    "dscr": "dscr", "coco_captions": "coco_captions", "laion": "laion",
}


@pytest.fixture(scope="module")
def intact(pristine, tmp_path_factory):
    """family -> (its source spec, an intact release folder): generated once per module."""
    made: dict[str, tuple[SourceSpec, Path]] = {}

    def get(family: str) -> tuple[SourceSpec, Path]:
        if family not in made:
            name = FAMILIES[family]
            if name in DATASETS:
                root = pristine(name)
            else:
                root = tmp_path_factory.mktemp(family) / "release"
                FIXTURES[name](root)
                if name == "rsivqa":
                    root = root / "RSIVQA"
            made[family] = (SOURCES[name], root)
        return made[family]

    return get


def test_every_reader_family_is_fuzzed():
    """Every reader module of the registry; YOLO is read through the infrared sets' format detection."""
    fuzzed = {SOURCES[name].reader.__module__.rsplit(".", 1)[1] for name in FAMILIES.values()}
    assert set(READER_MODULES) == fuzzed | {"yolo"} and FAMILIES["yolo"] == "sea_shipping"


@st.composite
def damages(draw):
    kind = draw(st.sampled_from(["byte", "utf8", "number", "truncate", "drop line", "repeat line", "text",
                                 "image", "name"]))
    return kind, draw(st.floats(0, 1)), draw(st.floats(0, 1)), draw(st.integers(0, 255)), draw(
        st.sampled_from(HOSTILE_NUMBERS)), draw(st.text(max_size=12))


def _damage(root: Path, damage, images: Path) -> Path:
    """One damage to one file of the release (`images`: where its images lie, the release or beside it)."""
    kind, where, which, value, number, text = damage
    annotations = sorted(p for p in root.rglob("*") if p.is_file() and ANNOTATION.search(p.name))
    if kind in ("image", "name") or not annotations:  # a folder-per-class set has images only
        files = sorted(p for p in images.rglob("*") if p.is_file() and IMAGE.search(p.name))
        kind = "image" if kind != "name" else kind
    else:
        files = annotations
    target = files[int(which * (len(files) - 1))]
    if kind == "name":  # a file name that is not valid UTF-8
        os.rename(bytes(target), bytes(target.parent) + b"/\xff\xfe" + target.name.encode())
        return target
    data = target.read_bytes()
    at = int(where * len(data))
    if kind == "byte" and data:
        data = data[:at] + bytes([value]) + data[at + 1:]
    elif kind == "utf8":
        data = data[:at] + b"\xff\xfe\xc3" + data[at:]
    elif kind == "number":
        found = list(NUMBER.finditer(data))
        if found:
            match = found[int(where * (len(found) - 1))]
            data = data[:match.start()] + number + data[match.end():]
    elif kind == "truncate":
        data = data[:at]
    elif kind in ("drop line", "repeat line"):
        lines = data.split(b"\n")
        k = int(where * (len(lines) - 1))
        lines[k:k + 1] = [] if kind == "drop line" else [lines[k], lines[k]]
        data = b"\n".join(lines)
    elif kind == "text":
        data = data[:at] + text.encode("utf-8", "surrogatepass") + data[at:]
    elif kind == "image":
        data = (b"", data[:at], b"GIF89a not really", os.urandom(64))[value % 4]
    target.write_bytes(data)
    return target


_NON_FINITE = re.compile(r"(?<![a-z])(nan|inf|infinity)(?![a-z])", re.IGNORECASE)


def _numbers_finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(v is not None and _numbers_finite(v) for v in value) if value and not isinstance(
            value[0], str | dict) else all(_numbers_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_numbers_finite(v) for v in value.values())
    return True


def _check(spec: SourceSpec, root: Path, out: Path) -> None:
    manifest = json.loads((out / spec.name / "manifest.json").read_text())
    assert manifest["accounting"]["balanced"], manifest["accounting"]
    for line in (out / spec.name / "quarantine.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line)
    report = check_source(str(out), spec.name)
    assert (report.schema_errors.count, report.out_of_range.count, report.duplicate_ids.count) == (0, 0, 0), report
    real = os.path.realpath(root if not spec.tile else out / spec.name)
    for record in iter_source_records(str(out / spec.name)):
        assert _numbers_finite(record["target"]), record["id"]
        for turn in record["conversations"][1::2]:
            assert not re.search(r"\b(nan|inf)\b", turn["value"]) or spec.tasks[0] in ("captioning", "vqa"), turn
        if "::" not in record["image"]:
            image = os.path.realpath(os.path.join(real, record["image"]))
            parent = os.path.realpath(root.parent) if spec.name == "rsivqa" else real
            assert image.startswith(parent + os.sep), record["image"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_intact_release_converts_cleanly(intact, tmp_path, family):
    spec, root = intact(family)
    manifest = convert_source(spec, str(root), str(tmp_path))
    assert sum(manifest["images"].values()) > 0
    _check(spec, root, tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "12")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(damage=damages())
def test_damaged_release_never_stops_the_conversion(intact, tmp_path, family, damage, tried):
    spec, root = intact(family)
    tried(f"readers: {family}")
    work = tmp_path / "work"
    if work.exists():
        shutil.rmtree(work)
    copy = work / "release"
    if spec.name == "rsivqa":  # images lie beside the release
        shutil.copytree(root.parent, work, symlinks=True)
        copy = work / "RSIVQA"
    else:
        shutil.copytree(root, copy, symlinks=True)
    _damage(copy, damage, work)
    out = tmp_path / "out"  # kept between examples: a tiled source's tiles are written once (as in real reruns)
    convert_source(spec, str(copy), str(out))
    _check(spec, copy, out)
