"""Class 1: nothing outside the release is read. Every path a reader takes from an annotation goes through
SourceRoot.member; every file read through the root is confined to it (symlinks leading out are refused)."""

import json
import os
import posixpath
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmrs.build import convert_source
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records
from mmrs.storage import SourceRoot

HOSTILE = ["../../../../etc/passwd", "/etc/passwd", "..\\..\\secret.jpg", "C:\\Windows\\win.ini", "a/../../b.jpg",
           "s3://other-bucket/x.jpg", "ok\x00.jpg", "\udcff\udcfe.jpg", "", "   "]


def _records(out: Path, name: str) -> list[dict]:
    return list(iter_source_records(str(out / name)))


def _entries(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / name / "quarantine.jsonl").read_text().splitlines()]


def _inside(root: Path, records: list[dict]) -> bool:
    real = os.path.realpath(root)
    return all(os.path.realpath(root / r["image"]).startswith(real + os.sep) for r in records)


@pytest.mark.parametrize("hostile", ["../../../../etc/passwd", "/etc/passwd", "..\\..\\x.jpg"])
def test_coco_file_name_that_leaves_the_release_is_refused(release, tmp_path, hostile, tried):
    root = release("hrsid")
    path = root / "annotations/train2017.json"
    document = json.loads(path.read_bytes())
    document["images"][0]["file_name"] = hostile
    path.write_text(json.dumps(document))
    convert_source(SOURCES["hrsid"], str(root), str(tmp_path))
    records = _records(tmp_path, "hrsid")
    assert records and _inside(root, records)
    assert [e["reason"] for e in _entries(tmp_path, "hrsid")].count("unsafe path") == 1
    tried("paths: COCO file_name")


@pytest.mark.parametrize("hostile", ["../../../../etc/passwd", "/etc/passwd", "RSICD_images/../../x.jpg"])
def test_karpathy_filename_that_leaves_the_release_is_refused(release, tmp_path, hostile, tried):
    root = release("rsicd")
    path = root / "dataset_rsicd.json"
    document = json.loads(path.read_bytes())
    document["images"][0]["filename"] = hostile
    path.write_text(json.dumps(document))
    manifest = convert_source(SOURCES["rsicd"], str(root), str(tmp_path))
    records = _records(tmp_path, "rsicd")
    assert records and _inside(root, records)
    assert manifest["quarantine"]["skipped"] == {"unsafe path": 1}
    tried("paths: Karpathy filename")


def test_nwpu_captions_class_key_that_leaves_the_release_is_refused(release, tmp_path, tried):
    root = release("nwpu_captions")
    path = root / "dataset_nwpu.json"
    document = json.loads(path.read_bytes())
    first = next(iter(document))
    document = {"../../..": document[first], **{k: v for k, v in document.items() if k != first}}
    path.write_text(json.dumps(document))
    manifest = convert_source(SOURCES["nwpu_captions"], str(root), str(tmp_path))
    assert _inside(root, _records(tmp_path, "nwpu_captions"))
    assert manifest["quarantine"]["skipped"]["unsafe path"] == len(document["../../.."])
    tried("paths: NWPU-Captions class key")


def test_a_symlinked_image_leading_outside_is_refused(release, tmp_path, tried):
    """The issue's case: an image file inside the release that is a link to a file outside it."""
    root = release("rsicd")
    secret = tmp_path / "secret.jpg"
    document = json.loads((root / "dataset_rsicd.json").read_bytes())
    image = root / "RSICD_images" / document["images"][0]["filename"]
    secret.write_bytes(image.read_bytes())
    image.unlink()
    image.symlink_to(secret)
    manifest = convert_source(SOURCES["rsicd"], str(root), str(tmp_path / "out"))
    assert manifest["quarantine"]["skipped"] == {"path leaves the release": 1}
    assert all(r["image"] != f"RSICD_images/{image.name}" for r in _records(tmp_path / "out", "rsicd"))
    tried("paths: symlinked image")


def test_symlinked_label_files_and_folders_leading_outside_are_refused(release, tmp_path, tried):
    """A label file and an image folder that are links to places outside the release: never read, reported."""
    root = release("dota")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "P0003.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    label = root / "train/labelTxt-v1.0/labelTxt/P0003.txt"
    label.unlink()
    label.symlink_to(outside / "P0003.txt")
    os.rename(root / "val/images", outside / "val-images")
    (root / "val/images").symlink_to(outside / "val-images")
    manifest = convert_source(SOURCES["dota"], str(root), str(tmp_path / "out"))
    entries = _entries(tmp_path / "out", "dota")
    assert "root:x" not in (tmp_path / "out/dota/quarantine.jsonl").read_text()
    assert {e["reason"] for e in entries} >= {"path leaves the release", "missing label file"}
    assert "val" in manifest["absent_splits"]
    tried("paths: symlinked label file and folder", 2)


def test_a_link_inside_the_release_is_followed(release, tmp_path):
    root = release("rsicd")
    document = json.loads((root / "dataset_rsicd.json").read_bytes())
    image = root / "RSICD_images" / document["images"][0]["filename"]
    (root / "copy.jpg").write_bytes(image.read_bytes())
    image.unlink()
    image.symlink_to(root / "copy.jpg")
    manifest = convert_source(SOURCES["rsicd"], str(root), str(tmp_path / "out"))
    assert manifest["quarantine"]["skipped"] == {}


def test_confine_and_member_directly(tmp_path):
    from mmrs.storage import OutsideReleaseError, UnsafePathError

    (tmp_path / "release").mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (tmp_path / "release" / "link.txt").symlink_to(tmp_path / "outside.txt")
    root = SourceRoot(str(tmp_path / "release"))
    with pytest.raises(OutsideReleaseError):
        root.read_bytes("link.txt")
    assert not root.exists("link.txt") and root.take_refused() == [(str(tmp_path / "release/link.txt"),
                                                                   "path leaves the release")]
    for hostile in HOSTILE:
        with pytest.raises(UnsafePathError):
            root.member(hostile, "images")
    assert root.member("./a//b\\c.jpg", "images") == "images/a/b/c.jpg"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.lists(st.sampled_from(["..", ".", "/", "\\", ":", "\x00", "a", "b.jpg", "C:", "~", "s3://", "\udcff"])
                     | st.text(max_size=4), max_size=10).map("".join))
def test_member_never_leaves_its_folder(tmp_path, name, tried):
    """Whatever the name, a path member accepts stays under the folder it was asked for."""
    from mmrs.storage import UnsafePathError

    tried("paths: member() property")
    root = SourceRoot(str(tmp_path))
    try:
        rel = root.member(name, "images")
    except UnsafePathError:
        return
    normal = posixpath.normpath(rel)
    assert normal == "images" or normal.startswith("images/"), rel
    assert ".." not in normal.split("/")
