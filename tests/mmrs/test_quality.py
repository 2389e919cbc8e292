import json

from mmrs.quality import check_source
from mmrs.record import schema_problem
from mmrs.shards import ShardWriter, content_hash, write_json


def _record(rid, split="train", image="a.png", box=(0.1, 0.1, 0.5, 0.5), task="detection_hbb"):
    return {"id": rid, "source": "toy", "split": split, "task": task, "modality": "optical", "image": image,
            "width": 10, "height": 10,
            "conversations": [{"from": "human", "value": "<image>\nDetect."},
                              {"from": "gpt", "value": f"There is one ship [{','.join(map(str, box))}] in the image."}],
            "target": {"boxes_norm": [list(box)], "labels": ["ship"]}}


def _source(tmp_path, records, skipped=0):
    writer = ShardWriter(str(tmp_path / "toy"))
    for r in records:
        writer.write(r)
    shards = writer.close()
    write_json(str(tmp_path / "toy" / "manifest.json"),
               {"train_splits": ["train", "val"], "shards": shards, "content_hash": content_hash(shards),
                "quarantine": {"skipped": {"bad": skipped}, "fixed": {}}, "annotations": len(records)})


def test_clean_source_passes(tmp_path):
    _source(tmp_path, [_record("a"), _record("b", split="test", image="b.png")])
    report = check_source(str(tmp_path), "toy")
    assert report.records == 2
    assert (report.schema_errors.count, report.out_of_range.count, report.duplicate_ids.count,
            report.leaked_images.count) == (0, 0, 0, 0)


def test_each_problem_is_found_and_counted(tmp_path):
    broken = _record("c", image="c.png")
    broken["conversations"] = broken["conversations"][:1]
    _source(tmp_path, [_record("a"), _record("a", image="x.png"), _record("b", split="test"),
                       _record("d", image="d.png", box=(0.1, 0.1, 1.2, 0.5)), broken], skipped=5)
    report = check_source(str(tmp_path), "toy")
    assert report.duplicate_ids.examples == ["a"]
    assert report.leaked_images.examples == ["a.png"]  # train and test share it
    assert report.out_of_range.count == 1 and report.schema_errors.count == 1
    assert report.quarantine_rate == 5 / 10


def test_schema_problem_messages():
    good = _record("a")
    assert schema_problem(good) is None
    assert schema_problem({**good, "task": "segmentation"}) == "unknown task 'segmentation'"
    assert schema_problem({**good, "width": "10"}) == "width missing or not int"
    no_image = json.loads(json.dumps(good))
    no_image["conversations"][0]["value"] = "Detect."
    assert "image token" in schema_problem(no_image)
