"""Pictures people look at, as PNG bytes (matplotlib's Agg canvas through `Figure`, no pyplot state; PIL
for images): a confusion matrix per classification benchmark, precision-recall curves per class for
detection, galleries of images with true (green) and predicted (red) boxes for grounding and detection
(HBB and OBB), per-question-type accuracy bars for VQA. `benchmark_pictures` makes a benchmark's set.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from PIL import Image

from evaluation.benchmarks import (
    BENCHMARKS,
    DETECTION,
    BenchmarkResult,
    after_count_id,
    benchmark_records,
    questions,
)
from evaluation.detection import RECALL_POINTS
from evaluation.images import load_square_rgb
from evaluation.parsing import parse_boxes
from evaluation.predictions import Prediction

TRUE_COLOUR, PREDICTED_COLOUR = "#00c853", "#ff1744"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def confusion_matrix_png(classes: Sequence[str], matrix: Sequence[Sequence[int]], title: str = "") -> bytes:
    """Rows: true class; columns: answered class, the last one "no class" (answers naming none). Colour:
    share of the row; numbers printed when there are few classes."""
    counts = np.asarray(matrix, dtype=float).reshape(len(classes), len(classes) + 1)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.32 * len(classes) + 2.5)
    figure = Figure(figsize=(size + 1, size))
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(classes) + 1), [*classes, "no class"], rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("answer")
    ax.set_ylabel("truth")
    if len(classes) <= 15:
        for (r, c), n in np.ndenumerate(counts):
            if n:
                ax.text(c, r, int(n), ha="center", va="center", fontsize=7,
                        color="white" if shares[r, c] > 0.5 else "black")
    figure.colorbar(image, ax=ax, fraction=0.04, label="share of the true class")
    ax.set_title(title or "confusion matrix")
    return _png(figure)


def pr_curves_png(curves: Mapping[str, Sequence[float]], title: str = "") -> bytes:
    """curves: class -> precision at COCO's 101 recall points (a result's notes["pr_curves"][metric])."""
    figure = Figure(figsize=(5.5, 4.5))
    ax = figure.add_subplot()
    for label, precision in sorted(curves.items()):
        ax.plot(RECALL_POINTS, precision, label=f"{label} (AP {100 * float(np.mean(precision)):.1f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title or "precision-recall")
    return _png(figure)


def vqa_bars_png(per_type: Mapping[str, float], baseline: Mapping[str, float] | None = None,
                 paper: Mapping[str, float] | None = None, title: str = "") -> bytes:
    """Accuracy per question type (and OA): ours, the image-blind baseline and the paper, side by side."""
    types = list(per_type)
    series = [("ours", per_type)] + [(n, s) for n, s in (("image-blind baseline", baseline), ("paper", paper)) if s]
    figure = Figure(figsize=(max(4.0, 1.1 * len(types) + 2), 4))
    ax = figure.add_subplot()
    width = 0.8 / len(series)
    x = np.arange(len(types))
    for i, (name, values) in enumerate(series):
        heights = [values.get(t, np.nan) for t in types]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, types, rotation=30, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title(title or "accuracy per question type")
    return _png(figure)


@dataclass(frozen=True)
class GalleryPanel:
    image: np.ndarray  # (side, side, 3) uint8, the padded square the boxes are normalised on
    truths: Sequence[tuple[float, ...]]  # normalised HBB (4) or OBB (8 numbers)
    predictions: Sequence[tuple[float, ...]]
    caption: str = ""


def _outline(box: Sequence[float], side: int) -> np.ndarray:
    if len(box) == 4:
        x1, y1, x2, y2 = box
        box = (x1, y1, x2, y1, x2, y2, x1, y2)
    return np.asarray(box, dtype=float).reshape(4, 2) * side


def box_gallery_png(panels: Sequence[GalleryPanel], title: str = "", columns: int = 3, thumb: int = 256) -> bytes:
    """Images with true boxes (green) and predicted boxes (red, dashed), captioned; HBB and OBB alike."""
    rows = max(1, -(-len(panels) // columns))
    figure = Figure(figsize=(3.2 * columns, 3.4 * rows))
    for i in range(rows * columns):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.axis("off")
        if i >= len(panels):
            continue
        panel = panels[i]
        image = np.asarray(Image.fromarray(panel.image).resize((thumb, thumb), Image.BILINEAR))
        ax.imshow(image)
        for boxes, colour, style in ((panel.truths, TRUE_COLOUR, "-"), (panel.predictions, PREDICTED_COLOUR, "--")):
            for box in boxes:
                ax.add_patch(Polygon(_outline(box, thumb), closed=True, fill=False, edgecolor=colour, linewidth=1.5,
                                     linestyle=style))
        ax.set_title(panel.caption[:60], fontsize=7)
    figure.suptitle((title + "  " if title else "") + "green: truth, red dashed: predicted", fontsize=9)
    return _png(figure)


def gallery_panels(benchmark_name: str, records: Sequence[Mapping[str, Any]], predictions: Mapping[str, Prediction],
                   image_root: str, count: int = 6) -> list[GalleryPanel]:
    """The first `count` grounding questions or detection images of a benchmark with their boxes."""
    benchmark = BENCHMARKS[benchmark_name]
    records = benchmark_records(benchmark, records)
    panels = []
    if benchmark.task == "grounding":
        by_id = {r["id"]: r for r in records}
        for question in questions(benchmark, records)[:count]:
            record_id, _, n = question.id.rpartition("#")
            referral = by_id[record_id]["target"]["referrals"][int(n)]
            parsed = parse_boxes(predictions[question.id].answer, oriented=False)
            panels.append(GalleryPanel(load_square_rgb(image_root, question.image), [tuple(referral["box_norm"])],
                                       (parsed.value or [])[:1], referral["text"]))
    elif benchmark.task in DETECTION:
        ctd = benchmark.prompting == "count_then_detect"
        for record in records[:count]:
            answer = predictions[after_count_id(record["id"]) if ctd else f"{record['id']}#0"].answer
            boxes = parse_boxes(answer, benchmark.oriented).value or []
            truths = [tuple(b) for b in record["target"]["boxes_norm"]]
            panels.append(GalleryPanel(load_square_rgb(image_root, record["image"]), truths, boxes,
                                       f"{record['image']}: {len(truths)} true, {len(boxes)} predicted"))
    return panels


def benchmark_pictures(result: BenchmarkResult, records: Sequence[Mapping[str, Any]] | None = None,
                       predictions: Mapping[str, Prediction] | None = None, image_root: str | None = None,
                       gallery: int = 6) -> dict[str, bytes]:
    """File name -> PNG for one benchmark's result: confusion matrix (classification), PR curves per
    threshold (detection), per-type bars (VQA), and, given records, predictions and the image root, a
    gallery (grounding, detection)."""
    benchmark = BENCHMARKS[result.benchmark]
    name, pictures = benchmark.name, {}
    if benchmark.task == "classification" and "confusion_matrix" in result.notes:
        matrix = result.notes["confusion_matrix"]
        pictures[f"{name}_confusion_matrix.png"] = confusion_matrix_png(matrix["classes"], matrix["matrix"],
                                                                        f"{name} ({result.samples} images)")
    if benchmark.task == "vqa":
        types = [t for t in result.metrics if not t.endswith((" balanced", "_strict"))]
        pictures[f"{name}_question_types.png"] = vqa_bars_png({t: result.metrics[t] for t in types}, result.baseline,
                                                              benchmark.paper, f"{name} ({result.samples} questions)")
    if benchmark.task in DETECTION:
        for metric, curves in result.notes.get("pr_curves", {}).items():
            pictures[f"{name}_pr_{metric.replace('@', '')}.png"] = pr_curves_png(
                curves, f"{name} {metric}: {result.metrics.get(metric, 0.0):.2f}")
    if (benchmark.task == "grounding" or benchmark.task in DETECTION) and records is not None \
            and predictions is not None and image_root is not None:
        pictures[f"{name}_gallery.png"] = box_gallery_png(
            gallery_panels(name, records, predictions, image_root, gallery), name)
    return pictures
