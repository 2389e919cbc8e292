"""Classes 3, 4 and 5 and JSON recovery, each on the sample corpus's own native files:

3. one bad line never stops a dataset (a NaN vertex, bytes that are not text in a label or split file, a
   file name that is not valid UTF-8): it is one quarantine entry and the rest converts;
4. nothing is lost silently (a COCO `annotations` that is not a list, an xml whose root is not
   `<annotation>`, a label file whose image is gone);
5. NaN is never data (coordinates, answers);
and one bad byte in a JSON annotation file costs the record it is in, not the file.
"""

import json
import os
import re
from pathlib import Path

from mmrs.build import convert_source
from mmrs.registry import SOURCES
from mmrs.shards import iter_source_records


def _convert(name: str, root: Path, out: Path) -> tuple[dict, list[dict]]:
    manifest = convert_source(SOURCES[name], str(root), str(out))
    return manifest, list(iter_source_records(str(out / name)))


def _entries(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / name / "quarantine.jsonl").read_text().splitlines()]


def _no_nan(records: list[dict]) -> bool:
    text = json.dumps(records)
    return not re.search(r"\bnan\b|NaN|Infinity|null\]|\[null|, null", text)


def _dota_label(root: Path) -> Path:
    return next(p for p in sorted((root / "train/labelTxt-v1.0/labelTxt").glob("*.txt"))
                if len(p.read_bytes().split(b"\n")) > 4)


# --- 3: one bad line ---------------------------------------------------------------------------------------------

def test_a_nan_vertex_in_a_dota_label_is_one_entry(release, tmp_path):
    root = release("dota")
    label = _dota_label(root)
    lines = label.read_bytes().split(b"\n")
    lines[2] = b"nan " + lines[2].split(b" ", 1)[1]
    label.write_bytes(b"\n".join(lines))
    manifest, records = _convert("dota", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"bad number": 1}
    assert records and _no_nan(records)


def test_bytes_that_are_not_text_in_a_label_file_cost_their_line(release, tmp_path):
    root = release("dota")
    label = _dota_label(root)
    lines = label.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"small-vehicle", b"small-\xff\xfevehicle").replace(b"plane", b"pl\xffane")
    label.write_bytes(b"\n".join(lines))
    manifest, records = _convert("dota", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"undecodable line": 1}
    assert records


def test_bytes_that_are_not_text_in_a_split_file_cost_their_line(release, tmp_path):
    root = release("dior")
    split = root / "ImageSets/Main/val.txt"
    split.write_bytes(split.read_bytes() + b"\xff\xfe\xfd\n")
    manifest, records = _convert("dior", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"undecodable line": 1}
    assert manifest["images"]["val"] == 6


def test_a_file_name_that_is_not_utf8_is_reported_not_fatal(release, tmp_path):
    root = release("nwpu_resisc45")
    image = next((root / "airport").glob("*.jpg"))
    os.rename(bytes(image), bytes(image.parent) + b"/\xff\xfe.jpg")
    manifest, records = _convert("nwpu_resisc45", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"file name not valid UTF-8": 1}
    assert len(records) == 119
    assert "\\xff\\xfe.jpg" in _entries(tmp_path, "nwpu_resisc45")[0]["path"]


# --- 4: nothing lost silently --------------------------------------------------------------------------------

def test_coco_annotations_of_the_wrong_type_quarantine_the_file(release, tmp_path):
    root = release("hrsid")
    path = root / "annotations/train2017.json"
    document = json.loads(path.read_bytes())
    document["annotations"] = {str(a["id"]): a for a in document["annotations"]}
    path.write_text(json.dumps(document))
    manifest, records = _convert("hrsid", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"malformed file": 1}
    assert {r["split"] for r in records} == {"test"}  # no train image turned into one "without objects"


def test_an_xml_with_another_root_element_is_malformed_not_empty(release, tmp_path):
    root = release("dior")
    xml = sorted((root / "Annotations/Horizontal Bounding Boxes").glob("*.xml"))[0]
    xml.write_bytes(xml.read_bytes().replace(b"<annotation>", b"<html>").replace(b"</annotation>", b"</html>"))
    manifest, records = _convert("dior", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"malformed xml": 1}
    assert not [r for r in records if f"/{xml.stem}/" in r["id"]]


def test_a_label_file_whose_image_is_gone_is_reported(release, tmp_path):
    root = release("dota")
    label = _dota_label(root)
    (root / "train/images" / f"{label.stem}.png").unlink()
    manifest, _ = _convert("dota", root, tmp_path)
    objects = sum(1 for line in label.read_text().splitlines() if line and not line.startswith(("image", "gsd")))
    assert manifest["quarantine"]["skipped"] == {"image missing": 1}
    assert manifest["accounting"]["quarantined"] == objects


# --- 5: NaN is not data ---------------------------------------------------------------------------------------

def test_a_nan_coordinate_never_reaches_answers_or_targets(release, tmp_path):
    root = release("hrsid")
    path = root / "annotations/train2017.json"
    document = json.loads(path.read_bytes())
    document["annotations"][0]["bbox"][1] = float("nan")
    document["annotations"][1]["bbox"][2] = float("inf")
    document["annotations"][2]["bbox"] = [1e308, 1, 1e308, 2]  # x + w overflows
    path.write_text(json.dumps(document))
    manifest, records = _convert("hrsid", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"malformed bbox": 3}
    assert _no_nan(records)


def test_a_nan_answer_is_no_answer(release, tmp_path):
    root = release("rsvqa_lr")
    path = root / "LR_split_train_answers.json"
    document = json.loads(path.read_bytes())
    document["answers"][0]["answer"] = float("nan")
    document["answers"][1]["answer"] = float("-inf")
    path.write_text(json.dumps(document))
    manifest, records = _convert("rsvqa_lr", root, tmp_path)
    assert manifest["quarantine"]["skipped"] == {"missing answer": 2}
    answers = [qa["answer"] for r in records for qa in r["target"]["qa"]]
    assert "nan" not in answers and "-inf" not in answers and "inf" not in answers


# --- JSON: one bad byte costs its record --------------------------------------------------------------------

def test_one_bad_byte_in_a_json_file_costs_one_record(release, tmp_path):
    """The issue's RSICD case: 0 of 60 records survived one bad byte."""
    root = release("rsicd")
    path = root / "dataset_rsicd.json"
    data = path.read_bytes()
    document = json.loads(data)
    third = data.index(json.dumps(document["images"][2]["filename"]).encode())
    damaged = data[:third + 3] + b"\xff" + data[third + 4:]  # a byte that is not UTF-8, inside a file name
    path.write_bytes(damaged)
    manifest, records = _convert("rsicd", root, tmp_path / "a")
    assert manifest["quarantine"]["skipped"] == {"invalid json": 1}
    assert sum(manifest["images"].values()) == 59
    tenth = damaged.index(json.dumps(document["images"][9]["filename"]).encode())
    path.write_bytes(damaged[:tenth - 2] + b"#" + damaged[tenth - 1:])  # and a structural break further on
    manifest, records = _convert("rsicd", root, tmp_path / "b")
    assert manifest["quarantine"]["skipped"] == {"invalid json": 2}
    assert sum(manifest["images"].values()) == 58
