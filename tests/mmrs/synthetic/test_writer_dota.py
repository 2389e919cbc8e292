"""DOTA writer (datasets.md D1): layout, devkit-parsable labels equal to the scenes, quirks of section H."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import Polygon, box

from mmrs.synthetic.corpus import DATASETS, DOTA_OBJECTS, generate_dataset
from mmrs.synthetic.render import object_mask
from mmrs.synthetic.samples import GeneratedImage, WriteReport, iter_samples
from mmrs.synthetic.writers.dota import write_dota

TASK1 = "labelTxt-v1.0/labelTxt"
TASK2 = {"train": "labelTxt-v1.0/Train_Task2_gt/trainset_reclabelTxt",
         "val": "labelTxt-v1.0/Val_Task2_gt/valset_reclabelTxt"}
INT_TOL, FLOAT_TOL = 0.5 + 1e-6, 0.05 + 1e-6
PAINT_TOL = 1.0  # px between a painted pixel (its unit square) and the written polygon


@dataclass
class Line:
    points: list[tuple[float, float]]
    category: str
    difficult: int
    tokens: list[str]


@dataclass
class LabelFile:
    raw: bytes
    headers: dict[str, str]
    lines: list[Line]


def parse_label_file(path: Path) -> LabelFile:
    """The devkit's rules: headers by prefix, >= 9 tokens per object line, missing difficult = 0."""
    raw = path.read_bytes()
    headers: dict[str, str] = {}
    lines: list[Line] = []
    for text in raw.decode("utf-8-sig").split("\n"):
        text = text.rstrip("\r").strip()
        if text.startswith(("imagesource", "gsd")):
            key, _, value = text.partition(":")
            headers[key] = value
            continue
        tokens = text.split()
        if len(tokens) < 9:
            continue
        coords = [float(t) for t in tokens[:8]]
        difficult = int(tokens[9]) if len(tokens) >= 10 else 0
        lines.append(Line(list(zip(coords[0::2], coords[1::2], strict=True)), tokens[8], difficult, tokens))
    return LabelFile(raw, headers, lines)


def expected_difficult(corners: list[tuple[float, float]], width: int, height: int) -> int:
    footprint = Polygon(corners)
    visible = footprint.intersection(box(0, 0, width, height)).area / footprint.area
    return 0 if visible > 1 - 1e-6 else 1 if visible < 0.5 else 2


def tolerance(line: Line) -> float:
    return FLOAT_TOL if any("." in t for t in line.tokens[:8]) else INT_TOL


def assert_points_close(written: list[tuple[float, float]], expected: list[tuple[float, float]], tol: float):
    assert np.abs(np.asarray(written) - np.asarray(expected)).max() <= tol


@pytest.fixture(scope="module")
def dota(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WriteReport]:
    out = tmp_path_factory.mktemp("corpus")
    return out / "DOTA", generate_dataset("dota", out, seed=0, scale=1)


@pytest.fixture(scope="module")
def samples() -> list[GeneratedImage]:
    return list(iter_samples(DATASETS["dota"], 0, 1))


@pytest.fixture(scope="module")
def labels(dota: tuple[Path, WriteReport], samples: list[GeneratedImage]) -> dict[int, tuple[LabelFile, LabelFile]]:
    """sample index -> (Task1 file, Task2 file) of every labelled sample."""
    root, _ = dota
    out = {}
    for s in samples:
        if s.split in TASK2:
            stem = f"P{s.index:04d}.txt"
            out[s.index] = (parse_label_file(root / s.split / TASK1 / stem),
                            parse_label_file(root / s.split / TASK2[s.split] / stem))
    return out


def expected_files(samples: list[GeneratedImage]) -> set[str]:
    files = set()
    for s in samples:
        stem = f"P{s.index:04d}"
        files.add(f"{s.split}/images/{stem}.png")
        if s.split in TASK2:
            files |= {f"{s.split}/{TASK1}/{stem}.txt", f"{s.split}/{TASK2[s.split]}/{stem}.txt"}
    return files


def test_layout_is_exactly_the_release(dota, samples):
    root, report = dota
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == expected_files(samples)
    for s in samples:
        with Image.open(root / s.split / "images" / f"P{s.index:04d}.png") as image:
            assert image.format == "PNG" and image.mode == "RGB"
            assert image.size == (s.width, s.height)
    assert report.images == len(samples)
    assert report.splits == dict(Counter(s.split for s in samples))


def test_task1_lines_are_the_scene_footprints(labels, samples, dota):
    _, report = dota
    total = 0
    for s in samples:
        if s.index not in labels:
            continue
        task1, _ = labels[s.index]
        scene = s.scene
        assert task1.headers["imagesource"] == "GoogleEarth"
        assert task1.headers["gsd"] == "null" or float(task1.headers["gsd"]) == pytest.approx(scene.gsd, abs=1e-9)
        assert len(task1.lines) == len(scene.objects)
        for line, obj in zip(task1.lines, scene.objects, strict=True):
            assert line.category == DOTA_OBJECTS[obj.kind]
            assert_points_close(line.points, obj.corners, tolerance(line))
            assert line.difficult == expected_difficult(obj.corners, scene.width, scene.height)
        total += len(task1.lines)
    assert report.annotations == total


def test_task2_lines_are_the_clipped_boxes(labels, samples):
    for s in samples:
        if s.index not in labels:
            continue
        task1, task2 = labels[s.index]
        assert task2.headers == task1.headers
        assert len(task2.lines) == len(s.scene.objects)
        for line, obj, obb_line in zip(task2.lines, s.scene.objects, task1.lines, strict=True):
            x0, y0, x1, y1 = (min(max(v, 0.0), lim) for v, lim in
                              zip(obj.hbb, (s.width, s.height, s.width, s.height), strict=True))
            assert_points_close(line.points, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], tolerance(line))
            assert (line.category, line.difficult) == (obb_line.category, obb_line.difficult)


def test_boxes_enclose_the_painted_pixels(labels, samples):
    for s in samples:
        if s.index not in labels:
            continue
        for i, (obb, hbb) in enumerate(zip(*(f.lines for f in labels[s.index]), strict=True)):
            ys, xs = np.nonzero(object_mask(s.scene, i))
            pixels = shapely.box(xs, ys, xs + 1, ys + 1)
            for line in (obb, hbb):
                assert shapely.distance(Polygon(line.points), pixels).max() <= PAINT_TOL


def test_counts_per_class_equal_objects_drawn(labels, samples):
    for s in samples:
        if s.index not in labels:
            continue
        drawn = Counter(DOTA_OBJECTS[o.kind] for o in s.scene.objects)
        for label_file in labels[s.index]:
            assert Counter(line.category for line in label_file.lines) == drawn


def test_quirks_of_section_h_are_present(labels, samples):
    files = [f for pair in labels.values() for f in pair]
    lines = [line for f in files for line in f.lines]
    assert any(f.headers.get("gsd") == "null" for f in files)
    assert any(f.headers.get("gsd", "null") != "null" for f in files)
    assert any(tolerance(line) == INT_TOL for line in lines)
    assert any(tolerance(line) == FLOAT_TOL for line in lines)
    assert any(len(line.tokens) == 9 for line in lines)
    assert any(line.tokens[-1] == "2" for line in lines)
    assert any(b"\r\n" in f.raw for f in files)
    headers_only = {i for i, (task1, _) in labels.items() if not task1.lines}
    assert headers_only == {s.index for s in samples if s.index in labels and not s.scene.objects} != set()
    outside = [line for s in samples if s.index in labels for line in labels[s.index][0].lines
               if any(not (0 <= x <= s.width and 0 <= y <= s.height) for x, y in line.points)]
    assert outside


def test_val_and_test_splits_and_determinism(tmp_path):
    """Scale 1 draws train images only, so a 3-image variant covers val (own Task2 folder) and test."""
    splits = ("val", "test", "train")
    spec = dataclasses.replace(DATASETS["dota"], images=3, size=(1100, 1100), split_of=lambda i: splits[i])
    reports = [write_dota(spec, iter_samples(spec, 0, 1), tmp_path / run / "DOTA") for run in ("a", "b")]
    samples = list(iter_samples(spec, 0, 1))
    root = tmp_path / "a" / "DOTA"
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == expected_files(samples)
    assert "val/labelTxt-v1.0/Val_Task2_gt/valset_reclabelTxt/P0000.txt" in written
    assert not any(p.startswith("test/labelTxt") for p in written)
    assert reports[0].splits == {"val": 1, "test": 1, "train": 1}
    assert reports[0].annotations == len(samples[0].scene.objects) + len(samples[2].scene.objects)
    for name in written:
        assert (root / name).read_bytes() == (tmp_path / "b" / "DOTA" / name).read_bytes()
