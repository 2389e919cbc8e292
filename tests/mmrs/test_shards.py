import io
import json

import orjson

from mmrs.quarantine import Quarantine
from mmrs.shards import encode_record

# valid raw inside a JSON string, but line breaks to str.splitlines() and JavaScript
SEPARATORS = "a\x85b\u2028c\u2029d"


def test_shard_lines_escape_unicode_line_separators_and_keep_the_value():
    record = {"id": "x", "conversations": [{"from": "gpt", "value": SEPARATORS + " 中？"}]}
    line = encode_record(record)
    assert orjson.loads(line) == record
    assert len(line.decode().splitlines()) == 1 and "中？" in line.decode()  # other text stays raw UTF-8
    assert encode_record({"id": "y", "v": "plain"}) == orjson.dumps({"id": "y", "v": "plain"}) + b"\n"


def test_quarantine_lines_escape_unicode_line_separators_too():
    sink = io.StringIO()
    Quarantine("toy", sink).skip("labels/001.txt", "bad number", record=SEPARATORS)
    lines = sink.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["record"] == SEPARATORS
