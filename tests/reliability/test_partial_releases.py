"""Class 9: real releases that are partial or repacked convert. A release with some splits absent converts
what is there and says which are absent (manifest, asset metadata, CLI); only a release with nothing usable
is an error. EuroSAT's MS packaging is found; compact class spellings of repacks resolve."""

import shutil

import numpy as np
import pytest
import tifffile

from mmrs.build import convert_source
from mmrs.readers.common import ClassMap
from mmrs.readers.voc import DIOR_CLASSES
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records
from mmrs.storage import MissingFileError
from pipelines.cli import main


def test_a_dota_copy_without_val_converts_train_and_says_so(release, tmp_path, capsys):
    root = release("dota")
    shutil.rmtree(root / "val")
    manifest = convert_source(SOURCES["dota"], str(root), str(tmp_path / "a"))
    assert set(manifest["images"]) == {"train"} and list(manifest["absent_splits"]) == ["val"]
    assert "val/labelTxt-v1.0/labelTxt" in manifest["absent_splits"]["val"]
    from assets.mmrs import _absent_md

    assert "| val |" in _absent_md(manifest["absent_splits"])
    assert main(["convert", "dota", "--root", str(root), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "dota: converted without its absent splits: val" in capsys.readouterr().err


def test_a_dior_r_only_copy_converts(release, tmp_path):
    """DIOR-R is distributed as the OBB annotations (with DIOR's images and split files): no HBB folder."""
    root = release("dior")
    shutil.rmtree(root / "Annotations/Horizontal Bounding Boxes")
    manifest = convert_source(SOURCES["dior"], str(root), str(tmp_path))
    records = list(iter_source_records(str(tmp_path / "dior")))
    assert {r["task"] for r in records} == {"detection_hbb", "detection_obb"} and manifest["absent_splits"] == {}
    assert manifest["accounting"]["balanced"]


def test_a_release_with_nothing_usable_is_an_error_naming_what_is_missing(release, tmp_path):
    root = release("dior")
    shutil.rmtree(root / "Annotations")
    with pytest.raises(MissingFileError, match="Horizontal Bounding Boxes"):
        convert_source(SOURCES["dior"], str(root), str(tmp_path))
    assert main(["convert", "dior", "--root", str(root), "--out", str(tmp_path / "b"), "--quiet"]) == 2


def test_eurosat_ms_packaging_is_found(tmp_path):
    """The MS release (13-band GeoTIFFs under EuroSAT_MS/ or the zip's deep folder, or unpacked flat): main
    read it as the RGB packaging and quarantined every image as "unknown class"."""
    for layout in ("EuroSAT_MS", "ds/images/remote_sensing/otherDatasets/sentinel_2/tif", ""):
        root = tmp_path / layout.replace("/", "_") / "EuroSAT"
        for cls in ("AnnualCrop", "SeaLake"):
            path = root / layout / cls / f"{cls}_1.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, np.zeros((8, 8, 13), np.uint16), photometric="minisblack", planarconfig="contig")
        manifest = convert_source(SOURCES["eurosat"], str(root), str(tmp_path / "out" / layout.replace("/", "_")))
        assert manifest["quarantine"]["skipped"] == {}, layout
        assert sum(manifest["images"].values()) == 2


def test_compact_class_spellings_resolve_in_every_reader():
    classes = ClassMap(DIOR_CLASSES)
    assert classes.resolve("expresswayservicearea") == "Expressway-Service-area"
    assert classes.resolve("EXPRESSWAY_TOLL_STATION") == "Expressway-toll-station"
    assert ClassMap(["storage-tank", "storage tank2"]).resolve("storagetank") == "storage-tank"
    assert ClassMap(["a-b", "ab"]).resolve("AB") == "ab"  # exact and loose first
    assert ClassMap(["a-b", "A B"]).resolve("a.b") is None  # a compact spelling of two classes: neither


def test_compact_class_spelling_in_a_dior_xml_converts(release, tmp_path):
    root = release("dior")
    for xml in (root / "Annotations/Horizontal Bounding Boxes").glob("*.xml"):
        xml.write_bytes(xml.read_bytes().replace(b"<name>storagetank</name>", b"<name>STORAGE_TANK</name>")
                        .replace(b"<name>vehicle</name>", b"<name>Vehicle</name>"))
    manifest = convert_source(SOURCES["dior"], str(root), str(tmp_path))
    assert "unknown class" not in manifest["quarantine"]["skipped"]
