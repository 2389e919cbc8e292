"""COCO-instances reader (datasets.md E3 HRSID, F1 HIT-UAV normal_json / rotate_json, F3-F7, section H):
native documents with every quirk, the format chosen at read time for the obscure infrared sets, and the
sample corpus (HRSID, HIT-UAV) against its ground truth."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrs.geometry import clip_hbb
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.coco import SOURCES, coco_split_name
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, HIT_UAV_OBJECTS, generate_dataset
from mmrs.synthetic.samples import iter_samples
from mmrs.synthetic.writers.sar import hrsid_file_name

SPECS = {spec.name: spec for spec in SOURCES}
HALF_PI = math.pi / 2


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _image(path: Path, size: tuple[int, int] = (16, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size).save(path, format="JPEG")


def _read(root: Path, spec: SourceSpec) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(spec.name)
    return list(spec.reader(SourceRoot(str(root)), spec, quarantine)), quarantine


def _corner_set(coords: tuple[float, ...], digits: int = 6) -> set[tuple[float, float]]:
    return {(round(x, digits) + 0.0, round(y, digits) + 0.0) for x, y in zip(coords[0::2], coords[1::2], strict=True)}


# --- HRSID-style documents ----------------------------------------------------------------------------

HRSID_TRAIN = {
    "images": [
        {"id": 1, "file_name": "P0001_0_800_0_800.jpg", "width": 800, "height": 800},
        {"id": 2, "file_name": "P0001_0_800_600_1400.jpg", "width": 800, "height": 800},  # pure background
        {"id": 3, "file_name": "P0002_0_800_0_800.jpg", "width": "800", "height": 0},  # string / unusable size
        {"id": 3, "file_name": "again.jpg"},  # duplicate id
        {"file_name": "no_id.jpg"},
    ],
    "categories": [{"id": 7, "name": "Ship"}, {"id": 8, "name": "iceberg"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 30, 40], "iscrowd": 0, "area": 1200,
         "segmentation": [[10, 20, 40, 20, 40, 60, 10, 60]]},  # 4 points: the obb as written
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [300, 300, 20, 20], "iscrowd": 0,  # a diamond hull
         "segmentation": [[300, 310, 305, 305, 310, 300, 320, 310, 310, 320]]},
        {"id": 3, "image_id": 3, "category_id": 7, "bbox": [1, 2, 3, 4], "iscrowd": 1,
         "segmentation": {"counts": "0a1", "size": [800, 800]}},  # crowd RLE: difficult, no obb
        {"id": 4, "image_id": 3, "category_id": 7, "bbox": ["5", " 6.0 ", "1e1", 4],  # numbers as text
         "segmentation": [5, 6, 15, 6, 15, 10, 5, 10]},  # flat polygon
        {"id": 5, "image_id": 3, "category_id": 8, "bbox": [1, 1, 1, 1]},  # not an HRSID class
        {"id": 6, "image_id": 9, "category_id": 7, "bbox": [1, 1, 1, 1]},  # no such image
        {"id": 7, "image_id": 3, "category_id": 7, "bbox": [1, 1, 1]},
        {"id": 8, "image_id": 3, "category_id": 7, "bbox": [1, 1, 1, "x"]},
        {"id": 9, "image_id": "1", "category_id": 7, "bbox": [50, 50, 10, 10],  # id as text
         "segmentation": [[1, 2, 3]]},
    ],
}


def _hrsid(root: Path) -> None:
    _json(root / "annotations/train2017.json", HRSID_TRAIN)
    (root / "annotations/test2017.json").write_text('{"images": [', encoding="utf-8")
    _image(root / "JPEGImages/P0001_0_800_0_800.jpg")


def test_hrsid_quirks(tmp_path: Path) -> None:
    _hrsid(tmp_path)
    samples, quarantine = _read(tmp_path, SPECS["hrsid"])
    assert [(s.split, s.key, s.image, s.width, s.height) for s in samples] == [
        ("train", "P0001_0_800_0_800", "JPEGImages/P0001_0_800_0_800.jpg", 800, 800),
        ("train", "P0001_0_800_600_1400", "JPEGImages/P0001_0_800_600_1400.jpg", 800, 800),
        ("train", "P0002_0_800_0_800", "JPEGImages/P0002_0_800_0_800.jpg", 800, None),
    ]
    first, background, third = samples
    assert [(b.label, b.hbb, b.difficult) for b in first.objects] == [
        ("ship", (10.0, 20.0, 40.0, 60.0), False), ("ship", (300.0, 300.0, 320.0, 320.0), False),
        ("ship", (50.0, 50.0, 60.0, 60.0), False)]
    assert first.objects[0].obb == (10.0, 20.0, 40.0, 20.0, 40.0, 60.0, 10.0, 60.0)
    assert _corner_set(first.objects[1].obb) == {(300.0, 310.0), (310.0, 300.0), (320.0, 310.0), (310.0, 320.0)}
    assert first.objects[2].obb is None  # a segmentation of 1.5 points gives no obb
    assert background.objects == []
    assert third.objects == [Box("ship", (1.0, 2.0, 4.0, 6.0), None, True),
                             Box("ship", (5.0, 6.0, 15.0, 10.0), (5.0, 6.0, 15.0, 6.0, 15.0, 10.0, 5.0, 10.0))]
    assert quarantine.skipped == {"duplicate image id": 1, "malformed image record": 1, "unknown class": 1,
                                  "unknown image id": 1, "malformed bbox": 2, "malformed json": 1}


def test_hrsid_missing_annotation_file_is_named(tmp_path: Path) -> None:
    """A split whose annotation file is absent is passed over and named; none present is an error."""
    _hrsid(tmp_path)
    (tmp_path / "annotations/test2017.json").unlink()
    samples, quarantine = _read(tmp_path, SPECS["hrsid"])
    assert samples and {s.split for s in samples} == {"train"}
    assert list(quarantine.absent) == ["test"] and "annotations/test2017.json" in quarantine.absent["test"]
    (tmp_path / "annotations/train2017.json").unlink()
    with pytest.raises(MissingFileError, match=r"annotations/test2017\.json"):
        _read(tmp_path, SPECS["hrsid"])


# --- HIT-UAV normal_json + rotate_json ------------------------------------------------------------------

NORMAL_CATEGORIES = [{"supercategory": "Person", "id": 0, "name": "Person"},
                     {"supercategory": "Vehicle", "id": 1, "name": "Car"},
                     {"supercategory": "DontCare", "id": 4, "name": "DontCare"}]
ROTATE_CATEGORIES = [{"id": 0, "name": "Person"}, {"id": 1, "name": "Car"}, {"id": 4, "name": "DontCare"}]


def _normal(images: list[tuple[int, str]], annotations: list[tuple[int, int, list[int]]]) -> dict[str, Any]:
    """normal_json: `annotation` (singular) and `filename`."""
    return {"info": {"year": "2021"}, "licenses": [], "categories": NORMAL_CATEGORIES,
            "images": [{"filename": name, "height": 512, "width": 640, "id": i, "date_captured": "20201217"}
                       for i, name in images],
            "annotation": [{"segmentation": [], "area": 1, "image_id": image, "bbox": bbox, "category_id": cat,
                            "id": n} for n, (image, cat, bbox) in enumerate(annotations)]}


def _rotate(images: list[tuple[int, str]], annotations: list[tuple[int, int, list[float], bool]]) -> dict[str, Any]:
    """rotate_json: image metadata as strings, bbox [cx, cy, w, h, angle], boolean difficult."""
    def image(i: int, name: str) -> dict[str, Any]:
        scenario, altitude, perspective, weather, _ = name[:-4].split("_")
        return {"id": i, "width": 640, "height": 512, "depth": 1, "filename": name, "scenario": scenario,
                "weather": weather, "perspective": perspective, "altitude": altitude, "date": "20201217"}
    return {"info": {}, "licenses": [], "scenarios": [], "weather": [], "categories": ROTATE_CATEGORIES,
            "images": [image(i, name) for i, name in images],
            "annotations": [{"id": n, "image_id": img, "category_id": cat, "difficult": difficult, "bbox": bbox}
                            for n, (img, cat, bbox, difficult) in enumerate(annotations)]}


def _hit_uav(root: Path) -> None:
    a, b = "0_60_30_0_00001.jpg", "1_130_90_0_00002.jpg"
    _json(root / "normal_json/annotations/train.json", _normal(
        [(1, a), (2, b)],
        [(1, 0, [10, 20, 20, 10]), (1, 1, [100, 100, 10, 20]), (1, 4, [300, 300, 40, 40]),
         (2, 1, [50, 50, 10, 10]), (2, 0, [200, 200, 10, 10])]))
    _json(root / "rotate_json/annotations/train.json", _rotate(  # other ids, other order: joined by file name
        [(11, b), (10, a)],
        [(10, 0, [20, 25, 20, 10, 0.0], False), (10, 1, [105, 110, 20, 10, HALF_PI], False),
         (10, 4, [320, 320, 40, 40, 0.0], False),
         (11, 0, [205, 205, 10, 10, 0.0], True), (11, 1, [55, 55, 10, 10, 0.0], False)]))  # class order differs
    _json(root / "normal_json/annotations/val.json", _normal([(0, "0_80_40_0_00003.jpg")], [(0, 0, [1, 2, 3, 4])]))
    _json(root / "rotate_json/annotations/val.json", _rotate([(0, "0_80_40_0_00004.jpg")], []))
    _json(root / "normal_json/annotations/test.json", _normal([], []))
    _json(root / "rotate_json/annotations/test.json", _rotate([], []))


def test_hit_uav_json_pair(tmp_path: Path) -> None:
    _hit_uav(tmp_path)
    samples, quarantine = _read(tmp_path, SPECS["hit_uav"])
    assert [(s.split, s.key, s.image, s.width, s.height, s.meta) for s in samples] == [
        ("train", "0_60_30_0_00001", "normal_json/train/0_60_30_0_00001.jpg", 640, 512,
         {"scenario": "0", "weather": "0", "perspective": "30", "altitude": "60"}),
        ("train", "1_130_90_0_00002", "normal_json/train/1_130_90_0_00002.jpg", 640, 512,
         {"scenario": "1", "weather": "0", "perspective": "90", "altitude": "130"}),
        ("val", "0_80_40_0_00003", "normal_json/val/0_80_40_0_00003.jpg", 640, 512, {}),
    ]
    person, car, dont_care = samples[0].objects
    assert (person.label, person.hbb, person.obb, person.difficult) == \
        ("Person", (10.0, 20.0, 30.0, 30.0), (30.0, 20.0, 30.0, 30.0, 10.0, 30.0, 10.0, 20.0), False)
    assert (car.label, car.hbb, car.difficult) == ("Car", (100.0, 100.0, 110.0, 120.0), False)
    assert car.obb == pytest.approx((110.0, 120.0, 100.0, 120.0, 100.0, 100.0, 110.0, 100.0))
    assert (dont_care.label, dont_care.hbb, dont_care.difficult) == ("DontCare", (300.0, 300.0, 340.0, 340.0), True)
    assert [(b.label, b.hbb, _corner_set(b.obb), b.difficult) for b in samples[1].objects] == [
        ("Car", (50.0, 50.0, 60.0, 60.0), {(50.0, 50.0), (60.0, 50.0), (60.0, 60.0), (50.0, 60.0)}, False),
        ("Person", (200.0, 200.0, 210.0, 210.0), {(200.0, 200.0), (210.0, 200.0), (210.0, 210.0), (200.0, 210.0)},
         True),
    ]
    assert samples[2].objects == [Box("Person", (1.0, 2.0, 4.0, 6.0))]  # no rotated twin: HBB only
    assert quarantine.skipped == {"image missing from the horizontal file": 1}
    assert quarantine.fixed == {"hbb/obb object unpaired": 1}


def test_hit_uav_missing_rotate_file_is_named(tmp_path: Path) -> None:
    _hit_uav(tmp_path)
    (tmp_path / "rotate_json/annotations/test.json").unlink()
    samples, quarantine = _read(tmp_path, SPECS["hit_uav"])
    assert "test" not in {s.split for s in samples}
    assert "rotate_json/annotations/test.json" in quarantine.absent["test"]


# --- F3-F7: the format found at read time ---------------------------------------------------------------

def test_split_names_of_coco_files() -> None:
    assert [coco_split_name(n) for n in ("train", "val2017", "valid", "test", "trainval", "sea_ship")] == \
        ["train", "val", "val", "test", None, None]


def test_auto_coco(tmp_path: Path) -> None:
    """COCO's own layout (`instances_train2017.json` + `train2017/`) and a whole-set file whose file names are
    Windows paths (found by base name in `images/`, hash split to train)."""
    _json(tmp_path / "annotations/instances_train2017.json", {
        "images": [{"id": 1, "file_name": "t1.jpg", "width": 16, "height": 8}],
        "categories": [{"id": 1, "name": "boat"}],
        "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]})
    _json(tmp_path / "annotations/sea.json", {
        "images": [{"id": 5, "file_name": "D:\\infrared\\sea\\s1.jpg"}], "categories": [], "annotations": []})
    _image(tmp_path / "train2017/t1.jpg")
    _image(tmp_path / "images/s1.jpg")
    samples, quarantine = _read(tmp_path, SPECS["sea_shipping"])
    assert samples == [
        RawSample("sea_shipping", "train", "t1", "train2017/t1.jpg", "infrared", 16, 8,
                  objects=[Box("boat", (1.0, 2.0, 4.0, 6.0))]),
        RawSample("sea_shipping", "train", "s1", "images/s1.jpg", "infrared"),
    ]
    assert quarantine.total_skipped == 0


def test_auto_yolo_and_forced_format(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("person\n", encoding="utf-8")
    _image(tmp_path / "images/val/v.jpg", (16, 8))
    (tmp_path / "labels/val").mkdir(parents=True)
    (tmp_path / "labels/val/v.txt").write_text("0 0.5 0.5 0.5 0.5\n", encoding="utf-8")
    expected = [RawSample("aerial_mancar", "val", "images/val/v", "images/val/v.jpg", "infrared", 16, 8,
                          objects=[Box("person", (4.0, 2.0, 12.0, 6.0))])]
    assert _read(tmp_path, SPECS["aerial_mancar"])[0] == expected
    _json(tmp_path / "annotations/train.json", {"images": []})  # COCO would now win the detection ...
    spec = SPECS["aerial_mancar"]
    forced = dataclasses.replace(spec, options={**spec.options, "format": "yolo"})
    assert _read(tmp_path, forced)[0] == expected  # ... unless the format is forced


def test_auto_voc(tmp_path: Path) -> None:
    """A VOC folder goes to the VOC reader of mmrs.readers.voc (split files where present)."""
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations/a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>16</width><height>8</height><depth>1</depth></size>"
        "<object><name>ship</name><difficult>0</difficult>"
        "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5</xmax><ymax>6</ymax></bndbox></object></annotation>",
        encoding="utf-8")
    (tmp_path / "ImageSets/Main").mkdir(parents=True)
    (tmp_path / "ImageSets/Main/test.txt").write_text("a\n", encoding="utf-8")
    _image(tmp_path / "JPEGImages/a.jpg")
    samples, _ = _read(tmp_path, SPECS["oceanic_ship"])
    assert [(s.split, s.key, s.image, s.modality, s.width, s.height) for s in samples] == \
        [("test", "a", "JPEGImages/a.jpg", "infrared", 16, 8)]
    assert [(b.label, b.hbb) for b in samples[0].objects] == [("ship", (1.0, 2.0, 5.0, 6.0))]


def test_auto_nothing_found(tmp_path: Path) -> None:
    _image(tmp_path / "images/a.jpg")
    with pytest.raises(MissingFileError, match=r"annotations/\*\.json.*classes\.txt.*Annotations/"):
        _read(tmp_path, SPECS["infrared_security"])


def test_double_light_vehicle_keeps_the_infrared_half(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("car\n", encoding="utf-8")
    for rel in ("images/ir/f1.jpg", "images/rgb/f1.jpg", "images/f2_ir.jpg", "images/f2_rgb.jpg"):
        _image(tmp_path / rel)
    samples, quarantine = _read(tmp_path, SPECS["double_light_vehicle"])
    assert [s.image for s in samples] == ["images/f2_ir.jpg", "images/ir/f1.jpg"]
    assert quarantine.skipped == {"excluded image": 2}


def test_sources() -> None:
    assert {n: (s.title, s.modality, s.tasks, s.paper_samples) for n, s in SPECS.items()} == {
        "hrsid": ("HRSID", "sar", ("detection_hbb", "detection_obb"), 7265),
        "hit_uav": ("HIT-UAV", "infrared", ("detection_hbb", "detection_obb"), 10608),
        "sea_shipping": ("Sea-shipping", "infrared", ("detection_hbb",), 16023),
        "infrared_security": ("Infrared-security", "infrared", ("detection_hbb",), 17234),
        "aerial_mancar": ("Aerial-mancar", "infrared", ("detection_hbb",), 33051),
        "double_light_vehicle": ("Double-light-vehicle", "infrared", ("detection_hbb",), 7922),
        "oceanic_ship": ("Oceanic ship", "infrared", ("detection_hbb",), 2505),
    }
    assert SPECS["hit_uav"].options["ignore_labels"] == ("DontCare",)
    assert (SPECS["hrsid"].release_folder, SPECS["hit_uav"].release_folder) == ("HRSID_JPG", "HIT-UAV")


# --- the sample corpus ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coco")
    for name in ("hrsid", "hit_uav"):
        generate_dataset(name, out, seed=0, scale=1)
    return out


def _near(a: tuple[float, ...], b: list[tuple[float, float]], tol: float) -> bool:
    """Every corner of `b` lies within `tol` pixels of a corner of the flat polygon `a`."""
    points = list(zip(a[0::2], a[1::2], strict=True))
    return len(points) == 4 and all(min(math.dist(p, q) for q in points) <= tol for p in b)


def _int_hbb(obj, width: int, height: int) -> tuple[float, ...]:
    return tuple(float(round(c)) for c in clip_hbb(obj.hbb, width, height))


def test_corpus_hrsid(corpus: Path) -> None:
    samples, quarantine = _read(corpus / DATASETS["hrsid"].folder, SPECS["hrsid"])
    truth = sorted(iter_samples(DATASETS["hrsid"], 0, 1), key=lambda t: (t.split != "train", t.index))
    assert [(s.split, s.key, s.image, s.width, s.height) for s in samples] == [
        (t.split, hrsid_file_name(t.index)[:-4], f"JPEGImages/{hrsid_file_name(t.index)}", 800, 800) for t in truth]
    assert quarantine.total_skipped == 0
    for sample, t in zip(samples, truth, strict=True):
        ships = [o for o in t.scene.objects if o.kind == "ship"]
        assert [(b.label, b.hbb, b.difficult) for b in sample.objects] == \
            [("ship", _int_hbb(o, 800, 800), False) for o in ships]
        # the obb is the minimum-area rectangle of the integer hull outline: the footprint within rounding
        assert all(_near(b.obb, o.corners, 1.6) for b, o in zip(sample.objects, ships, strict=True))


def test_corpus_hit_uav(corpus: Path) -> None:
    samples, quarantine = _read(corpus / "HIT-UAV", SPECS["hit_uav"])
    truth = {t.index: t for t in iter_samples(DATASETS["hit_uav"], 0, 1)}
    assert sorted(int(s.key.split("_")[-1]) for s in samples) == sorted(truth)
    assert quarantine.total_skipped == 0 and quarantine.fixed == {}
    dont_care = 0
    for sample in samples:
        t = truth[int(sample.key.split("_")[-1])]
        scenario, altitude, perspective, weather, _ = sample.key.split("_")
        assert (sample.split, sample.image, sample.width, sample.height) == \
            (t.split, f"normal_json/{t.split}/{sample.key}.jpg", 640, 512)
        assert sample.meta == {"scenario": scenario, "weather": weather, "perspective": perspective,
                               "altitude": altitude}
        objects = [o for o in t.scene.objects if o.kind in HIT_UAV_OBJECTS]
        boxes = sample.objects[:len(objects)]
        for box, obj in zip(boxes, objects, strict=True):
            hbb = _int_hbb(obj, 640, 512)
            assert (box.label, box.hbb) == (HIT_UAV_OBJECTS[obj.kind], hbb)
            assert box.difficult == (max(hbb[2] - hbb[0], hbb[3] - hbb[1]) < 8)
            assert _near(box.obb, obj.corners, 1e-3)
        extra = sample.objects[len(objects):]
        assert all(b.label == "DontCare" and b.difficult and b.obb for b in extra)
        assert len(extra) <= (t.index % 10 == 3)
        dont_care += len(extra)
    assert dont_care > 0
