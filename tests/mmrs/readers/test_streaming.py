"""The streaming JSON helpers of mmrs.readers.common: read_json, JsonDocument, Spool, RecordStore."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mmrs.quarantine import Quarantine
from mmrs.readers.common import JsonDocument, RecordStore, Spool, read_json
from mmrs.storage import SourceRoot


def _collect(document: JsonDocument, spool: Spool) -> int:
    """A load that reports every record that is not an object and files the others in the spool."""
    n = 0
    for record in document.items("images"):
        n += 1
        if isinstance(record, dict):
            spool.put(record["name"])
        else:
            spool.skip("a.json", "malformed record", record)
    return n


def _read(tmp_path: Path, text: str | bytes, lists: tuple[str, ...] = ("images",)) -> tuple[Any, Quarantine]:
    path = tmp_path / "a.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    quarantine = Quarantine("t")
    loaded = read_json(SourceRoot(str(tmp_path)), "a.json", quarantine, _collect, lists=lists)
    if loaded is None:
        return None, quarantine
    n, spool = loaded
    return (n, list(spool.replay(quarantine))), quarantine


def test_streams_items_and_replays_entries_in_order(tmp_path: Path) -> None:
    document = {"dataset": "x", "images": [{"name": "a"}, 3, {"name": "b"}, None]}
    result, quarantine = _read(tmp_path, json.dumps(document))
    assert result == (4, ["a", "b"])
    assert quarantine.skipped == Counter({"malformed record": 2})


def test_document_broken_part_way_keeps_what_comes_before(tmp_path: Path) -> None:
    """A cut-off file keeps its complete records: the streamed pass's entries are dropped, the recovered
    document is loaded again, and the cut is one entry that says where it is."""
    text = json.dumps({"images": [{"name": "a"}, 7, {"name": "b"}]})[:-3]  # truncated in the third record
    result, quarantine = _read(tmp_path, text)
    assert result == (2, ["a"])
    assert quarantine.skipped == Counter({"invalid json": 1, "malformed record": 1})
    sink = []
    quarantine = Quarantine("t", type("Sink", (), {"write": lambda self, line: sink.append(line)})())
    read_json(SourceRoot(str(tmp_path)), "a.json", quarantine, _collect, lists=("images",))
    assert json.loads(sink[0])["record"]["character"] == text.index('{"name": "b"')


def test_document_that_is_not_json_at_all_is_one_entry_with_json_loads_message(tmp_path: Path) -> None:
    text = '{"images": ['
    result, quarantine = _read(tmp_path, text)
    assert result is None and quarantine.skipped == Counter({"invalid json": 1})
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(text)
    sink = []
    quarantine = Quarantine("t", type("Sink", (), {"write": lambda self, line: sink.append(line)})())
    read_json(SourceRoot(str(tmp_path)), "a.json", quarantine, _collect, lists=("images",))
    assert json.loads(sink[0])["record"] == str(error.value)  # json.loads's own message, as before streaming


@pytest.mark.parametrize(("text", "detail"), [
    ('[{"name": "a"}]', "top level is not an object"),
    ('{"images": {"name": "a"}}', "no 'images' list"),
    ('{"other": []}', "no 'images' list"),
])
def test_malformed_files(tmp_path: Path, text: str, detail: str) -> None:
    sink: list[str] = []
    quarantine = Quarantine("t", type("Sink", (), {"write": lambda self, line: sink.append(line)})())
    (tmp_path / "a.json").write_text(text)
    assert read_json(SourceRoot(str(tmp_path)), "a.json", quarantine, _collect, lists=("images",)) is None
    entry = json.loads(sink[-1])
    assert (entry["reason"], entry["record"]) == ("malformed file", detail)


def test_whole_document_fallback_keeps_json_loads_tolerance(tmp_path: Path) -> None:
    # empty list (absent or empty needs the whole document), NaN (yajl refuses it), GB18030 text, a BOM
    assert _read(tmp_path, '{"images": []}')[0] == (0, [])
    assert _read(tmp_path, '{"images": [{"name": "a", "v": NaN}]}')[0] == (1, ["a"])
    assert _read(tmp_path, '{"images": [{"name": "港口"}]}'.encode("gb18030"))[0] == (1, ["港口"])
    assert _read(tmp_path, b"\xef\xbb\xbf" + b'{"images": [{"name": "a"}]}')[0] == (1, ["a"])


def test_json_document_values_and_pairs(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"categories": [{"id": 1}], "annotation": [1, 2], "n": 1.5}))
    document = JsonDocument(SourceRoot(str(tmp_path)), "a.json")
    assert document.is_object()
    assert document.value("categories") == [{"id": 1}]
    assert document.value("annotations", "absent") == "absent"
    assert list(document.items("annotations")) == [] and document.counts["annotations"] == 0
    assert list(document.items("annotation")) == [1, 2] and document.counts["annotation"] == 2
    assert list(document.pairs()) == [("categories", [{"id": 1}]), ("annotation", [1, 2]), ("n", 1.5)]
    # an escaped key name is still found (the byte scan only skips a pass when the name cannot be there)
    (tmp_path / "a.json").write_text('{"annot\\u0061tions": [5]}')
    assert list(JsonDocument(SourceRoot(str(tmp_path)), "a.json").items("annotations")) == [5]


def test_json_document_over_s3(tmp_path: Path, s3_bucket: str) -> None:
    import fsspec

    (tmp_path / "a.json").write_text(json.dumps({"images": [{"name": "a"}, {"name": "b"}]}))
    fsspec.filesystem("s3").put(str(tmp_path / "a.json"), f"{s3_bucket}/j/a.json")
    quarantine = Quarantine("t")
    n, spool = read_json(SourceRoot(f"s3://{s3_bucket}/j"), "a.json", quarantine, _collect, lists=("images",))
    assert (n, list(spool.replay(quarantine))) == (2, ["a", "b"])


def test_spool_keeps_unmarshalable_records_as_text() -> None:
    spool, quarantine = Spool(), Quarantine("t")
    spool.skip("p", "bad", object())
    spool.fix("fixed", 2)
    spool.put((1, [2.5, "x"], {"k": None}))
    assert list(spool.replay(quarantine)) == [(1, [2.5, "x"], {"k": None})]
    assert quarantine.skipped == Counter({"bad": 1}) and quarantine.fixed == Counter({"fixed": 2})


def test_record_store() -> None:
    store = RecordStore()
    huge = 10**30
    store.add(1, {"a": 1}, link=7)
    store.add(2, {"b": 2}, link=8)
    store.add(1, {"a": "second"}, link=8)  # not the first of key 1: never found through its link
    store.add(huge, "big")
    store.add(3, {"c": 3}, link=8)
    assert store.first(1) == {"a": 1} and store.first(99) is None and store.first(None) is None
    assert store.all(1) == [{"a": 1}, {"a": "second"}]
    assert store.first_many([1, 3, huge, 42]) == {1: {"a": 1}, 3: {"c": 3}, huge: "big"}
    assert store.first_linked(8) == {"b": 2} and store.first_linked(7) == {"a": 1}
    assert store.first_linked(9) is None
    store.add("s", [1, 2])  # adds after lookups still land
    assert store.all("s") == [[1, 2]]
    store.close()
