"""SAR ship writers (HRSID, SSDD, AIR-SARShip-2.0): native layouts read back with real tools and compared
with the scenes rebuilt from (seed, index)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import defusedxml.ElementTree as DET
import numpy as np
import pytest
import tifffile
from PIL import Image
from pycocotools.coco import COCO

from mmrs.geometry import points_in_convex, polygon_area, rotated_rect_corners, same_vertices
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.render import painted_centres
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples
from mmrs.synthetic.scene import Scene

NAMES = ("hrsid", "ssdd", "air_sarship_2")
SSDD_VOC = Path("BBox_RBox_PSeg_SSDD") / "voc_style"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, WriteReport, list[GeneratedImage]]]:
    """name -> (dataset root, write report, rebuilt samples) for seed 0, scale 1."""
    out = tmp_path_factory.mktemp("sar")
    result = {}
    for name in NAMES:
        report = generate_dataset(name, out, seed=0, scale=1)
        result[name] = (out / DATASETS[name].folder, report, list(iter_samples(DATASETS[name], 0, 1)))
    return result


def _ship_indices(scene: Scene) -> list[int]:
    return [i for i, o in enumerate(scene.objects) if o.kind == "ship"]


def _assert_hbb(box: tuple[float, float, float, float], scene: Scene, index: int) -> None:
    expected = scene.objects[index].hbb
    assert np.allclose(box, expected, atol=0.51), (box, expected)
    centres = painted_centres(scene, index)
    x0, y0, x1, y1 = box
    assert (centres[:, 0] >= x0 - 1).all() and (centres[:, 0] <= x1 + 1).all()
    assert (centres[:, 1] >= y0 - 1).all() and (centres[:, 1] <= y1 + 1).all()


def _xml(path: Path):
    return DET.parse(path).getroot()


# --- reports --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_report_counts_images_and_ships(corpus, name):
    _, report, samples = corpus[name]
    assert report.images == len(samples) == DATASETS[name].images
    assert report.annotations == sum(len(_ship_indices(s.scene)) for s in samples)
    expected_splits: dict[str, int] = {}
    for s in samples:
        expected_splits[s.split] = expected_splits.get(s.split, 0) + 1
    assert report.splits == expected_splits


# --- HRSID ----------------------------------------------------------------------------------------

def test_hrsid_layout_and_chip_names(corpus):
    root, _, samples = corpus["hrsid"]
    assert sorted(p.name for p in root.iterdir()) == ["JPEGImages", "annotations"]
    assert sorted(p.name for p in (root / "annotations").iterdir()) == ["test2017.json", "train2017.json"]
    names = sorted(p.name for p in (root / "JPEGImages").iterdir())
    assert len(names) == len(samples) == len(set(names))
    for name in names:
        m = re.fullmatch(r"P(\d{4})_(\d+)_(\d+)_(\d+)_(\d+)\.jpg", name)
        assert m, name
        r0, r1, c0, c1 = (int(g) for g in m.groups()[1:])
        assert r1 - r0 == 800 and c1 - c0 == 800


def test_hrsid_images_are_gray_in_three_channels(corpus):
    root, _, _ = corpus["hrsid"]
    for path in sorted((root / "JPEGImages").iterdir())[:5]:
        img = Image.open(path)
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (800, 800)
        a = np.asarray(img).astype(int)
        assert np.abs(a[..., 0] - a[..., 1]).max() <= 3 and np.abs(a[..., 1] - a[..., 2]).max() <= 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' mask decoding under numpy 2
def test_hrsid_coco_matches_the_scenes(corpus):
    root, _, samples = corpus["hrsid"]
    by_index = {s.index: s for s in samples}
    seen = 0
    for split in ("train", "test"):
        coco = COCO(str(root / "annotations" / f"{split}2017.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["ship"]
        assert {img["id"] - 1 for img in coco.dataset["images"]} == {s.index for s in samples if s.split == split}
        for image_id, img in coco.imgs.items():
            sample = by_index[image_id - 1]
            scene, ships = sample.scene, _ship_indices(sample.scene)
            assert (root / "JPEGImages" / img["file_name"]).is_file()
            assert (img["width"], img["height"]) == (scene.width, scene.height)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            assert len(anns) == len(ships)
            for ann, i in zip(anns, ships, strict=True):
                x, y, w, h = ann["bbox"]
                _assert_hbb((x, y, x + w, y + h), scene, i)
                polygon = list(zip(ann["segmentation"][0][::2], ann["segmentation"][0][1::2], strict=True))
                assert len(polygon) >= 3 and ann["iscrowd"] == 0
                assert ann["area"] == pytest.approx(polygon_area(polygon))
                assert points_in_convex(np.asarray(polygon, float), scene.objects[i].corners, 1.0).all()
                assert 0 < coco.annToMask(ann).sum() <= w * h + 2 * (w + h)
            seen += len(anns)
    assert seen == sum(len(_ship_indices(s.scene)) for s in samples)


# --- SSDD -----------------------------------------------------------------------------------------

def _ssdd_split(stem: str) -> str:
    return "test" if stem[-1] in "19" else "train"


def test_ssdd_split_rule_and_inshore_offshore_copies(corpus):
    root, _, samples = corpus["ssdd"]
    voc = root / SSDD_VOC
    folders = {"train", "test", "test_inshore", "test_offshore"}
    assert {p.name for p in voc.iterdir()} == {f"{kind}_{f}" for kind in ("Annotations", "JPEGImages") for f in folders}
    for sample in samples:
        stem = f"{sample.index + 1:06d}"
        split = _ssdd_split(stem)
        assert sample.split == split
        other = "train" if split == "test" else "test"
        assert (voc / f"Annotations_{split}" / f"{stem}.xml").is_file()
        assert (voc / f"JPEGImages_{split}" / f"{stem}.jpg").is_file()
        assert not (voc / f"JPEGImages_{other}" / f"{stem}.jpg").exists()
        if split == "test":
            where = "inshore" if sample.scene_class == "harbor" else "offshore"
            for kind, ext in (("Annotations", "xml"), ("JPEGImages", "jpg")):
                copy = voc / f"{kind}_test_{where}" / f"{stem}.{ext}"
                assert copy.read_bytes() == (voc / f"{kind}_test" / f"{stem}.{ext}").read_bytes()
                away = "offshore" if where == "inshore" else "inshore"
                assert not (voc / f"{kind}_test_{away}" / f"{stem}.{ext}").exists()
    test_stems = {p.stem for p in (voc / "JPEGImages_test").iterdir()}
    shore_stems = [p.stem for f in ("inshore", "offshore") for p in (voc / f"JPEGImages_test_{f}").iterdir()]
    assert sorted(shore_stems) == sorted(test_stems) and test_stems
    assert all(any((voc / f"JPEGImages_test_{f}").iterdir()) for f in ("inshore", "offshore"))


def _ssdd_xml(root: Path, sample: GeneratedImage):
    stem = f"{sample.index + 1:06d}"
    return _xml(root / SSDD_VOC / f"Annotations_{_ssdd_split(stem)}" / f"{stem}.xml")


def test_ssdd_images_have_variable_sizes_and_three_gray_channels(corpus):
    root, _, samples = corpus["ssdd"]
    sizes = set()
    for sample in samples:
        stem = f"{sample.index + 1:06d}"
        img = Image.open(root / SSDD_VOC / f"JPEGImages_{_ssdd_split(stem)}" / f"{stem}.jpg")
        xml = _ssdd_xml(root, sample)
        assert img.mode == "RGB" and img.size == (sample.scene.width, sample.scene.height)
        assert (int(xml.findtext("size/width")), int(xml.findtext("size/height"))) == img.size
        assert xml.findtext("size/depth") == "3" and xml.findtext("filename") == f"{stem}.jpg"
        sizes.add(img.size)
    assert len(sizes) > 5


def test_ssdd_boxes_rboxes_and_polygons_match_the_scenes(corpus):
    root, _, samples = corpus["ssdd"]
    for sample in samples:
        scene, ships = sample.scene, _ship_indices(sample.scene)
        objects = _ssdd_xml(root, sample).findall("object")
        assert len(objects) == len(ships)
        for node, i in zip(objects, ships, strict=True):
            obj = scene.objects[i]
            assert node.findtext("name") == "ship"
            b = {t: float(node.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax", "bbox_w", "bbox_h")}
            _assert_hbb((b["xmin"], b["ymin"], b["xmax"], b["ymax"]), scene, i)
            assert (b["bbox_w"], b["bbox_h"]) == (b["xmax"] - b["xmin"], b["ymax"] - b["ymin"])
            r = {t: float(node.findtext(f"rotated_bndbox/rotated_bbox_{t}")) for t in ("cx", "cy", "w", "h", "theta")}
            assert 0.0 <= r["theta"] < 90.0
            rebuilt = rotated_rect_corners(r["cx"], r["cy"], r["w"], r["h"], math.radians(r["theta"]))
            assert same_vertices(rebuilt, obj.corners, 0.05)
            corners = [(float(node.findtext(f"rotated_bndbox/x{k}")), float(node.findtext(f"rotated_bndbox/y{k}")))
                       for k in range(1, 5)]
            assert same_vertices(corners, obj.corners, 0.71)
            segm = [tuple(float(v) for v in p.text.split(",")) for p in node.find("segm")]
            assert [p.tag for p in node.find("segm")] == [f"point-{k}" for k in range(1, len(segm) + 1)]
            assert len(segm) >= 3 and points_in_convex(np.asarray(segm), obj.corners, 1.0).all()


def test_ssdd_obbs_enclose_the_painted_ships(corpus):
    _, _, samples = corpus["ssdd"]
    for sample in samples[:12]:
        for i in _ship_indices(sample.scene):
            assert points_in_convex(painted_centres(sample.scene, i), sample.scene.objects[i].corners, 1.0).all()


def test_ssdd_is_deterministic(corpus, tmp_path):
    root, _, _ = corpus["ssdd"]
    again = generate_dataset("ssdd", tmp_path, seed=0, scale=1).root
    first = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert first == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((root / rel).read_bytes() == (again / rel).read_bytes() for rel in first)


# --- AIR-SARShip-2.0 ------------------------------------------------------------------------------

def test_air_sarship_layout_and_16_bit_tiff(corpus):
    root, _, samples = corpus["air_sarship_2"]
    ids = [str(s.index + 1) for s in samples]
    assert sorted(p.name for p in root.iterdir()) == ["AIR-SARShip-2.0-data", "AIR-SARShip-2.0-xml"]
    assert sorted(p.name for p in (root / "AIR-SARShip-2.0-data").iterdir()) == sorted(f"{i}.tiff" for i in ids)
    assert sorted(p.name for p in (root / "AIR-SARShip-2.0-xml").iterdir()) == sorted(f"{i}.xml" for i in ids)
    for image_id in ids[:3]:
        dn = tifffile.imread(root / "AIR-SARShip-2.0-data" / f"{image_id}.tiff")
        assert dn.dtype == np.uint16 and dn.shape == (1000, 1000)
        assert dn.max() > 10 * np.median(dn)


def test_air_sarship_gaofen_xml_matches_the_scenes(corpus):
    root, _, samples = corpus["air_sarship_2"]
    spellings = set()
    for sample in samples:
        image_id = sample.index + 1
        xml = _xml(root / "AIR-SARShip-2.0-xml" / f"{image_id}.xml")
        assert xml.findtext("source/filename") == f"{image_id}.tiff"
        ships = _ship_indices(sample.scene)
        objects = xml.findall("objects/object")
        assert len(objects) == len(ships)
        for node, i in zip(objects, ships, strict=True):
            assert node.findtext("possibleresult/name") == "ship"
            texts = [p.text for p in node.findall("points/point")]
            spellings.update("space" if ", " in t else "tight" for t in texts)
            points = [tuple(float(v) for v in t.split(",")) for t in texts]
            assert len(points) == 5 and points[0] == points[4]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            assert points[0] == (min(xs), min(ys))  # top-left first
            assert set(points) == {(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))}
            _assert_hbb((min(xs), min(ys), max(xs), max(ys)), sample.scene, i)
    assert spellings == {"space", "tight"}
