"""convert_source / build_mmrs_1m with a stub reader: shards, manifests, quarantine, tiles, s3."""

import json
import re
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pytest
from PIL import Image

from mmrs.build import build_mmrs_1m, convert_source, load_manifest
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec, TileSpec
from mmrs.shards import iter_source_records, relative_location, resolve_location
from mmrs.storage import MissingFileError


def _reader(root, spec, quarantine):
    root.require("labels.json", "annotation file")
    labels = json.loads(root.read_text("labels.json"))
    for key, item in sorted(labels.items()):
        if "boxes" not in item:
            quarantine.skip("labels.json", "no boxes", item)
            continue
        yield RawSample(spec.name, item["split"], key, f"images/{key}.png", spec.modality,
                        objects=[Box("ship", hbb=tuple(b)) for b in item["boxes"]])


def _spec(name="toy", tile=None, evaluation_only=False):
    return SourceSpec(name=name, title=name.upper(), tasks=("detection_hbb",), modality="sar", reader=_reader,
                      paper_samples=100, tile=tile, evaluation_only=evaluation_only)


def _dataset(root: Path, size=(300, 200)):
    (root / "images").mkdir(parents=True)
    labels = {"a": {"split": "train", "boxes": [[10, 10, 50, 40]]}, "b": {"split": "test", "boxes": []},
              "c": {"split": "train"}, "d": {"split": "train", "boxes": [[0, 0, 5, 5]]}}
    for key in ("a", "b", "c"):
        Image.fromarray(np.full((size[1], size[0]), 80, np.uint8)).save(root / "images" / f"{key}.png")
    (root / "labels.json").write_text(json.dumps(labels))
    return root


def test_shards_manifest_and_quarantine(tmp_path):
    raw = _dataset(tmp_path / "raw")
    manifest = convert_source(_spec(), str(raw), str(tmp_path / "out"), max_records=1)
    out = tmp_path / "out" / "toy"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "quarantine.jsonl", "test-00000.jsonl",
                                                     "train-00000.jsonl"]
    assert [s["records"] for s in manifest["shards"]] == [1, 1]
    assert manifest["images"] == {"train": 1, "test": 1}
    assert manifest["quarantine"]["skipped"] == {"no boxes": 1, "image missing": 1}
    entries = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert {e["reason"] for e in entries} == {"no boxes", "image missing"}
    assert any("images/d.png" in e["path"] for e in entries)
    records = list(iter_source_records(str(out)))
    assert [r["id"] for r in records] == ["toy/test/b/detection_hbb", "toy/train/a/detection_hbb"]
    again = convert_source(_spec(), str(raw), str(tmp_path / "out2"), max_records=1)
    assert again["content_hash"] == manifest["content_hash"]  # same input, same bytes


def test_missing_required_file_names_it(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(MissingFileError, match="labels.json"):
        convert_source(_spec(), str(tmp_path / "raw"), str(tmp_path / "out"))


def test_tiles_are_written_once(tmp_path):
    raw = _dataset(tmp_path / "raw", size=(1500, 1100))
    spec = _spec(tile=TileSpec(size=1024, overlap=200))
    manifest = convert_source(spec, str(raw), str(tmp_path / "out"))
    tiles = sorted((tmp_path / "out" / "toy" / "tiles").iterdir())
    assert [t.name for t in tiles][:2] == ["a__1__0___0.png", "a__1__0___76.png"]  # the DOTA devkit's ids
    assert len(tiles) == 2 * 4 and manifest["image_root"] == "."  # the source's own folder: "tiles/..."
    stamps = {t.name: t.stat().st_mtime_ns for t in tiles}
    convert_source(spec, str(raw), str(tmp_path / "out"))
    assert {t.name: t.stat().st_mtime_ns for t in tiles} == stamps


def _scenes(root: Path) -> dict[str, np.ndarray]:
    """Scenes of 1100 x 1100 px with random pixels (so tiles differ); s3 is truncated after its header."""
    (root / "images").mkdir(parents=True)
    scenes = {f"s{i}": np.random.default_rng(i).integers(0, 256, (1100, 1100, 3), np.uint8) for i in range(6)}
    for key, pixels in scenes.items():
        Image.fromarray(pixels).save(root / "images" / f"{key}.png", compress_level=0)
    truncated = root / "images" / "s3.png"
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    return scenes


def _scene_reader(root, spec, quarantine):
    for key in ("s0", "s1", "missing", "s2", "s3", "s4", "s5"):  # "missing": no file
        yield RawSample(spec.name, "train", key, f"images/{key}.png", spec.modality,
                        objects=[Box("ship", hbb=(10, 10, 50, 40)),
                                 Box("ship", hbb=(1000, 10, 1100, 30)),  # 24 % in tile x0 = 0, whole in x0 = 76
                                 Box("ship", hbb=(1200, 10, 1250, 40))])  # outside the 1100 px scene


def test_tiled_conversion_is_the_same_on_any_number_of_threads(tmp_path):
    """Tiles are written on threads while the next scenes are cut: the shards, the quarantine (in reading
    order, with what tiling left out) and the tile files do not depend on how many; every tile holds the
    scene's pixels."""
    scenes = _scenes(tmp_path / "raw")
    spec = SourceSpec(name="toy", title="TOY", tasks=("detection_hbb",), modality="optical", reader=_scene_reader,
                      tile=TileSpec(size=1024, overlap=200))
    outputs = []
    for workers in (1, 3):
        convert_source(spec, str(tmp_path / "raw"), str(tmp_path / f"out{workers}"), tile_workers=workers)
        folder = tmp_path / f"out{workers}" / "toy"
        outputs.append({p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]
    entries = [json.loads(line) for line in outputs[0][Path("quarantine.jsonl")].decode().splitlines()]
    outside = "object in no tile: outside the scene"
    assert [(e["reason"], e["path"]) for e in entries] == [
        (outside, "images/s0.png"), (outside, "images/s1.png"), ("image missing", "images/missing.png"),
        (outside, "images/s2.png"), ("truncated image", "images/s3.png"), (outside, "images/s4.png"),
        (outside, "images/s5.png")]  # the image check finds the missing and the cut-off scene before tiling
    summary = json.loads(outputs[0][Path("manifest.json")])["quarantine"]
    assert summary == {"skipped": {outside: 5, "image missing": 1, "truncated image": 1},
                       "fixed": {"object part under visibility threshold left out of a tile": 5}}
    tiles = {p.name: p for p in (tmp_path / "out1" / "toy" / "tiles").iterdir()}
    assert len(tiles) == 5 * 4 and not any(name.startswith("s3__") for name in tiles)
    for name, path in tiles.items():
        key, x0, y0 = re.fullmatch(r"(.+)__\d+__(\d+)___(\d+)\.png", name).groups()
        x0, y0 = int(x0), int(y0)
        with Image.open(path) as tile:
            assert np.array_equal(np.asarray(tile), scenes[key][y0:y0 + 1024, x0:x0 + 1024]), name


def test_mmrs_1m_merges_training_shards_and_renders_table_i(tmp_path):
    raw = _dataset(tmp_path / "raw")
    convert_source(_spec("toy"), str(raw), str(tmp_path / "out"))
    convert_source(_spec("bench", evaluation_only=True), str(raw), str(tmp_path / "out"))
    merged = build_mmrs_1m(str(tmp_path / "out"), ["toy", "bench"])
    assert [s["path"] for s in merged["shards"]] == ["toy/train-00000.jsonl"]
    assert merged["records"] == 1 and merged["rounds"] == 2
    table = (tmp_path / "out" / "mmrs_1m_stats.md").read_text()
    assert "| TOY | detection_hbb | sar | 2 | 2 | 2 | 100 |" in table
    assert "eval only" in table


def test_raw_and_output_on_s3(tmp_path, s3_bucket):
    raw = _dataset(tmp_path / "raw")
    fs = fsspec.filesystem("s3")
    fs.put(str(raw), f"{s3_bucket}/raw/toy", recursive=True)
    manifest = convert_source(_spec(), f"s3://{s3_bucket}/raw/toy", f"s3://{s3_bucket}/mmrs")
    local = convert_source(_spec(), str(raw), str(tmp_path / "out"))
    assert manifest["content_hash"] == local["content_hash"]
    names = sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{s3_bucket}/mmrs/toy"))
    assert names == ["manifest.json", "quarantine.jsonl", "test-00000.jsonl", "train-00000.jsonl"]
    assert manifest["raw_root"] == f"s3://{s3_bucket}/raw/toy"


def test_a_converted_corpus_moves_with_its_raw_data(tmp_path):
    """Local roots are recorded relative to the source's output folder: a copy of raw + output elsewhere
    (another clone, a DVC checkout) still finds its images."""
    raw = _dataset(tmp_path / "one" / "raw")
    manifest = convert_source(_spec(), str(raw), str(tmp_path / "one" / "mmrs"))
    assert manifest["raw_root"] == manifest["image_root"] == "../../raw"
    build_mmrs_1m(str(tmp_path / "one" / "mmrs"), ["toy"])
    merged = json.loads((tmp_path / "one" / "mmrs" / "mmrs_1m.json").read_text())
    assert merged["sources"]["toy"]["image_root"] == "../raw"  # relative to mmrs_1m.json's folder
    shutil.move(tmp_path / "one", tmp_path / "two")
    moved = tmp_path / "two" / "mmrs" / "toy"
    image_root = resolve_location(load_manifest(str(tmp_path / "two" / "mmrs"), "toy")["image_root"], str(moved))
    assert image_root == str(tmp_path / "two" / "raw")
    (record, *_) = iter_source_records(str(moved))
    assert Path(image_root, record["image"]).exists()
    assert resolve_location("../../raw", "s3://bucket/mmrs/toy") == "s3://bucket/raw"
    with pytest.raises(ValueError, match="leaves the bucket"):
        resolve_location("../../../raw", "s3://bucket/mmrs/toy")


def test_roots_outside_the_corpus_folder_stay_absolute(tmp_path):
    """A release elsewhere (/datasets/DOTA on a shared mount) is a fixed location, not data that moves with
    the corpus; object-store roots are full URLs."""
    raw = _dataset(tmp_path / "datasets" / "toy")
    manifest = convert_source(_spec(), str(raw), str(tmp_path / "project" / "data" / "mmrs"))
    assert manifest["image_root"] == manifest["raw_root"] == str(raw)
    assert relative_location("s3://bucket/raw", str(tmp_path), anchor=str(tmp_path)) == "s3://bucket/raw"
    build_mmrs_1m(str(tmp_path / "project" / "data" / "mmrs"), ["toy"])
    merged = json.loads((tmp_path / "project" / "data" / "mmrs" / "mmrs_1m.json").read_text())
    assert merged["sources"]["toy"]["image_root"] == str(raw)


def test_quarantine_entries_come_in_reading_order(tmp_path):
    """Per chunk of 64 images: the reader's own entries (it reads a chunk ahead), then each image's, its box
    and referral entries together, although boxes are checked for the whole chunk at once."""
    from mmrs.raw import Referral

    def reader(root, spec, quarantine):
        for i in range(150):
            if i in (64, 100):
                quarantine.skip("labels.txt", "reader note", {"line": i})
            size = (None, None) if i in (0, 70) else (100, 100)
            yield RawSample(spec.name, "train", f"k{i}", f"images/{i}.png", spec.modality, *size,
                            objects=[Box("ship", hbb=(10, 10, 10, 40)), Box("ship", hbb=(1, 1, 9, 9))],
                            referrals=[Referral("the ship", (5, 5, 5, 5))])

    (tmp_path / "raw" / "images").mkdir(parents=True)
    for i in range(150):
        if i not in (0, 70):  # no image file: "image missing"
            Image.new("L", (100, 100)).save(tmp_path / "raw" / "images" / f"{i}.png")
    spec = SourceSpec(name="toy", title="TOY", tasks=("detection_hbb", "grounding"), modality="sar", reader=reader)
    convert_source(spec, str(tmp_path / "raw"), str(tmp_path / "out"))
    lines = (tmp_path / "out" / "toy" / "quarantine.jsonl").read_text().splitlines()
    got = [(e["reason"], e["path"], "text" in (e["record"] or {})) for e in map(json.loads, lines)]
    want = []
    for start in range(0, 150, 64):
        want += [("reader note", "labels.txt", False) for i in (64, 100) if start <= i < start + 64]
        for i in range(start, min(start + 64, 150)):
            if i in (0, 70):
                want.append(("image missing", f"images/{i}.png", False))
            else:
                want += [("degenerate box", f"images/{i}.png", False), ("degenerate box", f"images/{i}.png", True)]
    assert got == want


def test_the_merged_manifest_does_not_depend_on_the_order_sources_are_given(tmp_path):
    for name in ("beta", "alpha"):
        convert_source(_spec(name), str(_dataset(tmp_path / "raw" / name)), str(tmp_path / "out"))
    build_mmrs_1m(str(tmp_path / "out"), ["beta", "alpha"])
    first = (tmp_path / "out" / "mmrs_1m.json").read_bytes()
    build_mmrs_1m(str(tmp_path / "out"), ["alpha", "beta", "alpha"])
    assert (tmp_path / "out" / "mmrs_1m.json").read_bytes() == first
    assert list(json.loads(first)["sources"]) == ["alpha", "beta"]
