"""Small parsing helpers shared by readers (datasets.md section 1), and the streaming of large JSON annotation
files: read_json (a document read in ijson passes, checked whole before its results are used, with
json.loads's exact verdict as fallback), Spool (results and quarantine entries held on disk until then) and
RecordStore (id joins on disk), so that a reader's memory stays flat however large the release is."""

from __future__ import annotations

import hashlib
import json
import marshal
import math
import posixpath
import re
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, TypeVar

import ijson

from mmrs.quarantine import Quarantine
from mmrs.storage import MissingFileError, SourceRoot

T = TypeVar("T")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
HIDDEN = (".DS_Store", "Thumbs.db")


def is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def parse_number(text: str | None) -> float:
    """'123', ' 123.0 ', '1.2e+02' -> float. Raises ValueError on anything else, NaN and infinities included
    (callers quarantine): a non-finite number is never data."""
    if text is None:
        raise ValueError("missing number")
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text.strip()!r}")
    return value


def finite(values: Iterable[Any]) -> tuple[float, ...]:
    """`values` as floats (JSON numbers or numeric strings), all finite; ValueError otherwise. For numbers
    from JSON (which may spell NaN and Infinity) and for coordinates computed from parsed ones (x + w may
    overflow)."""
    out = []
    for value in values:
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        number = float(value.strip()) if isinstance(value, str) else float(value)
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {value!r}")
        out.append(number)
    return tuple(out)


class ClassMap:
    """A dataset's class names: exact match first, then a case-/space-insensitive fallback, then a compact one
    that drops every character but letters and digits (`expresswayservicearea`, the spelling of common
    repacks, finds DIOR's `Expressway-Service-area`; `footballfield` finds `footballField`). A compact
    spelling shared by two different classes matches neither.

    aliases map variant spellings (typos, other packagings) to the canonical name. Unknown names give None.
    """

    def __init__(self, names: Iterable[str], aliases: Mapping[str, str] | None = None):
        self.names = tuple(names)
        self._exact = {n: n for n in self.names} | dict(aliases or {})
        self._loose = {self._fold(k): v for k, v in self._exact.items()}
        compact: dict[str, str | None] = {}
        for key, value in self._exact.items():
            folded = self._compact(key)
            compact[folded] = value if compact.get(folded, value) == value else None
        self._compact_names = {k: v for k, v in compact.items() if v is not None and k}

    @staticmethod
    def _fold(name: str) -> str:
        return re.sub(r"[\s_\-]+", " ", name.strip().lower())

    @staticmethod
    def _compact(name: str) -> str:
        return re.sub(r"[^0-9a-z]", "", name.lower())

    def resolve(self, name: str) -> str | None:
        return (self._exact.get(name) or self._loose.get(self._fold(name))
                or self._compact_names.get(self._compact(name)))


def display_name(label: str, names: Mapping[str, str] | None = None) -> str:
    """Natural wording of a class for instructions: 'small-vehicle' -> 'small vehicle',
    'OtherVehicle' -> 'other vehicle', 'storagetank' via the dataset's `names` table -> 'storage tank'."""
    if names and label in names:
        return names[label]
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    return re.sub(r"[\s_\-]+", " ", spaced).strip().lower()


def hash_split(key: str, fractions: Mapping[str, float]) -> str:
    """Deterministic split for datasets without an official one: the key's SHA-1 picks a point in [0, 1)
    and `fractions` (in their order) cut that interval, e.g. {"train": 0.2, "test": 0.8} (the paper's
    classification protocol). The same key always lands in the same split, whatever else is in the set."""
    point = int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name, fraction in fractions.items():
        edge += fraction
        if point < edge:
            return name
    return next(reversed(fractions))


def stem(filename: str) -> str:
    return posixpath.splitext(posixpath.basename(filename))[0]


def note_absent(root: SourceRoot, quarantine: Quarantine, present: int, absent: Mapping[str, str], what: str) -> None:
    """A release with some splits absent is converted with what is there: each absent split (split -> the
    missing folder or file) is recorded in the quarantine (the manifest lists them). MissingFileError naming
    them all when none is present: a release with nothing usable is an error."""
    if not present and absent:
        raise MissingFileError(f"required {what} missing under {root.uri('')}: "
                               + "; ".join(f"{split}: {missing}" for split, missing in absent.items()))
    for split, missing in absent.items():
        quarantine.split_absent(split, missing)


def first_existing(root: SourceRoot, candidates: Sequence[str]) -> str:
    """The first candidate folder that exists, else the first one (the converter reports missing images)."""
    return next((c for c in candidates if root.isdir(c)), candidates[0])


UNDECODABLE_LINE = "undecodable line"


def text_lines(root: SourceRoot, path: str, quarantine: Quarantine) -> Iterator[str]:
    """The lines of a line-per-record text file (label files, split lists), blank ones included; a line that
    is neither UTF-8 nor GB18030 is quarantined alone ("undecodable line", one unit) and left out."""
    for number, line in enumerate(root.read_lines(path), start=1):
        if line is None:
            quarantine.skip(path, UNDECODABLE_LINE, {"line": number})
        else:
            yield line


def read_line_boxes(root: SourceRoot, path: str, parse: Callable[[str], Any], quarantine: Quarantine) -> list[Any]:
    """Parse a one-object-per-line label file: blank lines ignored, `parse(line)` returns the object or the
    reason (a str) to quarantine the line; objects in file order."""
    boxes = []
    for raw in text_lines(root, path, quarantine):
        line = raw.strip()
        if not line:
            continue
        box = parse(line)
        if isinstance(box, str):
            quarantine.skip(path, box, line)
        else:
            boxes.append(box)
    return boxes


# --- JSON documents, streamed (memory flat in document size) -----------------------------------------------

_BOM = b"\xef\xbb\xbf"
_STREAMED = object()  # JsonDocument.data of a document read from its file by ijson


class JsonDocument:
    """A JSON file read in streamed passes: ijson (its C backend, yajl2_c, where installed) over the file that
    SourceRoot opens, one pass per top-level key asked for, so that no more than one element of a list (one
    top-level value for `pairs`/`value`) is ever in memory. `data` is the parsed document instead when
    read_json had to fall back to `json.loads` (see there); every method then answers from it, the same way.
    A top-level key written twice is read as one key holding both values (json.loads keeps the last one)."""

    def __init__(self, root: SourceRoot, rel: str, data: Any = _STREAMED):
        self.root, self.rel, self.data = root, rel, data
        self.counts: dict[str, int] = {}  # key -> elements `items` streamed (complete passes only)

    def _stream(self, parse: Callable[..., Iterator[Any]], *args: Any) -> Iterator[Any]:
        with self.root.open(self.rel) as f:
            if f.read(3) != _BOM:
                f.seek(0)
            yield from parse(f, *args, use_float=True, buf_size=1 << 18)

    def _may_hold(self, key: str) -> bool:
        """Whether a key `key` can be in the streamed document at all: its name occurs in it as a JSON string,
        or the document has \\u escapes (which could spell it). A byte scan, far cheaper than a parsing pass."""
        if any(c in key for c in '\\"/'):  # other escapes could spell it
            return True
        needle, tail = json.dumps(key, ensure_ascii=False).encode(), b""
        with self.root.open(self.rel) as f:
            while chunk := f.read(1 << 20):
                data = tail + chunk
                if needle in data or b"\\u" in data:
                    return True
                tail = data[-len(needle):]
        return False

    def items(self, key: str) -> Iterator[Any]:
        """Elements of the top-level list `key` in document order (none when it is absent or not a list)."""
        if self.data is _STREAMED:
            n = 0
            if self._may_hold(key):
                for item in self._stream(ijson.items, f"{key}.item"):
                    n += 1
                    yield item
            self.counts[key] = n
            return
        value = self.data.get(key) if isinstance(self.data, dict) else None
        yield from value if isinstance(value, list) else ()

    def value(self, key: str, default: Any = None) -> Any:
        """The value of top-level `key`, built whole (for small values such as COCO categories)."""
        if self.data is not _STREAMED:
            return self.data.get(key, default) if isinstance(self.data, dict) else default
        if not self._may_hold(key):
            return default
        for value in self._stream(ijson.items, key):
            default = value
        return default

    def pairs(self) -> Iterator[tuple[str, Any]]:
        """(key, value) of the top-level object in document order, each value built whole."""
        if self.data is _STREAMED:
            yield from self._stream(ijson.kvitems, "")
        elif isinstance(self.data, dict):
            yield from self.data.items()

    def kind(self, key: str) -> str | None:
        """The JSON type of top-level `key`'s value ("array", "object", "string", "number", "boolean",
        "null"), None when the key is absent. Streamed: a scan up to the key (a full pass when it is last)."""
        if self.data is not _STREAMED:
            if not isinstance(self.data, dict) or key not in self.data:
                return None
            value = self.data[key]
            return ("array" if isinstance(value, list) else "object" if isinstance(value, dict) else
                    "string" if isinstance(value, str) else "null" if value is None else
                    "boolean" if isinstance(value, bool) else "number")
        if not self._may_hold(key):
            return None
        events = self._stream(ijson.parse)
        for prefix, event, value in events:
            if prefix == "" and event == "map_key" and value == key:
                _, event, _ = next(events)
                return {"start_array": "array", "start_map": "object"}.get(event, event)
        return None

    def is_object(self) -> bool:
        """Whether the top level is an object (streamed: by its first character; the document is valid)."""
        if self.data is not _STREAMED:
            return isinstance(self.data, dict)
        with self.root.open(self.rel) as f:
            head = f.read(4096)
        return head.removeprefix(_BOM).lstrip(b" \t\r\n")[:1] == b"{"


class Spool:
    """Quarantine entries and items in the order they were made, kept in a temporary file (marshal, length
    framed) until `replay`: a reader collects a document's results first and hands them on only once the
    document has been read to its end without error. Stands in for a Quarantine (skip, fix); items are
    marshal-able values (tuples, lists, dicts, str, numbers, None)."""

    _LENGTH = struct.Struct("<I")

    def __init__(self) -> None:
        self._file: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 (closed by replay/close)

    def _write(self, entry: tuple[int, Any]) -> None:
        data = marshal.dumps(entry)
        self._file.write(self._LENGTH.pack(len(data)))
        self._file.write(data)

    def skip(self, path: str, reason: str, record: Any = None, units: int = 1) -> None:
        try:
            self._write((0, (path, reason, record, units)))
        except ValueError:  # not marshal-able: the text Quarantine would write for it anyway
            self._write((0, (path, reason, repr(record)[:2000], units)))

    def fix(self, reason: str, n: int = 1) -> None:
        self._write((1, (reason, n)))

    def drop(self, reason: str, n: int = 1) -> None:
        self._write((3, (reason, n)))

    def put(self, item: Any) -> None:
        self._write((2, item))

    def _entries(self) -> Iterator[tuple[int, Any]]:
        f, self._file = self._file, None
        try:
            f.seek(0)
            buffer, pos, size = b"", 0, self._LENGTH.size
            while chunk := f.read(1 << 20):
                buffer, pos = buffer[pos:] + chunk, 0
                end = len(buffer)
                with memoryview(buffer) as view:
                    while pos + size <= end:
                        (length,) = self._LENGTH.unpack_from(buffer, pos)
                        if pos + size + length > end:
                            break
                        yield marshal.loads(view[pos + size:pos + size + length])
                        pos += size + length
        finally:
            f.close()

    def replay(self, quarantine: Quarantine) -> Iterator[Any]:
        """The items in order, each entry passed to `quarantine` where it was made; the spool is closed after."""
        for kind, payload in self._entries():
            if kind == 2:
                yield payload
            elif kind == 0:
                quarantine.skip(*payload)
            elif kind == 1:
                quarantine.fix(*payload)
            else:
                quarantine.drop(*payload)

    def flush_to(self, quarantine: Quarantine) -> None:
        """Replay a spool that holds quarantine entries only."""
        for _ in self.replay(quarantine):
            pass

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_json(root: SourceRoot, rel: str, quarantine: Quarantine, load: Callable[[JsonDocument, Spool], T],
              lists: Sequence[str] = (), *, path: str | None = None, invalid: str = "invalid json",
              malformed: str | None = None, optional_lists: Sequence[str] = ()) -> tuple[T, Spool] | None:
    """Run `load(document, spool)` over a JSON file streamed, as if it had been parsed whole first: `load`
    collects (into disk-backed stores or the spool) and reports bad records to the spool; the caller replays
    the spool. None when the file is not usable, after quarantining it at `path` (default `rel`): not JSON
    (reason `invalid`, json.loads's message), top level not an object, a key of `lists` not a list (reason
    "malformed file", detail `malformed` or what is wrong) or a key of `optional_lists` present but not a
    list (a COCO `annotations` object would otherwise turn every image into one without objects).

    A document that is not valid JSON as a whole keeps its valid part (`recover_json`): each damaged part is
    quarantined with where it was (reason `invalid`), the rest is loaded.

    A streamed read that fails part-way, finds the top level is not an object, or finds a key of `lists`
    without elements (absent, empty or not a list: which one needs the whole document) is done again with
    `json.loads` on the whole text, which decides exactly as before streaming (its message, its tolerance of
    NaN, GB18030 text, ...): only such files are held in memory."""
    document, spool = JsonDocument(root, rel), Spool()
    try:
        if document.is_object():
            result = load(document, spool)
            if all(document.counts.get(key, 0) > 0 for key in lists) and all(
                    document.counts.get(key, 0) > 0 or document.kind(key) in (None, "array")
                    for key in optional_lists):
                return result, spool
    except (ijson.JSONError, ValueError):  # ijson's errors; ValueError: bad UTF-8, numbers out of range
        pass
    spool.close()
    try:
        data = json.loads(root.read_text(rel))
    except ValueError as error:
        recovered = recover_json(root.read_bytes(rel))
        if recovered is None:
            quarantine.skip(path or rel, invalid, str(error), units=0)
            return None
        data, damage = recovered
        for offset, detail in damage:  # what was lost is not known: the entry says where
            quarantine.skip(path or rel, invalid, {"character": offset, "skipped": detail}, units=0)
    problem = None
    if not isinstance(data, dict):
        problem = "top level is not an object"
    elif missing := [key for key in lists if not isinstance(data.get(key), list)]:
        problem = malformed or f"no {', '.join(repr(k) for k in missing)} list"
    elif wrong := [key for key in optional_lists if key in data and not isinstance(data[key], list)]:
        problem = f"{', '.join(repr(k) for k in wrong)} is not a list but {type(data[wrong[0]]).__name__}"
    if problem is not None:
        quarantine.skip(path or rel, "malformed file", problem, units=0)
        return None
    spool = Spool()
    return load(JsonDocument(root, rel, data), spool), spool


# --- JSON recovery --------------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()


def _valid_text(value: Any) -> bool:
    """No lone surrogates anywhere in a parsed value (bytes that were not UTF-8, kept as surrogate escapes)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_valid_text(v) for v in value)
    if isinstance(value, dict):
        return all(_valid_text(k) and _valid_text(v) for k, v in value.items())
    return True


def recover_json(data: bytes) -> tuple[dict[str, Any], list[tuple[int, str]]] | None:
    """The valid part of a damaged JSON document whose top level is an object (an annotation file: its values
    lists of records, or records): each top-level value and each element of a top-level list is parsed on its
    own, so one bad byte costs the element it is in, not the file. A damaged element is skipped up to the next
    element of the list that parses and has the keys every good element so far had (so a record nested inside
    the damaged one is not taken for one of the list's); an element holding bytes that are not UTF-8 is
    skipped too. Returns (the document, [(character offset, what was skipped)], one entry per damaged
    stretch), or None when there is no top-level object or nothing in it to recover (the file is then
    unusable as a whole)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("gb18030") if not _is_utf8(data) else data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
    pos = _skip_space(text, 0)
    if not text.startswith("{", pos):
        return None
    document: dict[str, Any] = {}
    damage: list[tuple[int, int, str]] = []  # (start, end, what)
    pos += 1
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            damage.append((pos, pos, "document ends before its closing brace"))
            break
        if text[pos] == "}":
            break
        if text[pos] == ",":
            pos += 1
            continue
        start = pos
        try:
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip_space(text, pos)
            if not isinstance(key, str) or not text.startswith(":", pos):
                raise ValueError("expected a key and a colon")
            pos = _skip_space(text, pos + 1)
            if text.startswith("[", pos):
                value, pos = _recover_list(text, pos, damage)
            else:
                value, pos = _DECODER.raw_decode(text, pos)
                if not _valid_text(value):
                    damage.append((start, pos, f"value of {key!r} holds bytes that are not UTF-8"))
                    continue
        except ValueError as error:
            damage.append((start, len(text), f"the rest of the document: {error}"))
            break
        document[key] = value
    if not sum(len(v) if isinstance(v, list) else 1 for v in document.values()):
        return None  # nothing was recovered: the file is unusable as a whole (json.loads says why)
    merged: list[tuple[int, int, str]] = []
    for start, end, what in damage:  # a cut-off file ends an element, its list and the document at once
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, what))
    return document, [(start, what) for start, _, what in merged]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            data.decode("gb18030")
        except UnicodeDecodeError:
            return True  # neither: UTF-8 with bad bytes (surrogate escapes mark them)
        return False
    return True


def _recover_list(text: str, pos: int, damage: list[tuple[int, int, str]]) -> tuple[list[Any], int]:
    """The elements of the list starting at `pos` (its `[`) that parse, and the position after its `]`."""
    items: list[Any] = []
    keys: set[str] | None = None  # the keys every good dict element so far had
    pos += 1
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            damage.append((pos, pos, "list not closed"))
            return items, pos
        if text[pos] == "]":
            return items, pos + 1
        if text[pos] == ",":
            pos += 1
            continue
        start = pos
        try:
            item, end = _DECODER.raw_decode(text, pos)
            after = _skip_space(text, end)
            if after < len(text) and text[after] not in ",]":
                raise ValueError("element not followed by ',' or ']'")
        except ValueError:
            pos = _resync(text, pos + 1, items, keys)
            damage.append((start, pos, f"damaged element skipped: {text[start:min(pos, start + 200)]!r}"))
            continue
        pos = end
        if not _valid_text(item):
            damage.append((start, end, "element holds bytes that are not UTF-8"))
            continue
        if isinstance(item, dict):
            keys = set(item) if keys is None else keys & set(item)
        items.append(item)


def _resync(text: str, pos: int, items: list[Any], keys: set[str] | None) -> int:
    """The start of the next element after damage at `pos`: an element like the good ones (a dict with all
    of `keys`, or of the first good element's type) that parses and is followed by ',' or ']'; the end of the
    text when there is none."""
    opener = "{" if not items or isinstance(items[0], dict) else "["
    while (found := text.find(opener, pos)) >= 0:
        pos = found + 1
        try:
            item, end = _DECODER.raw_decode(text, found)
        except ValueError:
            continue
        after = _skip_space(text, end)
        if after >= len(text) or text[after] not in ",]":
            continue
        if opener == "{" and (not isinstance(item, dict) or (keys and not keys <= set(item))):
            continue
        return found
    return len(text)


class RecordStore:
    """Values filed under keys, in a temporary SQLite database (memory stays flat however many there are):
    `add` in any order, then look up the first value of a key, all values of a key in the order added, or
    the first value linked to another key. Keys: str or int; values: marshal-able."""

    _BATCH = 20_000

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary database on disk
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("PRAGMA cache_size = -4096")  # 4 MiB
        self._db.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, k, link, v BLOB)")
        self._pending: list[tuple[Any, Any, bytes]] = []
        self._indexed = False

    @staticmethod
    def _key(key: Any) -> Any:
        return key if not isinstance(key, int) or -(1 << 63) <= key < 1 << 63 else str(key)

    def add(self, key: str | int, value: Any, link: str | int | None = None) -> None:
        self._pending.append((self._key(key), None if link is None else self._key(link), marshal.dumps(value)))
        if len(self._pending) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT INTO r (k, link, v) VALUES (?, ?, ?)", self._pending)
            self._pending.clear()

    def _ready(self) -> sqlite3.Connection:
        self._flush()
        if not self._indexed:
            self._db.execute("CREATE INDEX r_k ON r (k, seq)")
            self._db.execute("CREATE INDEX r_link ON r (link, seq) WHERE link IS NOT NULL")
            self._indexed = True
        return self._db

    def first(self, key: str | int | None) -> Any:
        """The first value added under `key` (None when there is none)."""
        if key is None:
            return None
        row = self._ready().execute("SELECT v FROM r WHERE k = ? ORDER BY seq LIMIT 1", (self._key(key),)).fetchone()
        return marshal.loads(row[0]) if row else None

    def first_many(self, keys: Iterable[str | int]) -> dict[Any, Any]:
        """{key: its first value} for those of `keys` that have one (keys as given)."""
        wanted = {self._key(key): key for key in keys}
        found: dict[Any, Any] = {}
        db, names = self._ready(), list(wanted)
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            rows = db.execute(f"SELECT k, v FROM r WHERE k IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk)
            for k, v in rows:
                if wanted[k] not in found:
                    found[wanted[k]] = marshal.loads(v)
        return found

    def all(self, key: str | int) -> list[Any]:
        """Every value added under `key`, in the order added."""
        rows = self._ready().execute("SELECT v FROM r WHERE k = ? ORDER BY seq", (self._key(key),))
        return [marshal.loads(v) for (v,) in rows]

    def first_linked(self, link: str | int | None) -> Any:
        """Of the first values of all keys, the first one added with `link` (None when there is none)."""
        if link is None:
            return None
        row = self._ready().execute(
            "SELECT v FROM r AS a WHERE link = ? AND NOT EXISTS (SELECT 1 FROM r AS b WHERE b.k = a.k AND "
            "b.seq < a.seq) ORDER BY seq LIMIT 1", (self._key(link),)).fetchone()
        return marshal.loads(row[0]) if row else None

    def close(self) -> None:
        self._db.close()
