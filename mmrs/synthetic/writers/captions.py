"""Image-captioning datasets: RSICD (Karpathy JSON, spec A0/A1) and NWPU-Captions (class-keyed JSON, A5).

Captions are `truth.captions(scene)` (five sentences true of the pixels). Quirks are placed by sample
index (period 10) or drawn from `sample.rng("quirks")`; none removes a true caption:

- RSICD: raws written as "... ." (space before the final period; all sentences of index % 10 == 0,
  about half of the others), some with surrounding spaces; index % 10 == 1 carries an extra copy of one
  caption (six sentences, five distinct); index % 10 == 2 has one empty `raw` whose `tokens` hold the
  caption; index % 10 == 4 has the unknown key `cocoid`; index % 10 == 5 has a purely numeric file name
  `<index + 1 as 5 digits>.jpg` instead of `<scene>_<n>.jpg`.
- NWPU-Captions: about half of the raws are written as "... .".
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mmrs.synthetic.samples import GeneratedImage, SyntheticDataset, WriteReport
from mmrs.synthetic.truth import captions
from mmrs.synthetic.writers.common import JsonArrayWriter, save_image, write_json_document

QUIRK_PERIOD = 10
CAPTIONS_PER_IMAGE = 5


def tokenize(caption: str) -> list[str]:
    """Karpathy tokens: lower-cased alphanumeric words, punctuation dropped."""
    return re.findall(r"[a-z0-9]+", caption.lower())


def spaced_period(caption: str) -> str:
    """'Many planes.' -> 'Many planes .' (the frequent RSICD/NWPU spelling)."""
    return caption[:-1].rstrip() + " ." if caption.endswith(".") else caption


def _styled_raw(caption: str, rng: np.random.Generator, force_spaced: bool) -> str:
    """The caption as a raw string: space before the final period (always when forced, else p=0.5),
    and with p=0.1 a leading and a trailing space."""
    raw = spaced_period(caption) if force_spaced or rng.random() < 0.5 else caption
    return f" {raw} " if rng.random() < 0.1 else raw


# --------------------------------------------------------------------------------------------- RSICD


def _rsicd_filename(sample: GeneratedImage, class_name: str, numbers: Counter[str]) -> str:
    """`<scene>_<n>.jpg` (n per scene from 1), or the numeric `<index + 1:05d>.jpg` for quirk indices."""
    if sample.index % QUIRK_PERIOD == 5:
        return f"{sample.index + 1:05d}.jpg"
    numbers[class_name] += 1
    return f"{class_name}_{numbers[class_name]}.jpg"


def _rsicd_sentences(sample: GeneratedImage, imgid: int, first_sentid: int) -> list[dict[str, Any]]:
    """Karpathy SENT records for one image, with the per-index quirks of the module docstring."""
    rng = sample.rng("quirks")
    texts = captions(sample.scene)
    quirk = sample.index % QUIRK_PERIOD
    if quirk == 1:
        texts.append(texts[int(rng.integers(len(texts)))])
    empty = int(rng.integers(len(texts))) if quirk == 2 else -1
    return [
        {"tokens": tokenize(text), "raw": "" if k == empty else _styled_raw(text, rng, quirk == 0),
         "imgid": imgid, "sentid": first_sentid + k}
        for k, text in enumerate(texts)
    ]


def write_rsicd(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """RSICD (A1): `RSICD_images/<name>.jpg` (224x224 RGB) and `dataset_rsicd.json` =
    `{"images": [{filename, imgid, split, sentids, sentences: [{tokens, raw, imgid, sentid}]}],
    "dataset": "rsicd"}` with imgid = running image index and sentid a global running index."""
    report = WriteReport(spec.name, root)
    images = JsonArrayWriter()
    numbers: Counter[str] = Counter()
    next_sentid = 0
    for imgid, sample in enumerate(samples):
        filename = _rsicd_filename(sample, spec.classes[sample.scene_class], numbers)
        save_image(root / "RSICD_images" / filename, sample.pixels())
        sentences = _rsicd_sentences(sample, imgid, next_sentid)
        record: dict[str, Any] = {"filename": filename, "imgid": imgid, "split": sample.split,
                                  "sentids": [s["sentid"] for s in sentences], "sentences": sentences}
        if sample.index % QUIRK_PERIOD == 4:
            record["cocoid"] = imgid
        images.append(record)
        next_sentid += len(sentences)
        report.add_image(sample.split, len(sentences))
    write_json_document(root / "dataset_rsicd.json", {}, {"images": images}, {"dataset": "rsicd"})
    return report


# ------------------------------------------------------------------------------------- NWPU-Captions


@lru_cache(maxsize=8)
def _block_order(name: str, block: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.random.default_rng(zlib.crc32(name.encode())).permutation(block))


def nwpu_imgid(spec: SyntheticDataset, index: int) -> int:
    """A fixed permutation of the indices within each run of `spec.images` samples (the sample count is
    always a multiple of it), so imgids are dense but not ordered by class or index."""
    block = spec.images
    return index // block * block + _block_order(spec.name, block)[index % block]


def _nwpu_record(sample: GeneratedImage, filename: str, imgid: int) -> dict[str, Any]:
    """`{filename, imgid, split, raw, sentids, raw_1, sentids_1, ..., raw_4, sentids_4}` with
    sentids_k = 5 * imgid + k (scalars)."""
    rng = sample.rng("quirks")
    record: dict[str, Any] = {"filename": filename, "imgid": imgid, "split": sample.split}
    for k, text in enumerate(captions(sample.scene)):
        suffix = f"_{k}" if k else ""
        record[f"raw{suffix}"] = _styled_raw(text, rng, force_spaced=False)
        record[f"sentids{suffix}"] = CAPTIONS_PER_IMAGE * imgid + k
    return record


def write_nwpu_captions(spec: SyntheticDataset, samples: Iterator[GeneratedImage], root: Path) -> WriteReport:
    """NWPU-Captions (A5): `NWPU_images/<class>/<class>_<NNN>.jpg` (256x256 RGB, NNN per class from 001)
    and `dataset_nwpu.json` = `{"<class>": [record, ...], ...}` with class keys sorted; each class array
    is streamed through its own spool."""
    report = WriteReport(spec.name, root)
    per_class: dict[str, JsonArrayWriter] = {}
    for sample in samples:
        class_name = spec.classes[sample.scene_class]
        spool = per_class.setdefault(class_name, JsonArrayWriter())
        filename = f"{class_name}_{spool.count + 1:03d}.jpg"
        save_image(root / "NWPU_images" / class_name / filename, sample.pixels())
        spool.append(_nwpu_record(sample, filename, nwpu_imgid(spec, sample.index)))
        report.add_image(sample.split, CAPTIONS_PER_IMAGE)
    write_json_document(root / "dataset_nwpu.json", {}, dict(sorted(per_class.items())))
    return report
