"""Visual question answering datasets: RSVQA-LR / RSVQA-HR (JSON trio, spec B2/B3) and CRSVQA (txt, B5).

Questions and answers are `truth.vqa_pairs(scene, sample.rng("vqa"), types, per_type)`, so every
answer is true of the pixels.

RSVQA: per split `<prefix>_split_<split>_{images,questions,answers}.json`, each one object holding one
array (`images`, `questions`, `answers`) of the records of that split only; ids are global running
numbers (answer id = question id), so positions in a split file never equal ids. Quirks: before the
sample of index GAP_INDEX one image id and one question id are skipped (a gap); before the sample of
index INACTIVE_INDEX an extra image record with `active: false`, no questions and no image file is
written, and that sample carries one extra true question with `active: false` (its answer too).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.truth import QA, vqa_pairs
from mmrs.synthetic.writers.common import JsonArrayWriter, save_image, write_json_document, write_lines

GAP_INDEX = 6
INACTIVE_INDEX = 2
DATE_ADDED = 1_570_000_000  # fixed `date_added` base (epoch seconds) + record id: no real timestamps
PEOPLE_ID = 0  # questions of the automatic generator


@dataclass(frozen=True)
class RsvqaLayout:
    """What differs between RSVQA-LR and RSVQA-HR."""

    prefix: str  # JSON file prefix: LR | USGS
    image_dir: str  # folder of `<image id>.tif`
    sensor: str  # `sensor` field of image records
    types: tuple[str, ...]
    per_type: int  # questions per type and image


LR_LAYOUT = RsvqaLayout("LR", "Images_LR", "Sentinel-2", ("presence", "comp", "count", "rural_urban"), 12)
HR_LAYOUT = RsvqaLayout("USGS", "Data", "USGS HRO", ("presence", "comp", "count", "area"), 12)


class _SplitTrio:
    """Spools of the three arrays of one split."""

    def __init__(self) -> None:
        self.images, self.questions, self.answers = JsonArrayWriter(), JsonArrayWriter(), JsonArrayWriter()

    def add_qa(self, qid: int, img_id: int, qa: QA, active: bool) -> None:
        """A question record and its answer record (same id)."""
        self.questions.append({"id": qid, "date_added": DATE_ADDED + qid, "img_id": img_id,
                               "people_id": PEOPLE_ID, "type": qa.qtype, "question": qa.question,
                               "answers_ids": [qid], "active": active})
        self.answers.append({"id": qid, "date_added": DATE_ADDED + qid, "question_id": qid,
                             "people_id": PEOPLE_ID, "answer": qa.answer, "active": active})

    def write(self, root: Path, prefix: str, split: str) -> None:
        for key, spool in (("questions", self.questions), ("answers", self.answers), ("images", self.images)):
            write_json_document(root / f"{prefix}_split_{split}_{key}.json", {}, {key: spool})


def _image_record(layout: RsvqaLayout, img_id: int, sample: GeneratedImage | None, questions_ids: list[int],
                  active: bool) -> dict[str, Any]:
    """Full RSVQA image record. Map coordinates (metres) tile a 16-column grid by sample index; an
    inactive placeholder (no sample) gets zero coordinates and resolution."""
    gsd, index = (sample.gsd, sample.index) if sample else (0.0, 0)
    size = sample.width * gsd if sample else 0.0
    return {"id": img_id, "date_added": DATE_ADDED + img_id, "original_name": f"tile_{img_id:05d}.tif",
            "sensor": layout.sensor, "upperleft_map-x": round(100_000 + index % 16 * size, 3),
            "upperleft_map-y": round(400_000 - index // 16 * size, 3), "res-x": round(gsd, 4),
            "res-y": round(gsd, 4), "people_id": PEOPLE_ID, "type": "RGB", "questions_ids": questions_ids,
            "active": active}


def _add_sample(trio: _SplitTrio, layout: RsvqaLayout, sample: GeneratedImage, img_id: int,
                first_qid: int) -> tuple[int, int]:
    """Records of one image: its true QA pairs (active) and, at INACTIVE_INDEX, one more true pair
    marked inactive. Question ids run from `first_qid`; returns (active pairs, question ids used)."""
    pairs = vqa_pairs(sample.scene, sample.rng("vqa"), layout.types, layout.per_type)
    inactive = vqa_pairs(sample.scene, sample.rng("quirks"), layout.types[:1]) \
        if sample.index == INACTIVE_INDEX else []
    flagged = [(qa, True) for qa in pairs] + [(qa, False) for qa in inactive]
    for qid, (qa, active) in enumerate(flagged, start=first_qid):
        trio.add_qa(qid, img_id, qa, active)
    qids = list(range(first_qid, first_qid + len(flagged)))
    trio.images.append(_image_record(layout, img_id, sample, qids, active=True))
    return len(pairs), len(qids)


def _write_rsvqa(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path,
                 layout: RsvqaLayout) -> WriteReport:
    """`<image_dir>/<id>.tif` (RGB TIFF) and the JSON trio of every split in `spec.splits`."""
    report = WriteReport(spec.name, root)
    trios = {split: _SplitTrio() for split, _ in spec.splits}
    next_img, next_q = 0, 0
    for sample in samples:
        trio = trios[sample.split]
        if sample.index == GAP_INDEX:
            next_img, next_q = next_img + 1, next_q + 1
        if sample.index == INACTIVE_INDEX:
            trio.images.append(_image_record(layout, next_img, None, [], active=False))
            next_img += 1
        n_pairs, n_questions = _add_sample(trio, layout, sample, next_img, next_q)
        save_image(root / layout.image_dir / f"{next_img}.tif", sample.pixels())
        report.add_image(sample.split, n_pairs)
        next_img, next_q = next_img + 1, next_q + n_questions
    for split, trio in trios.items():
        trio.write(root, layout.prefix, split)
    return report


def write_rsvqa_lr(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """RSVQA-LR (B2): `Images_LR/<id>.tif` + `LR_split_{train,val,test}_*.json`; types presence, comp,
    count (raw integer strings), rural_urban."""
    return _write_rsvqa(spec, samples, root, LR_LAYOUT)


def write_rsvqa_hr(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """RSVQA-HR (B3): `Data/<id>.tif` + `USGS_split_{train,val,test,test_phili}_*.json`; types presence,
    comp, count, area (`"<m2>m2"`)."""
    return _write_rsvqa(spec, samples, root, HR_LAYOUT)


# ------------------------------------------------------------------------------------------- CRSVQA

CRSVQA_TYPES = ("scene", "count_left", "presence")
FULL_WIDTH_QUESTION_MARK = "\uff1f"


def crsvqa_lines(sample: GeneratedImage) -> list[str]:
    """Alternating question / answer lines; on samples with index % 5 == 1 questions end in `？`."""
    lines = []
    for qa in vqa_pairs(sample.scene, sample.rng("vqa"), CRSVQA_TYPES):
        question = qa.question.replace("?", FULL_WIDTH_QUESTION_MARK) if sample.index % 5 == 1 else qa.question
        lines += [question, qa.answer]
    return lines


def write_crsvqa(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """CRSVQA (B5, layout UNCERTAIN): `data/image/<name>.png` and `data/text/<name>.txt` (UTF-8, `\\r\\n`
    line ends), name = 5-digit 1-based sample number; no split."""
    report = WriteReport(spec.name, root)
    for sample in samples:
        name = f"{sample.index + 1:05d}"
        save_image(root / "data" / "image" / f"{name}.png", sample.pixels())
        lines = crsvqa_lines(sample)
        write_lines(root / "data" / "text" / f"{name}.txt", lines, newline="\r\n")
        report.add_image(sample.split, len(lines) // 2)
    return report
