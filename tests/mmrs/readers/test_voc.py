"""Generic VOC-xml reader against datasets.md 1.2, D2, D5, D6, D9, E2, F1-F7, section H and the sample corpus."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrs.geometry import clip_hbb, rotated_rect_corners
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.common import hash_split
from mmrs.readers.voc import SOURCES, voc_samples
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, DIOR_OBJECTS, generate_dataset
from mmrs.synthetic.samples import GeneratedImage, iter_samples
from mmrs.synthetic.writers import infrared

SPECS = {spec.name: spec for spec in SOURCES}
HBB_DIR, OBB_DIR = "Annotations/Horizontal Bounding Boxes", "Annotations/Oriented Bounding Boxes"
HIT_UAV_CLASSES = ("Person", "Car", "Bicycle", "OtherVehicle", "DontCare")
ROUND_TOL = 0.5 + 1e-6


# --- fixture writing ---------------------------------------------------------------------------------

def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def write_image(path: Path, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 90).save(path)


def doc(*objects: str, filename: str = "x.jpg", size: tuple[Any, Any] | None = (800, 800), head: str = "",
        root: str = "<annotation>") -> str:
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    return f"{root}<folder>VOC</folder><filename>{filename}</filename>{head}{size_xml}" + "".join(objects) \
        + "</annotation>\n"


def hbb_obj(name: str, box: Sequence[Any], extra: str = "") -> str:
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    return f"<object><name>{name}</name><pose>Unspecified</pose>{extra}<bndbox>{coords}</bndbox></object>"


def robndbox_obj(name: str, corners: Sequence[Any]) -> str:
    tags = [f"{a}_{c}" for c in ("left_top", "right_top", "right_bottom", "left_bottom") for a in "xy"]
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(tags, corners, strict=True))
    return f"<object><type>robndbox</type><name>{name}</name><robndbox>{coords}</robndbox><angle>0</angle></object>"


def xy4(tag: str, corners: Sequence[Any], before: str = "") -> str:
    tags = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")
    return f"<{tag}>{before}" + "".join(f"<{t}>{v}</{t}>" for t, v in zip(tags, corners, strict=True)) + f"</{tag}>"


def read(name: str, root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(name)
    return list(SPECS[name].reader(SourceRoot(str(root)), SPECS[name], quarantine)), quarantine


def read_generic(root: Path, options: dict[str, Any], modality: str = "infrared") -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine("voc")
    return list(voc_samples(SourceRoot(str(root)), "voc", modality, options, quarantine)), quarantine


def rect(x0: float, y0: float, x1: float, y1: float) -> tuple[float, ...]:
    return (x0, y0, x1, y0, x1, y1, x0, y1)


# --- DIOR / DIOR-R (D2): the joined HBB + OBB layout ------------------------------------------------

@pytest.fixture
def dior_root(tmp_path: Path) -> Path:
    main = tmp_path / "ImageSets" / "Main"
    write(main / "train.txt", "00001\r\n00002\n\n")
    write(main / "val.txt", "00003\n00003\n")
    write(main / "test.txt", "00004\n00005\n00009\n")
    for stem in ("00001", "00002", "00003"):
        write_image(tmp_path / "JPEGImages-trainval" / f"{stem}.jpg")
    write_image(tmp_path / "JPEGImages-test" / "00004.jpg")
    hbb, obb = tmp_path / HBB_DIR, tmp_path / OBB_DIR
    owner = "<owner><flickrid>NULL</flickrid><name>snail_crowling</name></owner>"
    write(hbb / "00001.xml", doc(hbb_obj("Expressway-Service-area", (133, 237, 684, 672)),
                                 hbb_obj("expressway-toll-station", (" 10.0 ", "1.2e+02", "30", "140.5")),
                                 hbb_obj("golffield", (50, 60, 50, 90)), filename="00001.jpg", head=owner))
    write(obb / "00001.xml", doc(robndbox_obj("Expressway-Service-area", rect(133, 237, 684, 672)),
                                 robndbox_obj("Expressway-toll-station", rect(10, 120, 30, 140.5)),
                                 robndbox_obj("golffield", rect(50, 60, 50, 90)), filename="00001.jpg"))
    write(hbb / "00002.xml", doc(hbb_obj("windmill", (1, 2, 3, 4)), hbb_obj("helicopter", (1, 2, 3, 4)), size=None))
    write(obb / "00002.xml", doc(robndbox_obj("windmill", rect(1, 2, 3, 4)),
                                 robndbox_obj("helicopter", rect(1, 2, 3, 4)), size=(640, 480)))
    write(hbb / "00003.xml", doc(hbb_obj("ship", (100, 100, 120, 140)), hbb_obj("vehicle", (300, 300, 310, 320))))
    write(obb / "00003.xml", doc(robndbox_obj("vehicle", rect(300, 300, 310, 320)),
                                 robndbox_obj("ship", (101, 100, 120, 101, 119, 140, 100, 139)),
                                 robndbox_obj("ship", rect(500, 500, 520, 540))))
    write(hbb / "00004.xml", b"")
    write(hbb / "00005.xml", doc(hbb_obj("dam", (1, 2, 3, 4))))
    write(obb / "00005.xml", doc(robndbox_obj("dam", rect(1, 2, 3, 4))))
    return tmp_path


def test_dior_joins_hbb_and_obb_files_by_stem(dior_root: Path) -> None:
    samples, quarantine = read("dior", dior_root)

    def sample(split: str, key: str, folder: str, objects: list[Box], size: tuple[Any, Any] = (800, 800)) -> RawSample:
        return RawSample("dior", split, key, f"{folder}/{key}.jpg", "optical", *size, objects=objects)

    assert samples == [
        sample("train", "00001", "JPEGImages-trainval", [
            Box("Expressway-Service-area", (133, 237, 684, 672), rect(133, 237, 684, 672)),
            Box("Expressway-toll-station", (10, 120, 30, 140.5), rect(10, 120, 30, 140.5)),
            Box("golffield", (50, 60, 50, 90), rect(50, 60, 50, 90)),  # zero area: conversion drops and counts it
        ]),
        sample("train", "00002", "JPEGImages-trainval", [Box("windmill", (1, 2, 3, 4), rect(1, 2, 3, 4))],
               size=(640, 480)),  # the HBB file has no <size>: the OBB file's
        sample("val", "00003", "JPEGImages-trainval", [  # classes out of order: paired by class and IoU
            Box("ship", (100, 100, 120, 140), (101, 100, 120, 101, 119, 140, 100, 139)),
            Box("vehicle", (300, 300, 310, 320), rect(300, 300, 310, 320)),
            Box("ship", None, rect(500, 500, 520, 540)),
        ]),
        sample("test", "00004", "JPEGImages-test", [], size=(None, None)),  # empty file, no OBB file
    ]
    assert quarantine.summary() == {
        "skipped": {"annotation missing": 1, "image missing": 1, "unknown class": 2},
        "fixed": {"duplicate id in split file": 1, "hbb or obb file missing": 1, "hbb/obb object unpaired": 1},
    }


def _remove(target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()


@pytest.mark.parametrize(("missing", "absent"), [
    ("ImageSets/Main/val.txt", {"val": "ImageSets/Main/val.txt"}),
    (OBB_DIR, {}),  # plain DIOR (no DIOR-R): the HBB files alone
    (HBB_DIR, {}),  # a DIOR-R-only copy: the OBB files alone
    ("JPEGImages-test", {"test": "JPEGImages-test"}),
])
def test_dior_partial_copies_convert_what_is_there(dior_root: Path, missing: str, absent: dict[str, str]) -> None:
    """A copy without a split file, an image folder or one of the two annotation folders converts what is
    there and names what is absent; a copy with nothing usable is an error naming the missing folders."""
    _remove(dior_root / missing)
    samples, quarantine = read("dior", dior_root)
    assert samples and not {s.split for s in samples} & set(absent)
    assert {split: next(iter(absent.values())) in what for split, what in quarantine.absent.items()} == \
        dict.fromkeys(absent, True)
    for folder in (HBB_DIR, OBB_DIR):
        if (dior_root / folder).exists():
            _remove(dior_root / folder)
    with pytest.raises(MissingFileError, match="Bounding Boxes"):
        read("dior", dior_root)


# --- HRRSD (D5): owner decoy, 'T junction', wrong size, number styles ---------------------------------

def test_hrrsd_reads_object_names_only_and_keeps_t_junction(tmp_path: Path) -> None:
    opt = tmp_path / "OPT2017"
    head = ("<source><database>The OPTIMAL_Z Database</database></source>"
            "<owner><flickrid>NULL</flickrid><name>snail_crowling</name></owner>")
    write(opt / "Annotations" / "00001.xml", doc(
        hbb_obj("T junction", (1, 2, 30, 40), "<truncated>0</truncated><difficult>1</difficult>"),
        hbb_obj("t junction", (5, 6, 7, 8)), hbb_obj("storage tank", (" 9 ", "1.0e+01", "11.0", "12")),
        head=head, size=(1000, 600)))
    write(opt / "Annotations" / "00002.xml", doc(hbb_obj("parking lot", (1, 1, 2, 2)), head=head, size=(0, 0)))
    write(opt / "Annotations" / "00003.xml", doc(hbb_obj("crossroad", (1, 1, 2, 2)), head=head))
    for stem in ("00001", "00002", "00003"):
        write_image(opt / "JPEGImages" / f"{stem}.jpg")
    write(opt / "ImageSets/Main/train.txt", "00001\n")
    write(opt / "ImageSets/Main/val.txt", "00002\n")
    write(opt / "ImageSets/Main/test.txt", "")
    write(opt / "ImageSets/Main/trainval.txt", "00001\n00002\n00003\n")  # not an official split of the reader
    write(opt / "ImageSets/Main/airplane_train.txt", "00001 -1\n")
    expected = [
        RawSample("hrrsd", "train", "00001", "OPT2017/JPEGImages/00001.jpg", "optical", 1000, 600, objects=[
            Box("T junction", (1, 2, 30, 40), difficult=True), Box("T junction", (5, 6, 7, 8)),
            Box("storage tank", (9, 10, 11, 12)),
        ]),
        RawSample("hrrsd", "val", "00002", "OPT2017/JPEGImages/00002.jpg", "optical", None, None,
                  objects=[Box("parking lot", (1, 1, 2, 2))]),  # <size> 0 x 0: the converter reads the header
    ]
    samples, quarantine = read("hrrsd", tmp_path)
    assert samples == expected
    assert quarantine.total_skipped == 0
    inside, _ = read("hrrsd", opt)  # a root pointing at OPT2017 itself
    assert [s.image for s in inside] == ["JPEGImages/00001.jpg", "JPEGImages/00002.jpg"]


# --- RSOD (D6): class folders, uncertain sub-folder names, hash split ------------------------------

def test_rsod_reads_each_class_folder_with_a_hash_split(tmp_path: Path) -> None:
    layouts = {"aircraft": "Annotation/xml", "oiltank": "Annotations", "overpass": "Annotation",
               "playground": "Annotation/xml"}
    for i, (part, folder) in enumerate(layouts.items()):
        name = "Playground" if part == "playground" else part  # class-name case is UNCERTAIN
        write(tmp_path / part / folder / f"{part}_1.xml", doc(hbb_obj(name, (i, i, 10 + i, 20 + i))))
        write_image(tmp_path / part / "JPEGImages" / f"{part}_1.jpg")
    write(tmp_path / "aircraft/Annotation/labels/aircraft_1.txt", "aircraft 1 1 2 2\n")  # ignored
    samples, quarantine = read("rsod", tmp_path)
    fractions = SPECS["rsod"].options["split_fractions"]
    assert samples == [
        RawSample("rsod", hash_split(f"{part}/{part}_1", fractions), f"{part}/{part}_1",
                  f"{part}/JPEGImages/{part}_1.jpg", "optical", 800, 800,
                  objects=[Box(part, (i, i, 10 + i, 20 + i))])
        for i, part in enumerate(layouts)
    ]
    assert quarantine.total_skipped == 0
    assert set(fractions) == {"train", "test"} and SPECS["rsod"].train_splits == ("train",)


# --- SSDD (E2): split folders, inshore/offshore copies, rotated_bndbox and segm ----------------------

def ssdd_ship(box: Sequence[float], corners: Sequence[float] | None, segm: str = "") -> str:
    rotated = xy4("rotated_bndbox", corners, "<rotated_bbox_cx>1.5</rotated_bbox_cx><rotated_bbox_theta>12.3"
                  "</rotated_bbox_theta>") if corners else ""
    x0, y0, x1, y1 = box
    extra = f"<bbox_w>{x1 - x0}</bbox_w><bbox_h>{y1 - y0}</bbox_h>"
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    return (f"<object><name>ship</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
            f"<bndbox>{coords}{extra}</bndbox>{rotated}{segm}</object>")


def test_ssdd_splits_by_folder_and_tags_the_test_copies(tmp_path: Path) -> None:
    voc = tmp_path / "RBox_SSDD" / "voc_style"  # a copy without the combined folder
    segm = "<segm><point-1>12,20</point-1><point-2>30,22</point-2><point-3>18,35</point-3></segm>"
    only_segm = f"<object><name>Ship</name>{segm}</object>"
    cx_form = ("<object><name>ship</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox>"
               "<rotated_bndbox><rotated_bbox_cx>6</rotated_bbox_cx><rotated_bbox_cy>7</rotated_bbox_cy>"
               "<rotated_bbox_w>2</rotated_bbox_w><rotated_bbox_h>1</rotated_bbox_h>"
               "<rotated_bbox_theta>30</rotated_bbox_theta></rotated_bndbox></object>")
    files = {
        ("train", "000002"): doc(ssdd_ship((120, 88, 163, 101), (121, 88, 163, 95, 162, 101, 120, 94), segm),
                                 size=(500, 350)),
        ("train", "000003"): doc(only_segm, cx_form, size=(400, 300)),
        ("test", "000001"): doc(ssdd_ship((1, 2, 3, 4), (1, 2, 3, 2, 3, 4, 1, 4)), size=(500, 350)),
        ("test", "000009"): doc(size=(500, 350)),
        ("test_inshore", "000001"): doc(ssdd_ship((1, 2, 3, 4), (1, 2, 3, 2, 3, 4, 1, 4)), size=(500, 350)),
        ("test_offshore", "000009"): doc(size=(500, 350)),
    }
    for (folder, stem), text in files.items():
        write(voc / f"Annotations_{folder}" / f"{stem}.xml", text)
        write_image(voc / f"JPEGImages_{folder}" / f"{stem}.jpg", (16, 12), "L")
    samples, quarantine = read("ssdd", tmp_path)

    def sample(split: str, key: str, size: tuple[int, int], objects: list[Box], meta: dict[str, str]) -> RawSample:
        return RawSample("ssdd", split, key, f"RBox_SSDD/voc_style/JPEGImages_{split}/{key}.jpg", "sar", *size,
                         objects=objects, meta=meta)

    assert samples == [
        sample("train", "000002", (500, 350), [Box("ship", (120, 88, 163, 101), (121, 88, 163, 95, 162, 101, 120, 94))],
               {}),
        sample("train", "000003", (400, 300), [Box("ship", (12, 20, 30, 35)), Box("ship", (5, 6, 7, 8))], {}),
        sample("test", "000001", (500, 350), [Box("ship", (1, 2, 3, 4), rect(1, 2, 3, 4))], {"scene": "inshore"}),
        sample("test", "000009", (500, 350), [], {"scene": "offshore"}),
    ]
    assert quarantine.total_skipped == 0


def test_ssdd_without_a_release_folder_names_the_candidates(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="BBox_RBox_PSeg_SSDD/voc_style"):
        read("ssdd", tmp_path)


# --- MAR20 (D9): DIOR-style, case-insensitive A1..A20, zero-area records -----------------------------

def test_mar20_classes_are_case_insensitive_and_zero_area_boxes_stay(tmp_path: Path) -> None:
    write(tmp_path / HBB_DIR / "7.xml", doc(hbb_obj("a3", (10, 10, 50, 40)), hbb_obj("A20", (60, 60, 60, 90))))
    write(tmp_path / OBB_DIR / "7.xml", doc(robndbox_obj("A3", rect(10, 10, 50, 40)),
                                            robndbox_obj("a20", (60, 60, 60, 60, 60, 90, 60, 90))))
    write_image(tmp_path / "JPEGImages" / "7.jpg")
    write(tmp_path / "ImageSets/Main/train.txt", "")
    write(tmp_path / "ImageSets/Main/test.txt", "7\n")
    samples, quarantine = read("mar20", tmp_path)
    assert samples == [RawSample("mar20", "test", "7", "JPEGImages/7.jpg", "optical", 800, 800, objects=[
        Box("A3", (10, 10, 50, 40), rect(10, 10, 50, 40)),
        Box("A20", (60, 60, 60, 90), (60, 60, 60, 60, 60, 90, 60, 90)),
    ])]
    assert quarantine.total_skipped == 0
    assert SPECS["mar20"].evaluation_only and SPECS["mar20"].paper_samples is None and SPECS["mar20"].train_splits == ()


# --- roLabelImg (F1 rotate_xml) and DroneVehicle polygons (F2) through the generic function -------------

def test_rolabelimg_robndbox_is_centre_size_and_radians(tmp_path: Path) -> None:
    robndbox = ("<object><type>robndbox</type><name>Car</name><pose>Unspecified</pose><truncated>0</truncated>"
                "<difficult>1</difficult><robndbox><cx>50</cx><cy>50</cy><w>10</w><h>4</h><angle>{}</angle>"
                "</robndbox></object>")
    write(tmp_path / "rotate_xml/Annotations/1_130_90_0_04077.xml",
          doc(robndbox.format(math.pi / 2), robndbox.format(0.0), filename="1_130_90_0_04077",
              root='<annotation verified="no">', head="<path>C:\\Users\\a\\1_130_90_0_04077.jpg</path>",
              size=(640, 512)))
    write_image(tmp_path / "rotate_xml/JPEGImages/1_130_90_0_04077.jpg", (640, 512), "L")
    write(tmp_path / "rotate_xml/ImageSets/Main/train.txt", "1_130_90_0_04077\n")
    write(tmp_path / "rotate_xml/ImageSets/Main/val.txt", "")
    write(tmp_path / "rotate_xml/ImageSets/Main/test.txt", "")
    samples, _ = read_generic(tmp_path, {"base": "rotate_xml", "classes": HIT_UAV_CLASSES})
    (sample,) = samples
    assert (sample.split, sample.key, sample.image) == ("train", "1_130_90_0_04077",
                                                          "rotate_xml/JPEGImages/1_130_90_0_04077.jpg")
    upright, flat = sample.objects
    # w = 10 along the heading (clockwise on screen from +x), h = 4 across it; corners front-left first
    assert upright.obb == pytest.approx((52, 55, 48, 55, 48, 45, 52, 45))
    assert flat.obb == pytest.approx((55, 48, 55, 52, 45, 52, 45, 48))
    assert (upright.label, upright.hbb, upright.difficult) == ("Car", None, True)


def test_dronevehicle_polygon_objects_and_typos(tmp_path: Path) -> None:
    objects = [
        f"<object><name>car</name>{xy4('polygon', (10, 10, 30, 12, 29, 20, 9, 18))}</object>",
        hbb_obj("truvk", (1, 2, 3, 4)),
        f"<object><name>feright car</name>{xy4('polygon', (1, 1, 5, 1, 5, 3, 1, 3))}</object>",
        f"<object><name>*</name>{xy4('polygon', (1, 1, 5, 1, 5, 3, 1, 3))}</object>",
    ]
    write(tmp_path / "train/trainlabelr/00001.xml", doc(*objects, size=(840, 712)))
    write_image(tmp_path / "train/trainimgr/00001.jpg")
    options = {"annotations": "{split}/{split}labelr", "images": "{split}/{split}imgr", "split_files": None,
               "splits": ("train",), "classes": ("car", "truck", "bus", "van", "freight car"),
               "aliases": {"truvk": "truck", "feright car": "freight car", "feright_car": "freight car"}}
    samples, quarantine = read_generic(tmp_path, options)
    assert samples == [RawSample("voc", "train", "00001", "train/trainimgr/00001.jpg", "infrared", 840, 712, objects=[
        Box("car", None, (10, 10, 30, 12, 29, 20, 9, 18)), Box("truck", (1, 2, 3, 4)),
        Box("freight car", None, rect(1, 1, 5, 3)),
    ])]
    assert quarantine.summary()["skipped"] == {"unknown class": 1}


# --- the obscure infrared sets (F3-F7): no class list, optional split files, encodings, bad records ---

def test_generic_voc_folder_without_split_files_or_class_list(tmp_path: Path) -> None:
    ann = tmp_path / "Annotations"
    gbk_declared = '<?xml version="1.0" encoding="gbk"?>' + doc(hbb_obj("船只", (1, 2, 3, 4)), filename="a.png")
    write(ann / "a.xml", gbk_declared.encode("gbk"))
    write(ann / "b.xml", doc(hbb_obj("行人", (1, 2, 3, 4), "<difficult>1</difficult>"), filename="b").encode("gbk"))
    write(ann / "c.xml", b"\xef\xbb\xbf" + doc(
        hbb_obj("person", ("1", "2", "3x", "4")), "<object><pose>x</pose><bndbox/></object>",
        "<object><name>car</name><pose>Unspecified</pose></object>", hbb_obj(" car ", (5, 6, 7, 8)),
        filename="c.bmp", size=None).encode())
    write(ann / "d.xml", "<annotation><object><name>car</name></annotation>")
    write(ann / "e.xml", '<!DOCTYPE a [<!ENTITY x "y">]><annotation>&x;</annotation>')
    write(ann / "f.xml", doc(filename="frame_f"))  # the image is named by <filename>, without extension
    write(ann / ".hidden.xml", "junk")
    for name in ("a.png", "b.jpg", "c.bmp", "d.jpg", "e.jpg", "frame_f.tif"):
        write_image(tmp_path / "JPEGImages" / name)
    fractions = {"train": 0.5, "test": 0.5}
    samples, quarantine = read_generic(tmp_path, {"split_fractions": fractions})
    assert samples == [
        RawSample("voc", hash_split("a", fractions), "a", "JPEGImages/a.png", "infrared", 800, 800,
                  objects=[Box("船只", (1, 2, 3, 4))]),
        RawSample("voc", hash_split("b", fractions), "b", "JPEGImages/b.jpg", "infrared", 800, 800,
                  objects=[Box("行人", (1, 2, 3, 4), difficult=True)]),
        RawSample("voc", hash_split("c", fractions), "c", "JPEGImages/c.bmp", "infrared",
                  objects=[Box("car", (5, 6, 7, 8))]),
        RawSample("voc", hash_split("f", fractions), "f", "JPEGImages/frame_f.tif", "infrared", 800, 800),
    ]
    assert quarantine.summary()["skipped"] == {"bad number": 1, "malformed xml": 2, "missing class": 1,
                                               "no geometry": 1}


def test_generic_voc_needs_a_split_rule(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    with pytest.raises(ValueError, match="split"):
        read_generic(tmp_path, {"split_files": None})


# --- the sample corpus -------------------------------------------------------------------------------

def same_polygon(actual: Sequence[float] | None, expected: Sequence[tuple[float, float]], tol: float) -> bool:
    """The same four vertices in the same cyclic order, starting anywhere."""
    points = list(zip(actual[0::2], actual[1::2], strict=True))
    return any(all(abs(a - b) <= tol for p, q in zip(points, expected[k:] + expected[:k], strict=True)
                   for a, b in zip(p, q, strict=True)) for k in range(4))


def close(actual: Sequence[float] | None, expected: Sequence[float], tol: float) -> bool:
    return actual is not None and all(abs(a - b) <= tol for a, b in zip(actual, expected, strict=True))


def corpus(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, list[GeneratedImage]]:
    out = tmp_path_factory.mktemp(name)
    generate_dataset(name, out, seed=0, scale=1)
    return out / DATASETS[name].folder, list(iter_samples(DATASETS[name], 0, 1))


@pytest.fixture(scope="module")
def dior_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[GeneratedImage]]:
    return corpus(tmp_path_factory, "dior")


@pytest.fixture(scope="module")
def mar20_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[GeneratedImage]]:
    return corpus(tmp_path_factory, "mar20")


@pytest.fixture(scope="module")
def ssdd_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[GeneratedImage]]:
    return corpus(tmp_path_factory, "ssdd")


@pytest.fixture(scope="module")
def hit_uav_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[GeneratedImage]]:
    return corpus(tmp_path_factory, "hit_uav")


def by_key(samples: list[RawSample]) -> dict[tuple[str, str], RawSample]:
    keyed = {(s.split, s.key): s for s in samples}
    assert len(keyed) == len(samples)
    return keyed


def assert_detections(sample: GeneratedImage, raw: RawSample, truth: list[tuple[str, Any, Any]]) -> None:
    """truth: (label, clipped hbb, obb corners) per object, in file order."""
    assert [b.label for b in raw.objects] == [label for label, _, _ in truth]
    for box, (_, hbb, corners) in zip(raw.objects, truth, strict=True):
        assert close(box.hbb, hbb, ROUND_TOL), (raw.key, box, hbb)
        assert same_polygon(box.obb, corners, ROUND_TOL), (raw.key, box, corners)
    assert (raw.width, raw.height) == (sample.width, sample.height)


def test_dior_corpus_matches_the_generator(dior_corpus: tuple[Path, list[GeneratedImage]]) -> None:
    root, truth = dior_corpus
    samples, quarantine = read("dior", root)
    keyed = by_key(samples)
    assert len(samples) == len(truth)
    for sample in truth:
        stem = f"{sample.index + 1:05d}"
        raw = keyed[sample.split, stem]
        folder = "JPEGImages-test" if sample.split == "test" else "JPEGImages-trainval"
        assert raw.image == f"{folder}/{stem}.jpg" and raw.modality == "optical"
        scene = sample.scene
        assert_detections(sample, raw, [(DIOR_OBJECTS[o.kind], clip_hbb(o.hbb, scene.width, scene.height), o.corners)
                                        for o in scene.objects if o.kind in DIOR_OBJECTS])
    assert quarantine.summary() == {"skipped": {}, "fixed": {}}


def test_mar20_corpus_matches_the_generator(mar20_corpus: tuple[Path, list[GeneratedImage]]) -> None:
    root, truth = mar20_corpus
    samples, quarantine = read("mar20", root)
    keyed = by_key(samples)
    assert len(samples) == len(truth)
    for sample in truth:
        scene = sample.scene
        planes = [(o.subtype, clip_hbb(o.hbb, scene.width, scene.height), o.corners)
                  for o in scene.objects if o.kind == "plane"]
        if planes and sample.index % 5 == 2:  # the documented zero-area record: kept for conversion to count
            label, (x0, y0, _, y1), _ = planes[0]
            planes.append((label, (x0, y0, x0, y1), [(x0, y0), (x0, y0), (x0, y1), (x0, y1)]))
        raw = keyed[sample.split, str(sample.index + 1)]
        assert raw.image == f"JPEGImages/{sample.index + 1}.jpg"
        assert_detections(sample, raw, planes)
    assert quarantine.total_skipped == 0


def test_ssdd_corpus_matches_the_generator(ssdd_corpus: tuple[Path, list[GeneratedImage]]) -> None:
    root, truth = ssdd_corpus
    samples, quarantine = read("ssdd", root)
    keyed = by_key(samples)
    assert len(samples) == len(truth)  # the inshore/offshore copies add no samples
    scene_of = DATASETS["ssdd"].classes
    for sample in truth:
        stem, scene = f"{sample.index + 1:06d}", sample.scene
        raw = keyed[sample.split, stem]
        assert raw.image == f"BBox_RBox_PSeg_SSDD/voc_style/JPEGImages_{sample.split}/{stem}.jpg"
        assert raw.modality == "sar"
        assert raw.meta == ({"scene": scene_of[sample.scene_class]} if sample.split == "test" else {})
        assert_detections(sample, raw, [("ship", clip_hbb(o.hbb, scene.width, scene.height), o.corners)
                                        for o in scene.objects if o.kind == "ship"])
    assert quarantine.total_skipped == 0


HIT_UAV_JOINED = {
    "annotations": "normal_xml/Annotations", "oriented_annotations": "rotate_xml/Annotations",
    "images": "normal_xml/JPEGImages", "split_files": "normal_xml/ImageSets/Main/{split}.txt",
    "classes": HIT_UAV_CLASSES,
}


@pytest.mark.parametrize("options", [
    {"base": "normal_xml", "classes": HIT_UAV_CLASSES},
    {"base": "rotate_xml", "classes": HIT_UAV_CLASSES},
    HIT_UAV_JOINED,
], ids=["normal_xml", "rotate_xml", "joined"])
def test_hit_uav_xml_corpus_matches_the_generator(hit_uav_corpus: tuple[Path, list[GeneratedImage]],
                                                  options: dict[str, Any]) -> None:
    root, truth = hit_uav_corpus
    samples, quarantine = read_generic(root, options)
    keyed = by_key(samples)
    assert len(samples) == len(truth)
    folder = options.get("base", "normal_xml")
    for sample in truth:
        stem = infrared.frame_of(sample).stem
        raw = keyed[sample.split, stem]
        assert raw.image == f"{folder}/JPEGImages/{stem}.jpg" and raw.modality == "infrared"
        assert (raw.width, raw.height) == (640, 512)
        boxes = infrared.boxes_of(sample)
        assert [(b.label, b.difficult) for b in raw.objects] == [(b.name, b.difficult) for b in boxes]
        for box, written in zip(raw.objects, boxes, strict=True):
            if folder == "normal_xml":
                assert box.hbb == written.hbb
            if options is HIT_UAV_JOINED or folder == "rotate_xml":
                cx, cy, w, h, angle = written.rbox
                assert box.obb == pytest.approx(
                    [c for x, y in rotated_rect_corners(cx, cy, w, h, angle) for c in (x, y)], abs=1e-9)
        scene_objects = [o for o in sample.scene.objects if o.kind in infrared.HIT_UAV_OBJECTS]
        for box, obj in zip(raw.objects, scene_objects, strict=False):  # DontCare regions come last
            if box.obb is not None:
                assert same_polygon(box.obb, obj.corners, 1e-3)
    assert quarantine.summary() == {"skipped": {}, "fixed": {}}


def test_registered_sources() -> None:
    assert {(s.name, s.title, s.paper_samples) for s in SOURCES} == {
        ("dior", "DIOR", 58200), ("hrrsd", "HRRSD", 23044), ("rsod", "RSOD", 747), ("mar20", "MAR20", None),
        ("ssdd", "SSDD", 1856),
    }


def test_dior_and_rsod_classes_are_worded_with_spaces_in_instructions():
    from mmrs.convert import _noun
    from mmrs.registry import SOURCES

    dior, rsod = SOURCES["dior"], SOURCES["rsod"]
    nouns = {_noun(dior, label) for label in dior.options["classes"]} | {_noun(rsod, "oiltank")}
    assert {"tennis court", "ground track field", "storage tank", "train station", "expressway toll station",
            "oil tank"} <= nouns
    assert all(" " in noun for noun in nouns if len(noun) > 9)  # no run-together words left ('windmill' is one)
