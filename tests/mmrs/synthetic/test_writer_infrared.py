"""HIT-UAV writer: the four official folders read back with real tools and compared with the scenes
rebuilt from (seed, index)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import defusedxml.ElementTree as DET
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmrs.geometry import points_in_convex, rotated_rect_corners, same_vertices
from mmrs.synthetic.corpus import DATASETS, HIT_UAV_OBJECTS, generate_dataset
from mmrs.synthetic.render import painted_centres
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples

SPLITS = ("train", "val", "test")
CATEGORIES = [*HIT_UAV_OBJECTS.values(), "DontCare"]
STEM = re.compile(r"([01])_(\d+)_(\d+)_([01])_(\d{5,})")


@pytest.fixture(scope="module")
def hit_uav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WriteReport, list[GeneratedImage]]:
    """(dataset root, write report, rebuilt samples) for seed 0, scale 1."""
    out = tmp_path_factory.mktemp("infrared")
    report = generate_dataset("hit_uav", out, seed=0, scale=1)
    return out / "HIT-UAV", report, list(iter_samples(DATASETS["hit_uav"], 0, 1))


@pytest.fixture(scope="module")
def stems(hit_uav) -> dict[int, str]:
    """sample index -> file stem, found through the frame number the stem ends with."""
    root, _, _ = hit_uav
    return {int(STEM.fullmatch(p.stem).group(5)): p.stem for p in (root / "normal_xml" / "JPEGImages").iterdir()}


def _objects(root: Path, folder: str, stem: str) -> list:
    return DET.parse(root / folder / "Annotations" / f"{stem}.xml").getroot().findall("object")


def _split_objects(nodes: list) -> tuple[list, list]:
    """(object nodes, DontCare nodes)."""
    dont_care = [n for n in nodes if n.findtext("name") == "DontCare"]
    return [n for n in nodes if n.findtext("name") != "DontCare"], dont_care


def _renamed_coco(path: Path, tmp_path: Path) -> COCO:
    """Load a normal_json file as a reader would: rename `annotation` and `filename` in a copy first."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["annotations"] = data.pop("annotation")
    for image in data["images"]:
        image["file_name"] = image.pop("filename")
    fixed = tmp_path / path.name
    fixed.write_text(json.dumps(data), encoding="utf-8")
    return COCO(str(fixed))


# --- layout ---------------------------------------------------------------------------------------

def test_report(hit_uav):
    _, report, samples = hit_uav
    assert report.images == len(samples) == DATASETS["hit_uav"].images
    assert report.splits == {s: sum(x.split == s for x in samples) for s in SPLITS}
    assert report.annotations >= sum(len(s.scene.objects) for s in samples)


def test_four_official_folders(hit_uav, stems):
    root, _, samples = hit_uav
    assert sorted(p.name for p in root.iterdir()) == ["normal_json", "normal_xml", "rotate_json", "rotate_xml"]
    for folder in ("normal_xml", "rotate_xml"):
        assert sorted(p.name for p in (root / folder).iterdir()) == ["Annotations", "ImageSets", "JPEGImages"]
        main = root / folder / "ImageSets" / "Main"
        assert sorted(p.name for p in main.iterdir()) == ["test.txt", "train.txt", "trainval.txt", "val.txt"]
        for split in SPLITS:
            lines = (main / f"{split}.txt").read_text().splitlines()
            assert lines == [stems[s.index] for s in samples if s.split == split]
        trainval = (main / "trainval.txt").read_text().splitlines()
        assert sorted(trainval) == sorted(stems[s.index] for s in samples if s.split in ("train", "val"))
        assert sorted(p.stem for p in (root / folder / "Annotations").iterdir()) == sorted(stems.values())
    assert {p.name for p in (root / "normal_json").iterdir()} == {"annotations", *SPLITS}
    assert {p.name for p in (root / "rotate_json").iterdir()} == {"annotations", *SPLITS}
    assert {p.name for p in (root / "normal_json" / "annotations").iterdir()} == {f"{s}.json" for s in SPLITS}
    assert {p.name for p in (root / "rotate_json" / "annotations").iterdir()} == {f"{s}.json" for s in SPLITS} | {
        "log.json"}


def test_stems_encode_the_capture(hit_uav, stems):
    _, _, samples = hit_uav
    assert sorted(stems) == [s.index for s in samples]
    altitudes = set()
    for sample in samples:
        scenario, altitude, perspective, weather, _ = (int(g) for g in STEM.fullmatch(stems[sample.index]).groups())
        assert scenario == int(sample.scene.night)
        assert 60 <= altitude <= 130 and altitude % 10 == 0
        assert altitude == min(130, max(60, 10 * round(150 * sample.gsd)))  # documented rule: 1500 x GSD
        assert perspective in range(30, 91, 10) and weather in (0, 1)
        altitudes.add(altitude)
    assert {int(s.scene.night) for s in samples} == {0, 1} and len(altitudes) > 2


def test_one_jpeg_in_four_folders_mode_l(hit_uav, stems):
    root, _, samples = hit_uav
    for sample in samples:
        name = f"{stems[sample.index]}.jpg"
        copies = [root / "normal_xml" / "JPEGImages" / name, root / "rotate_xml" / "JPEGImages" / name,
                  root / "normal_json" / sample.split / name, root / "rotate_json" / sample.split / name]
        data = {p.read_bytes() for p in copies}
        assert len(data) == 1
    img = Image.open(copies[0])
    assert img.format == "JPEG" and img.mode == "L" and img.size == (640, 512)


# --- xml ------------------------------------------------------------------------------------------

def test_normal_xml_boxes_match_the_scenes(hit_uav, stems):
    root, _, samples = hit_uav
    for sample in samples:
        stem, scene = stems[sample.index], sample.scene
        xml = DET.parse(root / "normal_xml" / "Annotations" / f"{stem}.xml").getroot()
        assert xml.findtext("filename") == f"{stem}.jpg" and xml.findtext("size/depth") == "1"
        nodes, _ = _split_objects(xml.findall("object"))
        assert len(nodes) == len(scene.objects)
        for node, obj in zip(nodes, scene.objects, strict=True):
            assert node.findtext("name") == HIT_UAV_OBJECTS[obj.kind]
            assert node.findtext("pose") == stem.split("_")[2]
            box = [float(node.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")]
            assert np.allclose(box, obj.hbb, atol=0.51)


def test_rotate_xml_is_rolabelimg_and_reproduces_the_corners(hit_uav, stems):
    root, _, samples = hit_uav
    for sample in samples:
        stem, scene = stems[sample.index], sample.scene
        xml = DET.parse(root / "rotate_xml" / "Annotations" / f"{stem}.xml").getroot()
        assert xml.get("verified") == "no" and xml.findtext("filename") == stem
        assert re.fullmatch(r"[A-Z]:\\.+\\" + stem + r"\.jpg", xml.findtext("path"))
        assert xml.findtext("size/depth") == "1"
        nodes, _ = _split_objects(xml.findall("object"))
        assert len(nodes) == len(scene.objects)
        for node, obj in zip(nodes, scene.objects, strict=True):
            assert node.findtext("type") == "robndbox" and node.findtext("name") == HIT_UAV_OBJECTS[obj.kind]
            cx, cy, w, h, angle = (float(node.findtext(f"robndbox/{t}")) for t in ("cx", "cy", "w", "h", "angle"))
            assert 0.0 <= angle < math.pi
            assert same_vertices(rotated_rect_corners(cx, cy, w, h, angle), obj.corners, 1e-3)


def test_boxes_enclose_the_painted_objects(hit_uav, stems):
    root, _, samples = hit_uav
    for sample in samples[:10]:
        stem, scene = stems[sample.index], sample.scene
        rotated, _ = _split_objects(_objects(root, "rotate_xml", stem))
        normal, _ = _split_objects(_objects(root, "normal_xml", stem))
        for i, (rnode, nnode) in enumerate(zip(rotated, normal, strict=True)):
            centres = painted_centres(scene, i)
            cx, cy, w, h, angle = (float(rnode.findtext(f"robndbox/{t}")) for t in ("cx", "cy", "w", "h", "angle"))
            assert points_in_convex(centres, rotated_rect_corners(cx, cy, w, h, angle), 1.0).all()
            x0, y0, x1, y1 = (float(nnode.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
            assert points_in_convex(centres, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], 1.0).all()


def test_difficult_flags_tiny_boxes(hit_uav, stems):
    root, _, samples = hit_uav
    flags = set()
    for sample in samples:
        for node in _objects(root, "normal_xml", stems[sample.index]):
            x0, y0, x1, y1 = (int(node.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
            assert node.findtext("difficult") == str(int(max(x1 - x0, y1 - y0) < 8))
            flags.add(node.findtext("difficult"))
    assert flags == {"0", "1"}


def test_dont_care_regions_are_present_and_clear_of_objects(hit_uav, stems):
    root, _, samples = hit_uav
    regions = 0
    for sample in samples:
        stem = stems[sample.index]
        _, dont_care = _split_objects(_objects(root, "normal_xml", stem))
        _, dont_care_rotated = _split_objects(_objects(root, "rotate_xml", stem))
        assert len(dont_care) == len(dont_care_rotated) <= 1
        for node in dont_care:
            x0, y0, x1, y1 = (float(node.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
            for obj in sample.scene.objects:
                ox0, oy0, ox1, oy1 = obj.hbb
                assert x1 < ox0 or ox1 < x0 or y1 < oy0 or oy1 < y0
            regions += 1
    assert regions >= 1


# --- json -----------------------------------------------------------------------------------------

def test_normal_json_quirks_and_coco_load(hit_uav, stems, tmp_path):
    root, _, samples = hit_uav
    by_index = {s.index: s for s in samples}
    for split in SPLITS:
        path = root / "normal_json" / "annotations" / f"{split}.json"
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert set(raw) == {"info", "licenses", "images", "categories", "annotation"}
        assert all("filename" in img and "file_name" not in img for img in raw["images"])
        coco = _renamed_coco(path, tmp_path)
        assert [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))] == CATEGORIES
        assert sorted(coco.getCatIds()) == list(range(5))
        assert sorted(coco.imgs) == [s.index for s in samples if s.split == split]
        for image_id, img in coco.imgs.items():
            sample = by_index[image_id]
            assert img["file_name"] == f"{stems[image_id]}.jpg"
            assert (root / "normal_json" / split / img["file_name"]).is_file()
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            objects = [a for a in anns if a["category_id"] != 4]
            assert len(objects) == len(sample.scene.objects)
            for ann, obj in zip(objects, sample.scene.objects, strict=True):
                x, y, w, h = ann["bbox"]
                assert all(isinstance(v, int) for v in ann["bbox"])
                assert np.allclose((x, y, x + w, y + h), obj.hbb, atol=0.51)
                assert ann["area"] == w * h and ann["segmentation"] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
                assert CATEGORIES[ann["category_id"]] == HIT_UAV_OBJECTS[obj.kind]


def test_rotate_json_schema_boxes_and_log(hit_uav, stems):
    root, report, samples = hit_uav
    by_index = {s.index: s for s in samples}
    counts = dict.fromkeys(CATEGORIES, 0)
    ann_ids = []
    for split in SPLITS:
        data = json.loads((root / "rotate_json" / "annotations" / f"{split}.json").read_text(encoding="utf-8"))
        assert set(data) == {"info", "licenses", "scenarios", "weather", "images", "categories", "annotations"}
        assert [c["name"] for c in data["categories"]] == CATEGORIES
        for img in data["images"]:
            stem = stems[img["id"]]
            assert img["filename"] == f"{stem}.jpg" and (img["width"], img["height"], img["depth"]) == (640, 512, 1)
            scenario, altitude, perspective, weather, _ = stem.split("_")
            assert (img["scenario"], img["altitude"], img["perspective"], img["weather"]) == (
                scenario, altitude, perspective, weather)
        for image_id in {img["id"] for img in data["images"]}:
            anns = [a for a in data["annotations"] if a["image_id"] == image_id]
            objects = [a for a in anns if a["category_id"] != 4]
            scene = by_index[image_id].scene
            assert len(objects) == len(scene.objects)
            for ann, obj in zip(objects, scene.objects, strict=True):
                assert isinstance(ann["difficult"], bool) and len(ann["bbox"]) == 5
                cx, cy, w, h, angle = ann["bbox"]
                assert 0.0 <= angle < math.pi
                assert same_vertices(rotated_rect_corners(cx, cy, w, h, angle), obj.corners, 1e-3)
        for ann in data["annotations"]:
            counts[CATEGORIES[ann["category_id"]]] += 1
            ann_ids.append(ann["id"])
    assert len(set(ann_ids)) == len(ann_ids) == report.annotations
    log = json.loads((root / "rotate_json" / "annotations" / "log.json").read_text(encoding="utf-8"))
    assert log["summary"] == {**counts, "totalIMG": len(samples), "totalBBOX": report.annotations}


def test_output_is_deterministic(hit_uav, tmp_path):
    root, _, _ = hit_uav
    again = generate_dataset("hit_uav", tmp_path, seed=0, scale=1).root
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((root / rel).read_bytes() == (again / rel).read_bytes() for rel in files)
