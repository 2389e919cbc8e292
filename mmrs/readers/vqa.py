"""Visual question answering datasets (datasets.md B1-B5): FloodNet Track 2 (id-keyed JSON), RSVQA-LR and
RSVQA-HR (JSON trios), RSIVQA (`key:question?answer` txt files) and CRSVQA (per-image question/answer txt).

One RawSample per image and split with its QA pairs in file order; `QAPair.qtype` is the dataset's own
question type (RSVQA `type`, FloodNet `Question_Type`) or one derived from the templates the spec documents
(RSIVQA, CRSVQA). Questions are whitespace-normalised with the full-width `？` turned into `?`; answers are
kept as written (RSVQA counts and areas raw or pre-bucketed alike: bucketing is the paper's evaluation
protocol, done downstream; FloodNet integer counts become digit strings; RSIVQA word counts stay words).
A QA pair without question or answer is quarantined; an image left without any QA pair is not emitted.
Image sizes are not in these annotations: width/height stay None.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mmrs.quarantine import Quarantine
from mmrs.raw import QAPair, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.readers.common import (
    UNDECODABLE_LINE,
    JsonDocument,
    RecordStore,
    Spool,
    first_existing,
    hash_split,
    is_image,
    note_absent,
    read_json,
    stem,
    text_lines,
)
from mmrs.storage import SourceRoot, UnsafePathError

FULL_WIDTH_QUESTION_MARK = "\uff1f"


def clean_question(value: Any) -> str:
    """Whitespace runs -> one space, ends stripped, `？` -> `?` ("" for a non-string)."""
    return " ".join(value.replace(FULL_WIDTH_QUESTION_MARK, "?").split()) if isinstance(value, str) else ""


def answer_text(value: Any) -> str:
    """A JSON answer as text: strings stripped, integers (and integral floats) as digits; "" for anything
    else (missing, empty, booleans, containers, NaN and infinities: a non-finite number is never an answer)."""
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, float):
        return str(value)
    return " ".join(value.split()) if isinstance(value, str) else ""


class ImageFolder:
    """The image files of one folder, listed once, so that an annotation's file name whose case or extension
    differs from the file on disk still finds it."""

    def __init__(self, root: SourceRoot, folder: str):
        self.root, self.folder = root, folder
        names = [n for n in root.listdir(folder) if is_image(n)] if root.isdir(folder) else []
        self._exact = set(names)
        self._loose: dict[str, str] = {}
        for name in names:
            self._loose.setdefault(name.lower(), name)
            self._loose.setdefault(stem(name).lower(), name)

    def path(self, name: str) -> str:
        """`folder/name` as the folder spells it: exact, else case-insensitive, else by stem; `name` as given
        when nothing matches (the converter reports the missing image). UnsafePathError for a name that would
        leave the folder (SourceRoot.member)."""
        if name not in self._exact:
            name = self._loose.get(name.lower()) or self._loose.get(stem(name).lower()) or name
        return self.root.member(name, self.folder)



def find_file(root: SourceRoot, candidates: Sequence[str]) -> str:
    """The first candidate file that exists; MissingFileError naming candidates[0] if none does."""
    return next((c for c in candidates if root.exists(c)), None) or root.require(candidates[0], "annotation file")


def _guarded(images: ImageFolder, name: str, path: str, units: int, quarantine: Quarantine) -> str | None:
    """images.path(name), or None after quarantining the image's QA pairs when the name is unsafe."""
    try:
        return images.path(name)
    except UnsafePathError as error:
        quarantine.skip(path, "unsafe path", {"image": name, "problem": str(error)}, units=units)
        return None


# ------------------------------------------------------------------------------------------- FloodNet


@dataclass(frozen=True)
class SplitFiles:
    """One split of a dataset with a file per split: annotation file candidates (first existing is used)
    and the image folder."""

    split: str
    annotations: tuple[str, ...]
    images: str


def _floodnet_qa(record: Any, path: str, quarantine: Quarantine | Spool) -> tuple[str, QAPair] | None:
    """(Image_ID, QA pair) of one FloodNet record, or None after quarantining it."""
    if not isinstance(record, dict):
        quarantine.skip(path, "malformed record", record)
        return None
    image_id, question = record.get("Image_ID"), clean_question(record.get("Question"))
    if not isinstance(image_id, str) or not image_id.strip():
        quarantine.skip(path, "missing image id", record)
        return None
    if not question:
        quarantine.skip(path, "missing question", record)
        return None
    truth = record.get("Ground_Truth")
    answer = answer_text(truth)
    if not answer:
        quarantine.skip(path, "missing answer" if truth is None or truth == "" else "malformed answer", record)
        return None
    qtype = record.get("Question_Type")
    return image_id.strip(), QAPair(question, answer, qtype if isinstance(qtype, str) and qtype else None)


def read_floodnet(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """FloodNet Track 2 (B1): per split a JSON object `{"0": {Image_ID, Question, Ground_Truth,
    Question_Type}, ...}`; Image_ID is the file name with extension inside the split's image folder.
    Ground_Truth is an int for counting questions, a str otherwise, possibly absent in the test file
    (that QA pair is quarantined as "missing answer").

    options: splits (SplitFiles per split). Key = Image_ID stem; images in order of first appearance.
    """
    present = [(files, path) for files in spec.options["splits"]
               if (path := next((c for c in files.annotations if root.exists(c)), None))]
    absent = {files.split: root.uri(files.annotations[0]) for files in spec.options["splits"]
              if files not in [p[0] for p in present]}
    note_absent(root, quarantine, len(present), absent, "annotation files")
    for files, path in present:
        loaded = read_json(root, path, quarantine, partial(_floodnet_load, path=path))
        if loaded is None:
            continue
        (first_names, pairs), spool = loaded
        spool.flush_to(quarantine)
        images = ImageFolder(root, files.images)
        try:
            for key, image_id in first_names.items():
                qa = [QAPair(*qa) for qa in pairs.all(key)]
                image = _guarded(images, image_id, path, len(qa), quarantine)
                if image is not None:
                    yield RawSample(source=spec.name, split=files.split, key=key, image=image,
                                    modality=spec.modality, qa=qa)
        finally:
            pairs.close()


def _floodnet_load(document: JsonDocument, spool: Spool, path: str) -> tuple[dict[str, str], RecordStore]:
    """({key: its first Image_ID} in order of first appearance, the QA pairs filed under each key)."""
    first_names: dict[str, str] = {}
    pairs = RecordStore()
    for _, record in document.pairs():
        parsed = _floodnet_qa(record, path, spool)
        if parsed is None:
            continue
        image_id, qa = parsed
        key = stem(image_id)
        first_names.setdefault(key, image_id)
        pairs.add(key, (qa.question, qa.answer, qa.qtype))
    return first_names, pairs


# ---------------------------------------------------------------------------------------------- RSVQA

_RSVQA_PARTS = ("images", "questions", "answers")


def record_id(value: Any) -> int | None:
    """An RSVQA id (int, or digits as a string), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _by_id(document: JsonDocument, part: str, path: str, spool: Spool, link: bool = False) -> RecordStore:
    """id -> record (the first one when an id repeats), on disk; records without an id are quarantined. With
    `link`, each answer is linked to its question id (the spec document spells the key `quesiton_id`)."""
    out = RecordStore()
    for record in document.items(part):
        rid = record_id(record.get("id")) if isinstance(record, dict) else None
        if rid is None:  # 0 units: the image that refers to it reports the lost QA pair
            spool.skip(path, "malformed record", record, units=0)
        else:
            out.add(rid, record, record_id(record.get("question_id", record.get("quesiton_id"))) if link else None)
    return out


class _RsvqaIndex:
    """Questions and answers of one split joined by id, never by position (B2/B3), looked up on disk."""

    def __init__(self, questions: RecordStore, answers: RecordStore):
        self.questions, self.answers = questions, answers

    def answers_of(self, questions: list[tuple[int, dict]]) -> list[str]:
        """Per (question id, question): the answer of `answers_ids[0]`, else the first answer whose question id
        is the question's ("" if none)."""
        wanted = []
        for _, question in questions:
            ids = question.get("answers_ids")
            wanted.append(record_id(ids[0]) if isinstance(ids, list) and ids else None)
        found = self.answers.first_many({aid for aid in wanted if aid is not None})
        texts = []
        for (qid, _), aid in zip(questions, wanted, strict=True):
            record = found.get(aid) if aid is not None else None
            record = record or self.answers.first_linked(qid)
            texts.append(answer_text(record.get("answer")) if record else "")
        return texts


def _rsvqa_pairs(image: dict, index: _RsvqaIndex, path: str, spool: Spool) -> list[tuple[str, str, str | None]]:
    """The active QA pairs of one image record in `questions_ids` order; inactive questions are left out
    (they belong to no split), unknown or incomplete ones quarantined."""
    qids = image.get("questions_ids")
    raw_qids = qids if isinstance(qids, list) else []
    parsed = [record_id(raw_qid) for raw_qid in raw_qids]
    known = index.questions.first_many({qid for qid in parsed if qid is not None})
    active: list[tuple[int, dict]] = []
    for raw_qid, qid in zip(raw_qids, parsed, strict=True):
        question = known.get(qid) if qid is not None else None
        if question is None:
            active.append((raw_qid, None))
        elif question.get("active", True):
            active.append((qid, question))
    answers = iter(index.answers_of([entry for entry in active if entry[1] is not None]))
    pairs = []
    for qid, question in active:
        if question is None:
            spool.skip(path, "unknown question", {"image": image.get("id"), "question": qid})
            continue
        text, answer = clean_question(question.get("question")), next(answers)
        if not text or not answer:
            spool.skip(path, "missing question" if not text else "missing answer", question)
            continue
        qtype = question.get("type")
        pairs.append((text, answer, qtype if isinstance(qtype, str) and qtype else None))
    return pairs


def _question_count(image: Any) -> int:
    """QA pairs an image record refers to (its `questions_ids`), for the units of a skipped image."""
    qids = image.get("questions_ids") if isinstance(image, dict) else None
    return len(qids) if isinstance(qids, list) else 0


def _rsvqa_images(document: JsonDocument, index: _RsvqaIndex | None, path: str, questions_path: str,
                  spool: Spool) -> None:
    """(image id, QA pairs) of each usable image record into the spool, in document order. Without an index
    (a question or answer file is unusable) the document is only read through (checked)."""
    seen: set[int] = set()
    for image in document.items("images"):
        if index is None:
            continue
        img_id = record_id(image.get("id")) if isinstance(image, dict) else None
        if img_id is None:
            spool.skip(path, "malformed record", image, units=_question_count(image))
            continue
        if not image.get("active", True):
            continue
        if img_id in seen:
            spool.skip(path, "duplicate image", image, units=_question_count(image))
            continue
        seen.add(img_id)
        pairs = _rsvqa_pairs(image, index, questions_path, spool)
        if not pairs:  # 0 units: its questions were reported one by one (or it had none)
            spool.skip(path, "no questions", image, units=0)
            continue
        spool.put((img_id, pairs))


def _rsvqa_split(root: SourceRoot, spec: SourceSpec, split: str, image_dir: str,
                 quarantine: Quarantine) -> Iterator[RawSample]:
    prefix = spec.options["prefix"]
    paths = {part: root.require(f"{prefix}_split_{split}_{part}.json", "split file") for part in _RSVQA_PARTS}
    files = {part: Spool() for part in _RSVQA_PARTS}  # file-level entries, reported in the order of the trio
    questions = read_json(root, paths["questions"], files["questions"],
                          lambda document, spool: _by_id(document, "questions", paths["questions"], spool),
                          lists=("questions",))
    answers = read_json(root, paths["answers"], files["answers"],
                        lambda document, spool: _by_id(document, "answers", paths["answers"], spool, link=True),
                        lists=("answers",))
    index = _RsvqaIndex(questions[0], answers[0]) if questions and answers else None
    try:
        images = read_json(root, paths["images"], files["images"],
                           lambda document, spool: _rsvqa_images(document, index, paths["images"],
                                                                 paths["questions"], spool),
                           lists=("images",))
        for part in _RSVQA_PARTS:
            files[part].flush_to(quarantine)
        if index is None or images is None:
            return
        questions[1].flush_to(quarantine)
        answers[1].flush_to(quarantine)
    finally:
        for loaded in (questions, answers):
            if loaded is not None:
                loaded[0].close()
    for img_id, pairs in images[1].replay(quarantine):
        yield RawSample(source=spec.name, split=split, key=str(img_id),
                        image=f"{image_dir}/{img_id}{spec.options['extension']}", modality=spec.modality,
                        qa=[QAPair(*qa) for qa in pairs])


def read_rsvqa(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """RSVQA JSON trio (B2/B3): per split `<prefix>_split_<split>_{images,questions,answers}.json`, each
    `{"<part>": [records]}`. Active images in document order; each `questions_ids` entry is looked up by
    question id, its answer by `answers_ids[0]` (else by the answer's `question_id` / `quesiton_id`);
    image = `<image_dir>/<id><extension>`, key = the image id.

    options: prefix (LR | USGS), splits, image_dirs (candidates; first existing), extension (.tif).
    """
    image_dir = first_existing(root, spec.options["image_dirs"])
    prefix, present, absent = spec.options["prefix"], [], {}
    for split in spec.options["splits"]:
        missing = [f"{prefix}_split_{split}_{part}.json" for part in _RSVQA_PARTS
                   if not root.exists(f"{prefix}_split_{split}_{part}.json")]
        if missing:
            absent[split] = ", ".join(root.uri(m) for m in missing)
        else:
            present.append(split)
    note_absent(root, quarantine, len(present), absent, "split files")
    for split in present:
        yield from _rsvqa_split(root, spec, split, image_dir, quarantine)


# --------------------------------------------------------------------------------------------- RSIVQA


@dataclass(frozen=True)
class QaTextFolder:
    """One RSIVQA sub-folder: where its images lie and how its keys become file names.

    images: image folder relative to the RSIVQA root (the other releases unpacked beside it), with
    `{split}` replaced by the sample's split (DOTA train/val images lie in different folders).
    extension: appended to keys that have none (HRRSD `00001` -> `.jpg`, DOTA `P0003` -> `.png`).
    file_splits: txt file name -> its official split; QA pairs of other files are hash-split by image.
    """

    images: str
    extension: str = ""
    file_splits: Mapping[str, str] = field(default_factory=dict)


# RSIVQA templates (B4) -> question type; matched on the lower-cased question start.
_RSIVQA_TYPES = (("what is the theme", "scene"), ("does this picture contain", "presence"), ("how many", "count"),
                 ("what is the location", "location"))


def _rsivqa_line(line: str, path: str, quarantine: Quarantine) -> tuple[str, QAPair] | None:
    """`<key>:<question>?<answer>` split at the first `:` and then the first `?` -> (key, QA pair);
    None for a blank line or after quarantining a bad one. A question with an empty template slot (a double
    space, `What is the location of the  in this picture`) asks about nothing and is quarantined."""
    text = line.strip()
    if not text:
        return None
    key, colon, rest = text.partition(":")
    question, mark, answer = rest.partition("?")
    key, question, answer = key.strip(), question.strip(), answer.strip()
    if not colon or not mark or not key or not question:
        quarantine.skip(path, "malformed line", line)
        return None
    if not answer:
        quarantine.skip(path, "missing answer", line)
        return None
    if "  " in question:
        quarantine.skip(path, "empty template slot", line)
        return None
    lower = question.lower()
    qtype = next((t for start, t in _RSIVQA_TYPES if lower.startswith(start)), None)
    return key, QAPair(f"{question}?", answer, qtype)


def _rsivqa_folder(root: SourceRoot, spec: SourceSpec, name: str, folder: QaTextFolder,
                   quarantine: Quarantine) -> Iterator[RawSample]:
    """All txt files of one sub-folder, grouped per image and split (files sorted, lines in order)."""
    samples: dict[tuple[str, str], RawSample] = {}
    for file in root.listdir(name):
        if not file.lower().endswith(".txt"):
            continue
        path = f"{name}/{file}"
        official = folder.file_splits.get(file)
        for line in text_lines(root, path, quarantine):
            parsed = _rsivqa_line(line, path, quarantine)
            if parsed is None:
                continue
            image_key, qa = parsed
            filename = image_key if is_image(image_key) else image_key + folder.extension
            key = f"{name}/{stem(filename)}"
            split = official or hash_split(key, spec.options["fractions"])
            sample = samples.get((key, split))
            if sample is None:
                try:
                    image = root.member(filename, folder.images.format(split=split))
                except UnsafePathError as error:
                    quarantine.skip(path, "unsafe path", {"line": line, "problem": str(error)})
                    continue
                sample = samples[(key, split)] = RawSample(source=spec.name, split=split, key=key, image=image,
                                                           modality=spec.modality, meta={"subset": name})
            sample.qa.append(qa)
    yield from samples.values()


def read_rsivqa(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """RSIVQA (B4): `<sub-folder>/*.txt` with lines `<image key>:<question>?<answer>` (HRRSD and DOTA put a
    space after the colon and leave the extension off the key). Images are not redistributed: each
    sub-folder's QaTextFolder says where they lie. Key = `<sub-folder>/<image stem>`, meta subset = the
    sub-folder. qtype from the templates: scene, presence, count, location.

    options: folders (sub-folder name -> QaTextFolder; each sub-folder is required), fractions (the split
    of images in files without an official one, by hash_split on the key).
    """
    folders = sorted(spec.options["folders"].items())
    absent = {name: root.uri(name) for name, _ in folders if not root.isdir(name)}
    note_absent(root, quarantine, len(folders) - len(absent), absent, "folders")
    for name, folder in folders:
        if name not in absent:
            yield from _rsivqa_folder(root, spec, name, folder, quarantine)


# --------------------------------------------------------------------------------------------- CRSVQA


def crsvqa_type(question: str) -> str:
    """The MQVQA authors' 3-way question label from keywords of the question before its `?`: 'scene' or
    'theme' -> "scene" (their 0); 'many', 'object' or 'shape' -> "object" (their 2); else "other" (their 1)."""
    words = set(question.lower().split("?")[0].split())
    if words & {"scene", "theme"}:
        return "scene"
    return "object" if words & {"many", "object", "shape"} else "other"


def _crsvqa_pairs(lines: list[str | None], path: str, quarantine: Quarantine) -> list[QAPair]:
    """Lines alternate question / answer by position (as the authors' loader reads them); trailing blank
    lines are dropped, a last question without answer and pairs with a blank side are quarantined, and so is
    a pair with a line that does not decode (None: SourceRoot.read_lines)."""
    while lines and not (lines[-1] or "").strip() and lines[-1] is not None:
        lines.pop()
    if len(lines) % 2:
        quarantine.skip(path, "missing answer", lines.pop())
    pairs = []
    for raw_question, raw_answer in zip(lines[::2], lines[1::2], strict=True):
        if raw_question is None or raw_answer is None:
            quarantine.skip(path, UNDECODABLE_LINE, [raw_question, raw_answer])
            continue
        question, answer = clean_question(raw_question), " ".join(raw_answer.split())
        if not question or not answer:
            quarantine.skip(path, "missing question" if not question else "missing answer",
                            [raw_question, raw_answer])
            continue
        pairs.append(QAPair(question, answer, crsvqa_type(question)))
    return pairs


def read_crsvqa(root: SourceRoot, spec: SourceSpec, quarantine: Quarantine) -> Iterator[RawSample]:
    """CRSVQA (B5, layout inferred from the authors' loader): `<text_dir>/<name>.txt` (CRLF, alternating
    question / answer lines, `？` possible) per image `<image_dir>/<name><extension>`. No official split:
    hash_split on the image key with `fractions`. Key = file stem.

    options: text_dir (required), image_dir, extension, fractions.
    """
    options = spec.options
    text_dir = root.require(options["text_dir"], "folder")
    images = ImageFolder(root, options["image_dir"])
    for file in root.listdir(text_dir):
        if not file.lower().endswith(".txt"):
            continue
        path = f"{text_dir}/{file}"
        pairs = _crsvqa_pairs(root.read_lines(path), path, quarantine)
        if not pairs:  # 0 units: its pairs were reported one by one (or it had none)
            quarantine.skip(path, "no questions", units=0)
            continue
        key = stem(file)
        image = _guarded(images, key + options["extension"], path, len(pairs), quarantine)
        if image is not None:
            yield RawSample(source=spec.name, split=hash_split(key, options["fractions"]), key=key,
                            image=image, modality=spec.modality, qa=pairs)


# -------------------------------------------------------------------------------------------- sources

SOURCES: list[SourceSpec] = [
    # Table I's 4,511 are the training file's QA pairs: val and test are for evaluation.
    SourceSpec("floodnet", "FloodNet", ("vqa",), "optical", read_floodnet,
               options={"splits": (
                   SplitFiles("train", ("Questions/Training Question.json", "Questions/Training_Question.json"),
                              "Images/Train_Image"),
                   SplitFiles("val", ("Questions/Valid Question.json", "Questions/Valid_Question.json"),
                              "Images/Valid_Image"),
                   SplitFiles("test", ("Questions/Test_Question.json", "Questions/Test Question.json"),
                              "Images/Test_Image"),
               )},
               train_splits=("train",), paper_samples=4511),
    # Table I's 67,228 = train + val QA pairs of the release.
    SourceSpec("rsvqa_lr", "RSVQA-LR", ("vqa",), "optical", read_rsvqa,
               options={"prefix": "LR", "splits": ("train", "val", "test"), "image_dirs": ("Images_LR", "Images"),
                        "extension": ".tif"},
               paper_samples=67228, folder="RSVQA_LR"),
    SourceSpec("rsvqa_hr", "RSVQA-HR", ("vqa",), "optical", read_rsvqa,
               options={"prefix": "USGS", "splits": ("train", "val", "test", "test_phili"),
                        "image_dirs": ("Data", "Images"), "extension": ".tif"},
               train_splits=(), evaluation_only=True, folder="RSVQA_HR"),
    # No published split except DOTA's train/val files. Other images are hash-split 60/40 into train/test:
    # with the DOTA train file that gives about 69.5k training pairs of the 111,693, close to Table I's 68,625.
    # DOTA val (DOTA's own evaluation split) stays "val" and out of training.
    SourceSpec("rsivqa", "RSIVQA", ("vqa",), "optical", read_rsivqa,
               options={"folders": {
                   "UCM": QaTextFolder("../UCM_captions/imgs"),
                   "Sydney": QaTextFolder("../Sydney_captions/imgs"),
                   "AID": QaTextFolder("../RSICD/RSICD_images"),
                   "HRRSD": QaTextFolder("../TGRS-HRRSD-Dataset/OPT2017/JPEGImages", ".jpg"),
                   "DOTA": QaTextFolder("../DOTA/{split}/images", ".png",
                                        {"dota_train_vqa2.txt": "train", "dota_val_vqa2.txt": "val"}),
               }, "fractions": {"train": 0.6, "test": 0.4}},
               train_splits=("train",), paper_samples=68625),
    # No published split; the paper tests on 10 % of the QA pairs: 10 % of the images (hash of the key) here,
    # so an image's questions stay together.
    SourceSpec("crsvqa", "CRSVQA", ("vqa",), "optical", read_crsvqa,
               options={"text_dir": "data/text", "image_dir": "data/image", "extension": ".png",
                        "fractions": {"train": 0.9, "test": 0.1}},
               train_splits=("train",), paper_samples=900),
]
