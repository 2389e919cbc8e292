"""Image captioning (paper Table IV) with the COCO caption toolkit's own scorers (pycocoevalcap 1.2).

The scorers are called one by one: `COCOEvalCap.evaluate` always builds SPICE, whose Stanford CoreNLP
models are downloaded at first use, so it cannot run offline. SPICE is reported as unavailable, never
replaced by another number. Java runs the PTB tokenizer and METEOR 1.5 (corpus statistic); its locale is
forced to English because METEOR's scores are parsed from its text output.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

METRICS = ("BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR", "ROUGE_L", "CIDEr")
UNAVAILABLE = ("SPICE",)  # needs CoreNLP models downloaded at first use


@contextlib.contextmanager
def _english_jvm() -> Iterator[None]:
    key, before = "JAVA_TOOL_OPTIONS", os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ[key] = f"{before or ''} -Duser.language=en -Duser.country=US".strip()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def score_captions(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   meteor: bool = True) -> dict[str, float]:
    """predictions: image id -> one caption; references: image id -> its reference captions (same ids).

    Returns BLEU1-4, METEOR (unless meteor=False), ROUGE_L and CIDEr (CIDEr-D), each x100 as in the paper.
    CIDEr's idf comes from the references given, so always score a whole split.
    """
    if set(predictions) != set(references):
        raise ValueError("predictions and references must cover the same image ids")
    if not predictions:
        raise ValueError("no captions to score")
    with _english_jvm():
        tokenizer = PTBTokenizer()
        gts = tokenizer.tokenize({i: [{"caption": c} for c in refs] for i, refs in references.items()})
        res = tokenizer.tokenize({i: [{"caption": c}] for i, c in predictions.items()})
        scores: dict[str, float] = {}
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        scores |= {f"BLEU{n + 1}": 100.0 * b for n, b in enumerate(bleu)}
        if meteor:
            scores["METEOR"] = 100.0 * float(Meteor().compute_score(gts, res)[0])
        scores["ROUGE_L"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
        scores["CIDEr"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    return scores


def constant_caption(train_references: Sequence[Sequence[str]]) -> str:
    """The baseline caption: the most frequent training caption (ties: the alphabetically first)."""
    counts = Counter(c.strip() for refs in train_references for c in refs)
    if not counts:
        raise ValueError("no training captions")
    top = max(counts.values())
    return min(c for c, n in counts.items() if n == top)
