"""Stage-2 caption corpora: COCO Caption (official captions_*.json) and LAION-400M (img2dataset files and
webdataset layouts), read and converted end to end, record images loaded back."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmrs.build import convert_source
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.caption_corpora import SOURCES, laion_shards, normalize_caption
from mmrs.registry import get_source
from mmrs.shards import iter_source_records, resolve_location
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.templates import NATURAL_CAPTION_PROMPT
from models.image_transform import load_record_image, read_image

SPECS = {spec.name: spec for spec in SOURCES}


def read(spec: SourceSpec, root: str | Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(spec.name)
    return list(spec.reader(SourceRoot(str(root)), spec, quarantine)), quarantine


def encode(size: tuple[int, int], fmt: str = "JPEG", seed: int = 0) -> bytes:
    """A small noisy image (distinct pixels per seed) encoded as `fmt`."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def write(path: Path, data: bytes | str | dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        data = json.dumps(data, indent=4)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> None:
    pq.write_table(pa.table(columns), path)


def summary(samples: list[RawSample]) -> list[tuple[Any, ...]]:
    return [(s.split, s.key, s.image, s.width, s.height, s.captions) for s in samples]


def test_specs_are_registered_for_stage_2() -> None:
    coco, laion = get_source("coco_captions"), get_source("laion")
    assert (coco.title, coco.tasks, coco.modality, coco.train_splits, coco.paper_samples, coco.evaluation_only) == (
        "COCO Caption", ("captioning",), "optical", ("train",), None, False)
    assert (laion.title, laion.tasks, laion.modality, laion.train_splits) == (
        "LAION-400M", ("captioning",), "optical", ("train",))


def test_normalize_caption() -> None:
    assert normalize_caption("  Two  forks\tnext to\na plate .\n") == "Two forks next to a plate ."


# ------------------------------------------------------------------------------------------------- COCO


def coco_fixture(root: Path, year: int = 2017) -> dict[str, bytes]:
    """train: two captioned images (one caption blank), one without captions, a record without id, a repeated
    id, an annotation of an unknown image and one without caption; val: one image. Returns the image files."""
    prefix = "" if year == 2017 else f"COCO_train{year}_"
    train_images = [(9, (12, 8)), (25, (10, 6)), (30, (8, 8))]
    write(root / f"annotations/captions_train{year}.json", {
        "info": {}, "licenses": [],
        "images": [{"id": i, "file_name": f"{prefix}{i:012d}.jpg", "width": w, "height": h, "license": 1}
                   for i, (w, h) in train_images] + [{"file_name": "no_id.jpg"}, {"id": 9, "file_name": "dup.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 9, "caption": "A plate of food .\n"},
            {"id": 2, "image_id": 25, "caption": "   "},
            {"id": 3, "image_id": 9, "caption": "  Two  forks\tnext to a plate."},
            {"id": 4, "image_id": 25, "caption": "A giraffe standing."},
            {"id": 5, "image_id": 999, "caption": "An orphan caption."},
            {"id": 6, "image_id": 25},
        ]})
    images = {f"train{year}/{prefix}{i:012d}.jpg": encode(size, seed=i) for i, size in train_images}
    val_name = f"{'' if year == 2017 else f'COCO_val{year}_'}{139:012d}.jpg"
    write(root / f"annotations/captions_val{year}.json", {
        "images": [{"id": 139, "file_name": val_name, "width": 8, "height": 6}],
        "annotations": [{"id": 7, "image_id": 139, "caption": "A living room."}]})
    images[f"val{year}/{val_name}"] = encode((8, 6), seed=139)
    for rel, data in images.items():
        write(root / rel, data)
    return images


COCO_QUARANTINE = {"malformed image record": 1, "duplicate image": 1, "empty caption": 1, "unknown image id": 1,
                   "malformed annotation": 1, "no captions": 1}


def test_coco_captions_joined_by_image_id(tmp_path: Path) -> None:
    coco_fixture(tmp_path)
    samples, quarantine = read(SPECS["coco_captions"], tmp_path)
    assert summary(samples) == [
        ("train", "9", "train2017/000000000009.jpg", 12, 8, ["A plate of food .", "Two forks next to a plate."]),
        ("train", "25", "train2017/000000000025.jpg", 10, 6, ["A giraffe standing."]),
        ("val", "139", "val2017/000000000139.jpg", 8, 6, ["A living room."]),
    ]
    assert {s.source for s in samples} == {"coco_captions"} and {s.modality for s in samples} == {"optical"}
    assert quarantine.skipped == Counter(COCO_QUARANTINE)


def test_coco_2014_names(tmp_path: Path) -> None:
    coco_fixture(tmp_path, year=2014)
    samples, _ = read(SPECS["coco_captions"], tmp_path)
    assert [s.image for s in samples] == ["train2014/COCO_train2014_000000000009.jpg",
                                          "train2014/COCO_train2014_000000000025.jpg",
                                          "val2014/COCO_val2014_000000000139.jpg"]


def test_coco_missing_annotation_file_is_named_before_reading(tmp_path: Path) -> None:
    """A split whose annotation file is absent is named (the manifest's absent splits) and the others are
    read; with none there the error names them before anything is read."""
    coco_fixture(tmp_path)
    (tmp_path / "annotations/captions_val2017.json").unlink()
    samples, quarantine = read(SPECS["coco_captions"], tmp_path)
    assert samples and {s.split for s in samples} == {"train"}
    assert re.search(r"annotations/captions_val2017\.json \(nor .*captions_val2014", quarantine.absent["val"])
    (tmp_path / "annotations/captions_train2017.json").unlink()
    samples = SPECS["coco_captions"].reader(SourceRoot(str(tmp_path)), SPECS["coco_captions"], Quarantine("c"))
    with pytest.raises(MissingFileError, match=r"annotations/captions_val2017\.json \(nor .*captions_val2014"):
        next(samples)


def test_coco_malformed_documents_are_quarantined(tmp_path: Path) -> None:
    coco_fixture(tmp_path)
    write(tmp_path / "annotations/captions_train2017.json", "{not json")
    write(tmp_path / "annotations/captions_val2017.json", {"images": []})
    samples, quarantine = read(SPECS["coco_captions"], tmp_path)
    assert samples == [] and quarantine.skipped == Counter({"invalid json": 1, "malformed file": 1})


# ------------------------------------------------------------------------------------- LAION: files layout


def laion_files_fixture(root: Path) -> dict[str, bytes]:
    """Shard 00000 with a full parquet (two failed rows, a blank caption, a caption-less image); shard 00001
    whose parquet names its caption TEXT and lists one key, the others sized by .json or not at all. Returns
    the image files."""
    images = {"00000/000000000.jpg": encode((10, 6), seed=1), "00000/000000001.jpg": encode((8, 8), seed=2),
              "00000/000000003.png": encode((6, 4), "PNG", seed=3), "00001/000010000.jpg": encode((7, 5), seed=4),
              "00001/000010001.jpg": encode((9, 3), seed=5), "00001/000010002.jpg": encode((5, 5), seed=6)}
    for rel, data in images.items():
        write(root / rel, data)
    write(root / "00000/000000000.txt", "A red  car\n")
    write(root / "00000/000000000.json", {"key": "000000000", "width": 10, "height": 6, "original_width": 640,
                                          "original_height": 384, "status": "success"})
    write(root / "00000/000000001.txt", "  \n")
    write_parquet(root / "00000.parquet", {
        "url": [f"http://x/{i}" for i in range(5)],
        "caption": ["the .txt wins", "", "lost", None, "unresized"],
        "key": [f"00000000{i}" for i in range(5)],
        "status": ["success", "success", "failed_to_download", "success", "failed_to_resize"],
        "error_message": [None, None, "timeout", None, "bad"],
        "width": [10, 8, None, 6, None], "height": [6, 8, None, 4, None]})
    write(root / "00001/000010001.txt", "Mountains.")
    write(root / "00001/000010001.json", {"width": 9, "height": 3, "original_width": 900, "original_height": 300})
    write(root / "00001/000010002.txt", "Snow.")
    write_parquet(root / "00001.parquet", {"TEXT": ["A boat on a lake."], "key": ["000010000"],
                                           "status": ["success"], "width": [7.0], "height": [5.0]})  # pandas
    write(root / "00000_stats.json", {"count": 5})
    return images


def test_laion_files_layout(tmp_path: Path) -> None:
    laion_files_fixture(tmp_path)
    samples, quarantine = read(SPECS["laion"], tmp_path)
    assert summary(samples) == [
        ("train", "000000000", "00000/000000000.jpg", 10, 6, ["A red car"]),
        ("train", "000010000", "00001/000010000.jpg", 7, 5, ["A boat on a lake."]),
        ("train", "000010001", "00001/000010001.jpg", 9, 3, ["Mountains."]),
        ("train", "000010002", "00001/000010002.jpg", None, None, ["Snow."]),
    ]
    assert quarantine.skipped == Counter({"empty caption": 1, "no caption": 1})
    assert quarantine.fixed == Counter({"not downloaded (failed_to_download)": 1,
                                        "not downloaded (failed_to_resize)": 1})


# -------------------------------------------------------------------------------- LAION: webdataset layout


def tar_bytes(members: list[tuple[str, bytes | str | dict[str, Any]]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            if isinstance(data, dict):
                data = json.dumps(data, indent=4)
            payload = data if isinstance(data, bytes) else data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def truncated(data: bytes, member: int) -> bytes:
    """The tar cut 10 bytes into the data of its `member`-th member."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return data[:archive.getmembers()[member].offset_data + 10]


def laion_tar_fixture(root: Path) -> dict[str, bytes]:
    """00000.tar: sizes from json (not original_*), from the image header, from the parquet; a caption-less
    and an image-less sample; 00001.tar breaks off in its second sample (quarantined whole). Returns the
    images by record ref."""
    images = {"00000.tar::000000000.jpg": encode((10, 6), seed=1),
              "00000.tar::000000001.png": encode((12, 7), "PNG", seed=2),
              "00000.tar::000000004.jpg": encode((9, 9), seed=4)}
    write(root / "00000.tar", tar_bytes([
        ("000000000.jpg", images["00000.tar::000000000.jpg"]),
        ("000000000.json", {"key": "000000000", "width": 10, "height": 6, "original_width": 200,
                            "original_height": 120}),
        ("000000000.txt", "A red car."),
        ("000000001.json", {"key": "000000001", "status": "success"}),
        ("000000001.png", images["00000.tar::000000001.png"]),
        ("000000001.txt", " A cat.\n"),
        ("000000002.jpg", encode((4, 4), seed=3)),
        ("000000002.json", {"key": "000000002"}),
        ("000000003.txt", "An image-less caption."),
        ("000000004.jpg", images["00000.tar::000000004.jpg"]),
        ("000000004.txt", "Blue sky."),
    ]))
    write_parquet(root / "00000.parquet", {
        "key": [f"00000000{i}" for i in range(6)],
        "caption": ["A red car.", "A cat.", None, "An image-less caption.", "Blue sky.", "gone"],
        "status": ["success"] * 5 + ["failed_to_download"],
        "width": [None, None, None, None, 9, None], "height": [None, None, None, None, 9, None]})
    write(root / "00001.tar", truncated(tar_bytes([
        ("000010000.jpg", encode((6, 5), seed=5)), ("000010000.txt", "A field."),
        ("000010001.jpg", encode((6, 6), seed=6)), ("000010001.txt", "Lost to truncation."),
    ]), member=2))
    return images


def test_laion_webdataset_layout(tmp_path: Path) -> None:
    laion_tar_fixture(tmp_path)
    samples, quarantine = read(SPECS["laion"], tmp_path)
    assert summary(samples) == [
        ("train", "000000000", "00000.tar::000000000.jpg", 10, 6, ["A red car."]),
        ("train", "000000001", "00000.tar::000000001.png", 12, 7, ["A cat."]),
        ("train", "000000004", "00000.tar::000000004.jpg", 9, 9, ["Blue sky."]),
    ]
    assert quarantine.skipped == Counter({"no caption": 1, "no image": 1, "unreadable tar": 1})
    assert quarantine.fixed == Counter({"not downloaded (failed_to_download)": 1})


def test_laion_layout_detection_and_missing_shards(tmp_path: Path) -> None:
    laion_files_fixture(tmp_path / "files")
    laion_tar_fixture(tmp_path / "tars")
    assert laion_shards(SourceRoot(str(tmp_path / "files"))) == ("files", ["00000", "00001"])
    assert laion_shards(SourceRoot(str(tmp_path / "tars"))) == ("webdataset", ["00000.tar", "00001.tar"])
    with pytest.raises(MissingFileError, match=r"NNNNN/ folders\) in .*tars"):
        laion_shards(SourceRoot(str(tmp_path / "tars")), "files")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match=r"no img2dataset shards \(NNNNN.tar files or NNNNN/ folders\)"):
        laion_shards(SourceRoot(str(tmp_path / "empty")))


def test_laion_webdataset_streams_from_s3(tmp_path: Path, s3_bucket: str) -> None:
    images = laion_tar_fixture(tmp_path)
    fs = fsspec.filesystem("s3")
    for name in ("00000.tar", "00000.parquet", "00001.tar"):
        fs.pipe(f"{s3_bucket}/LAION-400M/{name}", (tmp_path / name).read_bytes())
    remote, _ = read(SPECS["laion"], f"s3://{s3_bucket}/LAION-400M")
    local, _ = read(SPECS["laion"], tmp_path)
    assert summary(remote) == summary(local)
    pixels = load_record_image(f"s3://{s3_bucket}/LAION-400M", remote[1].image)
    assert np.array_equal(pixels, read_image(images[remote[1].image]))


# --------------------------------------------------------------------------------- conversion and images


@pytest.mark.parametrize(("name", "fixture"), [
    ("coco_captions", coco_fixture), ("laion", laion_files_fixture), ("laion", laion_tar_fixture)])
def test_converted_records_load_their_pixels(tmp_path: Path, name: str, fixture: Any) -> None:
    raw = tmp_path / "raw"
    images = fixture(raw)
    expected, _ = read(SPECS[name], raw)
    manifest = convert_source(SPECS[name], str(raw), str(tmp_path / "out"))
    assert manifest["quarantine"]["skipped"].get("unreadable image", 0) == 0
    records = {r["id"]: r for r in iter_source_records(str(tmp_path / "out" / name))}
    assert sorted(records) == sorted(f"{name}/{s.split}/{s.key}/captioning" for s in expected)
    for sample in expected:
        record = records[f"{name}/{sample.split}/{sample.key}/captioning"]
        assert (record["task"], record["image"]) == ("captioning", sample.image)
        assert [t["value"] for t in record["conversations"][1::2]] == record["target"]["captions"] == sample.captions
        assert record["conversations"][0]["value"] == "<image>\n" + NATURAL_CAPTION_PROMPT  # not "remote sensing"
        pixels = load_record_image(resolve_location(manifest["image_root"], str(tmp_path / "out" / name)),
                                   record["image"])
        assert np.array_equal(pixels, read_image(images[sample.image]))
        assert (record["width"], record["height"]) == (pixels.shape[1], pixels.shape[0])
