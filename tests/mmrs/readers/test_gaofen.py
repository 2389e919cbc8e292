"""Gaofen-challenge xml reader (datasets.md D3 FAIR1M, E1 AIR-SARShip-2.0, section H row Gaofen xml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.common import hash_split
from mmrs.readers.gaofen import FAIR1M_CLASSES, SOURCES, read_gaofen
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, generate_dataset
from mmrs.synthetic.samples import iter_samples
from mmrs.synthetic.writers.sar import int_hbb, ships

FAIR1M, AIR_SARSHIP = SOURCES

HEADER = ("<research><version>1.0</version><provider>AIRCAS</provider><author>x</author>"
          "<pluginname>FAIR1M</pluginname><pluginclass>object detection</pluginclass><time>2021-03</time>"
          "</research>")


def gaofen_object(name: str, points: list[str], probability: bool = True) -> str:
    result = f"<name>{name}</name>" + ("<probability>1</probability>" if probability else "")
    return ("<object><coordinate>pixel</coordinate><type>rectangle</type><description>None</description>"
            f"<possibleresult>{result}</possibleresult>"
            f"<points>{''.join(f'<point>{p}</point>' for p in points)}</points></object>")


def gaofen_xml(filename: str | None, objects: list[str], size: tuple[int, int] | None = (1000, 800),
               filename_at_root: bool = False, origin: str = "GF2/GF3") -> str:
    name = f"<filename>{filename}</filename>" if filename else ""
    source = f"<source>{'' if filename_at_root else name}<origin>{origin}</origin></source>"
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    root_name = name if filename_at_root else ""
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotation>{root_name}{source}{HEADER}{size_xml}'
            f"<objects>{''.join(objects)}</objects></annotation>\n")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def tif(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path, format="TIFF")


CLOSED = ["468.0,313.0", "491.0,313.0", "491.0,325.0", "468.0,325.0", "468.0,313.0"]
SPACED = ["10, 20", "40, 22", "38, 50", "8, 48", "10, 20"]


@pytest.fixture
def fair1m(tmp_path: Path) -> Path:
    root = tmp_path / "FAIR1M"
    part1, part2, val = root / "train/part1", root / "train/part2", root / "validation"
    for image in (part1 / "images/0.tif", part1 / "images/1.tif", part2 / "images/0.tif", val / "images/5.tif",
                  root / "test/images/9.tif"):
        tif(image)
    write(part1 / "labelXml/0.xml", gaofen_xml("0.tif", [
        gaofen_object("Small Car", CLOSED),
        gaofen_object("Boeing737", SPACED, probability=False),
        gaofen_object("small car", ["1,1", "5,1", "5,5", "1,5"]),  # case variant, open ring of 4
        gaofen_object("Spaceship", CLOSED),  # unknown class
        gaofen_object("Bus", ["1,1", "5;1", "5,5", "1,5", "1,1"]),  # bad point
        gaofen_object("Van", ["1,1", "5,1", "1,1"]),  # a closed ring of 2 points
    ]))
    write(part1 / "labelXml/1.xml", gaofen_xml("renamed.tif", [], size=None))  # stem fallback, no size
    write(part1 / "labelXml/2.xml", gaofen_xml("2.tif", []))  # no image
    write(part1 / "labelXml/3.xml", "<annotation><objects>")  # malformed
    write(part2 / "labelXml/0.xml", gaofen_xml("0.tif", [gaofen_object("other-ship", CLOSED)], origin=""))
    write(val / "labelXml/5.xml", gaofen_xml("5.tif", [gaofen_object("Tennis Court", SPACED)], size=(0, 0)))
    return root


def read(root: Path, spec) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine(spec.name)
    return list(read_gaofen(SourceRoot(str(root)), spec, quarantine)), quarantine


def test_fair1m_native_quirks(fair1m):
    samples, quarantine = read(fair1m, FAIR1M)
    origin = {"origin": "GF2/GF3"}
    assert samples == [
        RawSample("fair1m", "train", "part1/0", "train/part1/images/0.tif", "optical", 1000, 800, objects=[
            Box("Small Car", obb=(468, 313, 491, 313, 491, 325, 468, 325)),
            Box("Boeing737", obb=(10, 20, 40, 22, 38, 50, 8, 48)),
            Box("Small Car", obb=(1, 1, 5, 1, 5, 5, 1, 5)),
        ], meta=origin),
        RawSample("fair1m", "train", "part1/1", "train/part1/images/1.tif", "optical", meta=origin),
        RawSample("fair1m", "train", "part2/0", "train/part2/images/0.tif", "optical", 1000, 800,
                  objects=[Box("other-ship", obb=(468, 313, 491, 313, 491, 325, 468, 325))]),
        RawSample("fair1m", "val", "5", "validation/images/5.tif", "optical",
                  objects=[Box("Tennis Court", obb=(10, 20, 40, 22, 38, 50, 8, 48))], meta=origin),
    ]
    assert quarantine.summary() == {
        "skipped": {"bad point": 1, "fewer than 4 points": 1, "image missing": 1, "malformed xml": 1,
                    "unknown class": 1},
        "fixed": {},
    }


def test_fair1m_spec_and_v1_layout(fair1m):
    assert (FAIR1M.name, FAIR1M.title, FAIR1M.paper_samples) == ("fair1m", "FAIR1M", 40466)
    assert len(FAIR1M_CLASSES) == len(set(FAIR1M_CLASSES)) == 37
    assert FAIR1M.tile is not None and FAIR1M.tasks == ("detection_hbb", "detection_obb")
    for folder in ("train/part2/labelXml", "validation/labelXml"):  # v1.0: train/part1 only
        for xml in (fair1m / folder).iterdir():
            xml.unlink()
        (fair1m / folder).rmdir()
    samples, _ = read(fair1m, FAIR1M)
    assert [s.key for s in samples] == ["part1/0", "part1/1"]


def test_fair1m_missing_part1_is_named(fair1m):
    for xml in (fair1m / "train/part1/labelXml").iterdir():
        xml.unlink()
    (fair1m / "train/part1/labelXml").rmdir()
    samples, quarantine = read(fair1m, FAIR1M)  # what is there is converted, the absent part named
    assert samples and not any(s.key.startswith("part1/") for s in samples)
    assert "train/part1/labelXml" in quarantine.absent["train/part1/labelXml"]


@pytest.fixture
def air_sarship(tmp_path: Path) -> Path:
    root = tmp_path / "AIR-SARShip-2.0"
    for stem in ("83", "84", "85"):
        path = root / "AIR-SARShip-2.0-data" / f"{stem}.tiff"
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, np.full((16, 16), 40000, np.uint16), photometric="minisblack")
    xml = root / "AIR-SARShip-2.0-xml"
    write(xml / "83.xml", gaofen_xml("83.tiff", [
        gaofen_object("ship", ["412, 233", "447, 233", "447, 251", "412, 251", "412, 233"]),
        gaofen_object("ship", ["447,251", "412,233"]),  # two corners, in any order
        gaofen_object("ship", ["5,5"]),
    ], size=None, origin="GF3"))
    write(xml / "84.xml", gaofen_xml("84.tif", [gaofen_object("Ship", ["1,2", "9,2", "9,8", "1,8"])],
                                     size=(1000, 1000), filename_at_root=True, origin="GF3"))
    write(xml / "85.xml", gaofen_xml(None, [], size=None, origin="GF3"))  # no filename: stem + .tiff
    return root


def test_air_sarship_native_quirks(air_sarship):
    samples, quarantine = read(air_sarship, AIR_SARSHIP)
    meta = {"origin": "GF3"}
    split = {key: hash_split(key, {"train": 0.67, "test": 0.33}) for key in ("83", "84", "85")}
    assert samples == [
        RawSample("air_sarship_2", split["83"], "83", "AIR-SARShip-2.0-data/83.tiff", "sar",
                  objects=[Box("ship", hbb=(412, 233, 447, 251)), Box("ship", hbb=(412, 233, 447, 251))], meta=meta),
        RawSample("air_sarship_2", split["84"], "84", "AIR-SARShip-2.0-data/84.tiff", "sar", 1000, 1000,
                  objects=[Box("ship", hbb=(1, 2, 9, 8))], meta=meta),
        RawSample("air_sarship_2", split["85"], "85", "AIR-SARShip-2.0-data/85.tiff", "sar", meta=meta),
    ]
    assert quarantine.summary() == {"skipped": {"fewer than 2 points": 1}, "fixed": {}}


def test_air_sarship_spec(air_sarship):
    assert (AIR_SARSHIP.name, AIR_SARSHIP.title, AIR_SARSHIP.paper_samples) == (
        "air_sarship_2", "AIR-SARShip-2.0", 1433)
    assert AIR_SARSHIP.modality == "sar" and AIR_SARSHIP.tile is None
    assert AIR_SARSHIP.options["hash_split"] == {"train": 0.67, "test": 0.33}
    assert AIR_SARSHIP.train_splits == ("train",)


def test_air_sarship_missing_images_folder_is_named(air_sarship):
    for image in (air_sarship / "AIR-SARShip-2.0-data").iterdir():
        image.unlink()
    (air_sarship / "AIR-SARShip-2.0-data").rmdir()
    with pytest.raises(MissingFileError, match="AIR-SARShip-2.0-data"):
        read(air_sarship, AIR_SARSHIP)


# --- the sample corpus --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_dataset("air_sarship_2", out, seed=0, scale=1)
    return out / DATASETS["air_sarship_2"].folder


def test_air_sarship_corpus_matches_ground_truth(corpus):
    samples, quarantine = read(corpus, AIR_SARSHIP)
    expected = []
    for s in iter_samples(DATASETS["air_sarship_2"], 0, 1):
        key = str(s.index + 1)
        size = (None, None) if s.index % 4 == 3 else (s.width, s.height)  # the writer omits <size> then
        expected.append(RawSample(
            "air_sarship_2", hash_split(key, AIR_SARSHIP.options["hash_split"]), key,
            f"AIR-SARShip-2.0-data/{key}.tiff", "sar", *size,
            objects=[Box("ship", hbb=tuple(map(float, int_hbb(o, s.scene)))) for o in ships(s.scene)],
            meta={"origin": "GF3"}))
    assert samples == sorted(expected, key=lambda r: f"{r.key}.xml")
    assert quarantine.summary() == {"skipped": {}, "fixed": {}}
    assert {s.split for s in samples} == {"train", "test"}
