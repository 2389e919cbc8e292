"""VOC-xml writers: DIOR / DIOR-R (D2), MAR20 (D9) and DIOR-RSVG (G1) against their scenes and section H."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # element type only; parsing goes through defusedxml
from collections import Counter
from pathlib import Path

import defusedxml.ElementTree as DET
import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import Polygon

from mmrs.synthetic.corpus import DATASETS, DIOR_OBJECTS, generate_dataset
from mmrs.synthetic.render import object_mask
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples
from mmrs.synthetic.scene import Scene
from mmrs.synthetic.truth import referring_expressions, resolve
from mmrs.synthetic.writers.voc import rsvg_stem

HBB_DIR, OBB_DIR = "Annotations/Horizontal Bounding Boxes", "Annotations/Oriented Bounding Boxes"
CORNER_TAGS = ("left_top", "right_top", "right_bottom", "left_bottom")
ROUND_TOL = 0.5 + 1e-6
PAINT_TOL = 1.0  # px between a painted pixel (its unit square) and the written box

Generated = tuple[Path, WriteReport, list[GeneratedImage]]


def generate(tmp_path_factory: pytest.TempPathFactory, name: str) -> Generated:
    out = tmp_path_factory.mktemp(name)
    report = generate_dataset(name, out, seed=0, scale=1)
    return out / DATASETS[name].folder, report, list(iter_samples(DATASETS[name], 0, 1))


@pytest.fixture(scope="module")
def dior(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return generate(tmp_path_factory, "dior")


@pytest.fixture(scope="module")
def mar20(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return generate(tmp_path_factory, "mar20")


@pytest.fixture(scope="module")
def rsvg(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return generate(tmp_path_factory, "dior_rsvg")


# --- reading helpers (the reader rules of datasets.md section 1) -----------------------------------

def parse(path: Path) -> ET.Element:
    return DET.parse(path).getroot()


def objects(root: ET.Element) -> list[ET.Element]:
    return root.findall("object")


def name_of(obj: ET.Element) -> str:
    """`object/name` as a direct child (a document-wide search would hit `owner/name`)."""
    return obj.find("name").text


def bndbox(obj: ET.Element) -> list[float]:
    box = obj.find("bndbox")
    return [float(box.find(tag).text) for tag in ("xmin", "ymin", "xmax", "ymax")]


def robndbox(obj: ET.Element) -> list[tuple[float, float]]:
    box = obj.find("robndbox")
    return [(float(box.find(f"x_{t}").text), float(box.find(f"y_{t}").text)) for t in CORNER_TAGS]


def clipped_hbb(scene: Scene, i: int) -> list[float]:
    x0, y0, x1, y1 = scene.objects[i].hbb
    return [min(max(x0, 0), scene.width), min(max(y0, 0), scene.height),
            min(max(x1, 0), scene.width), min(max(y1, 0), scene.height)]


def hbb_polygon(box: list[float]) -> Polygon:
    x0, y0, x1, y1 = box
    return Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def assert_encloses_painted(polygon: Polygon, scene: Scene, i: int) -> None:
    ys, xs = np.nonzero(object_mask(scene, i))
    assert shapely.distance(polygon, shapely.box(xs, ys, xs + 1, ys + 1)).max() <= PAINT_TOL


def assert_corners_match(written: list[tuple[float, float]], corners: list[tuple[float, float]]) -> None:
    """Same clockwise cycle, started at the corner nearest the origin (DIOR-R left-top)."""
    start = min(range(4), key=lambda k: corners[k][0] + corners[k][1])
    expected = corners[start:] + corners[:start]
    assert np.abs(np.asarray(written) - np.asarray(expected)).max() <= ROUND_TOL


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def split_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def assert_jpeg(path: Path, sample: GeneratedImage) -> None:
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (sample.width, sample.height)


# --- DIOR / DIOR-R ---------------------------------------------------------------------------------

def dior_stem(sample: GeneratedImage) -> str:
    return f"{sample.index + 1:05d}"


def test_dior_layout(dior: Generated):
    root, report, samples = dior
    expected = {"ImageSets/Main/train.txt", "ImageSets/Main/val.txt", "ImageSets/Main/test.txt"}
    for s in samples:
        folder = "JPEGImages-test" if s.split == "test" else "JPEGImages-trainval"
        expected |= {f"{folder}/{dior_stem(s)}.jpg", f"{HBB_DIR}/{dior_stem(s)}.xml", f"{OBB_DIR}/{dior_stem(s)}.xml"}
        assert_jpeg(root / folder / f"{dior_stem(s)}.jpg", s)
    assert files_under(root) == expected
    for split in ("train", "val", "test"):
        assert split_lines(root / "ImageSets/Main" / f"{split}.txt") == [dior_stem(s) for s in samples
                                                                          if s.split == split] != []
    assert report.images == len(samples)
    assert report.annotations == sum(len(s.scene.objects) for s in samples)


def test_dior_boxes_equal_scene_objects(dior: Generated):
    root, _, samples = dior
    for s in samples:
        hbb_doc, obb_doc = parse(root / HBB_DIR / f"{dior_stem(s)}.xml"), parse(root / OBB_DIR / f"{dior_stem(s)}.xml")
        assert hbb_doc.findtext("filename") == obb_doc.findtext("filename") == f"{dior_stem(s)}.jpg"
        assert len(objects(hbb_doc)) == len(objects(obb_doc)) == len(s.scene.objects)
        for i, (h, o) in enumerate(zip(objects(hbb_doc), objects(obb_doc), strict=True)):
            kind = s.scene.objects[i].kind
            assert name_of(h) == name_of(o) == DIOR_OBJECTS[kind]
            assert o.findtext("type") == "robndbox"
            assert np.abs(np.asarray(bndbox(h)) - clipped_hbb(s.scene, i)).max() <= ROUND_TOL
            assert_corners_match(robndbox(o), s.scene.objects[i].corners)
            assert_encloses_painted(hbb_polygon(bndbox(h)), s.scene, i)
            assert_encloses_painted(Polygon(robndbox(o)), s.scene, i)


def test_dior_counts_per_class(dior: Generated):
    root, _, samples = dior
    written = Counter(name_of(o) for s in samples for o in objects(parse(root / HBB_DIR / f"{dior_stem(s)}.xml")))
    assert written == Counter(DIOR_OBJECTS[o.kind] for s in samples for o in s.scene.objects)


def test_dior_quirks(dior: Generated):
    root, _, samples = dior
    texts = [el.text for s in samples for el in parse(root / OBB_DIR / f"{dior_stem(s)}.xml").iter("x_left_top")]
    assert any(t.isdigit() for t in texts)
    assert any(t.endswith(".0") for t in texts)
    assert any(t != t.strip() for t in texts)
    assert any("e+" in t for t in texts)
    hbb_docs = [parse(root / HBB_DIR / f"{dior_stem(s)}.xml") for s in samples]
    assert sum(doc.find("size") is None for doc in hbb_docs) >= 1
    decoys = [doc for doc in hbb_docs if doc.find("owner/name") is not None]
    assert decoys
    for doc in decoys:
        assert len(list(doc.iter("name"))) == len(objects(doc)) + 1
        assert {name_of(o) for o in objects(doc)} <= set(DIOR_OBJECTS.values())


# --- MAR20 -----------------------------------------------------------------------------------------

def zero_area(box: list[float]) -> bool:
    return box[2] <= box[0] or box[3] <= box[1]


def test_mar20_layout(mar20: Generated):
    root, report, samples = mar20
    expected = {"ImageSets/Main/train.txt", "ImageSets/Main/test.txt"}
    for s in samples:
        stem = str(s.index + 1)
        expected |= {f"JPEGImages/{stem}.jpg", f"{HBB_DIR}/{stem}.xml", f"{OBB_DIR}/{stem}.xml"}
        assert_jpeg(root / "JPEGImages" / f"{stem}.jpg", s)
    assert files_under(root) == expected
    for split in ("train", "test"):
        assert split_lines(root / "ImageSets/Main" / f"{split}.txt") == [str(s.index + 1) for s in samples
                                                                          if s.split == split] != []
    assert report.annotations == sum(s.scene.count("plane") for s in samples)


def test_mar20_boxes_are_the_planes_plus_zero_area_extras(mar20: Generated):
    root, _, samples = mar20
    extras = 0
    for s in samples:
        stem = str(s.index + 1)
        planes = [i for i, o in enumerate(s.scene.objects) if o.kind == "plane"]
        hbb_objs = objects(parse(root / HBB_DIR / f"{stem}.xml"))
        obb_objs = objects(parse(root / OBB_DIR / f"{stem}.xml"))
        assert len(hbb_objs) == len(obb_objs) >= len(planes)
        for i, h, o in zip(planes, hbb_objs, obb_objs, strict=False):
            assert name_of(h) == name_of(o) == s.scene.objects[i].subtype
            assert np.abs(np.asarray(bndbox(h)) - clipped_hbb(s.scene, i)).max() <= ROUND_TOL
            assert_corners_match(robndbox(o), s.scene.objects[i].corners)
            assert_encloses_painted(Polygon(robndbox(o)), s.scene, i)
        for h, o in zip(hbb_objs[len(planes):], obb_objs[len(planes):], strict=True):
            assert zero_area(bndbox(h)) and Polygon(robndbox(o)).area == 0
            extras += 1
    assert extras >= 2


def test_mar20_counts_per_type(mar20: Generated):
    root, _, samples = mar20
    written = Counter(name_of(o) for s in samples for o in objects(parse(root / HBB_DIR / f"{s.index + 1}.xml"))
                      if not zero_area(bndbox(o)))
    assert written == Counter(o.subtype for s in samples for o in s.scene.objects if o.kind == "plane")
    assert set(written) <= {"A1", "A2", "A3", "A4", "A5"}


# --- DIOR-RSVG -------------------------------------------------------------------------------------

def rsvg_pairs(root: Path) -> list[tuple[str, ET.Element]]:
    """(stem, object) of every image-text pair: xml files sorted by name, objects in document order."""
    return [(path.stem, obj) for path in sorted((root / "Annotations").glob("*.xml")) for obj in objects(parse(path))]


def rsvg_splits(root: Path) -> dict[int, list[str]]:
    """global index -> the split files listing it, in file order train, val, test."""
    listed: dict[int, list[str]] = {}
    for split in ("train", "val", "test"):
        for line in split_lines(root / f"{split}.txt"):
            listed.setdefault(int(line), []).append(split)
    return listed


def referred_samples(samples: list[GeneratedImage]) -> list[GeneratedImage]:
    return [s for s in samples if referring_expressions(s.scene)]


def test_rsvg_layout(rsvg: Generated):
    root, report, samples = rsvg
    stems = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    assert files_under(root) == ({"train.txt", "val.txt", "test.txt"} | {f"Annotations/{t}.xml" for t in stems}
                                 | {f"JPEGImages/{t}.jpg" for t in stems})
    assert all(len(t) == 5 and t.isdigit() for t in stems)
    numbers = [int(t) for t in stems]
    assert numbers != list(range(numbers[0], numbers[0] + len(numbers)))  # gaps, as in the release
    shown = referred_samples(samples)
    assert len(stems) == report.images == len(shown)
    assert report.annotations == sum(len(referring_expressions(s.scene)) for s in shown)
    for stem, s in zip(stems, shown, strict=True):
        with Image.open(root / "JPEGImages" / f"{stem}.jpg") as image:
            assert image.format == "JPEG" and image.size == (s.width, s.height)
            assert np.abs(np.asarray(image, np.float32) - s.pixels()).mean() < 4.0  # the right picture


def test_rsvg_objects_are_referring_expressions(rsvg: Generated):
    root, _, samples = rsvg
    stems = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    for stem, s in zip(stems, referred_samples(samples), strict=True):
        doc = parse(root / "Annotations" / f"{stem}.xml")
        assert doc.findtext("filename") == f"{stem}.jpg"
        referrals = referring_expressions(s.scene)
        described = [o for o in objects(doc) if o.findtext("description")]
        assert [o.findtext("description") for o in described] == [r.text for r in referrals]
        for obj, r in zip(described, referrals, strict=True):
            assert [child.tag for child in obj] == ["name", "pose", "bndbox", "description"]
            assert all(float(v).is_integer() for v in bndbox(obj))
            assert resolve(s.scene, r.kind, r.colour, r.superlative) == [r.index]
            assert name_of(obj) == DIOR_OBJECTS[s.scene.objects[r.index].kind]
            assert np.abs(np.asarray(bndbox(obj)) - clipped_hbb(s.scene, r.index)).max() <= ROUND_TOL
            assert_encloses_painted(hbb_polygon(bndbox(obj)), s.scene, r.index)


def test_rsvg_split_indices_resolve_to_their_pairs(rsvg: Generated):
    root, _, samples = rsvg
    pairs, listed = rsvg_pairs(root), rsvg_splits(root)
    assert sorted(listed) == list(range(len(pairs)))  # every pair listed, nothing beyond
    shown = referred_samples(samples)
    by_stem = dict(zip(sorted({stem for stem, _ in pairs}), shown, strict=True))
    texts = {s.index: {r.text: r for r in referring_expressions(s.scene)} for s in shown}
    for k, (stem, obj) in enumerate(pairs):
        sample, text = by_stem[stem], obj.findtext("description")
        assert listed[k][0] == sample.split  # de-overlapped in the order train > val > test
        if text:
            referral = texts[sample.index][text]
            assert np.abs(np.asarray(bndbox(obj)) - clipped_hbb(sample.scene, referral.index)).max() <= ROUND_TOL


def test_rsvg_quirks(rsvg: Generated):
    root, _, _ = rsvg
    pairs, listed = rsvg_pairs(root), rsvg_splits(root)
    assert any(len(splits) == 2 for splits in listed.values())
    empty = [k for k, (_, obj) in enumerate(pairs) if not obj.findtext("description")]
    assert empty and all(k in listed for k in empty)


def test_rsvg_is_deterministic_and_stems_stay_five_digits(rsvg: Generated, tmp_path: Path):
    root, _, _ = rsvg
    again = generate_dataset("dior_rsvg", tmp_path, seed=0, scale=1)
    assert files_under(again.root) == files_under(root)
    for name in files_under(root):
        assert (again.root / name).read_bytes() == (root / name).read_bytes()
    assert [rsvg_stem(i) for i in (0, 6, 7)] == ["00001", "00007", "00009"]
    with pytest.raises(ValueError):
        rsvg_stem(90_000)
