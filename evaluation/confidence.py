"""Confidence of each predicted box: detection AP ranks boxes by it, and the model writes boxes without one.

The source is pluggable (`BoxScorer`); `choose_scorer` picks, in this order:

1. `ClipScorer` when a CLIP model folder is configured: the cosine similarity between the CLIP embedding
   of the box's crop (its bounding rectangle on the padded square) and that of the class prompt
   ("a satellite image of a plane."), as the paper ranks boxes with RemoteCLIP. The folder is a
   transformers CLIP folder (`CLIPModel` + `CLIPProcessor`); RemoteCLIP's open_clip checkpoint has to be
   converted to that layout first.
2. `LogProbScorer` when the predictions carry `box_scores`: `earthgpt predict` stores, for each box of a
   detection answer, the generating model's mean token log-probability of the box's text.
3. `EqualScorer` otherwise: every box 1.0, so AP follows the stable order of equal scores: images in
   REF order, boxes in the order the answer writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from evaluation.images import box_pixels, load_square_rgb
from evaluation.predictions import EvaluationInputError, Prediction

CLIP_PROMPT = "a satellite image of a {}."


@dataclass(frozen=True)
class BoxQuery:
    """The boxes one answer gave for one class of one image."""

    record: Mapping[str, Any]  # the REF record (image, width, height, target)
    label: str  # the class asked for, e.g. "plane"
    boxes: Sequence[tuple[float, ...]]  # parsed, normalised on the padded square
    prediction: Prediction


class BoxScorer(Protocol):
    name: str  # how results describe the confidence source

    def __call__(self, query: BoxQuery) -> list[float]:
        """One confidence per box of the query, higher is more confident."""
        ...


class EqualScorer:
    name = "equal scores (ties ranked in REF order, then in the order the answer writes the boxes)"

    def __call__(self, query: BoxQuery) -> list[float]:
        return [1.0] * len(query.boxes)


class LogProbScorer:
    name = "mean token log-probability of each box under the generating model (box_scores of the predictions)"

    def __call__(self, query: BoxQuery) -> list[float]:
        scores = query.prediction.box_scores
        if scores is None:
            raise EvaluationInputError(f"prediction {query.prediction.id!r} has no box_scores (others have)")
        if len(scores) != len(query.boxes):
            raise EvaluationInputError(f"prediction {query.prediction.id!r}: {len(scores)} box_scores for "
                                       f"{len(query.boxes)} boxes parsed from its answer")
        return list(scores)


class ClipScorer:
    """CLIP similarity of box crops with the class prompt (transformers CLIP folder, local)."""

    def __init__(self, model_dir: str, image_root: str, prompt: str = CLIP_PROMPT, device: str = "cpu"):
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self._torch = torch
        self.model = CLIPModel.from_pretrained(model_dir).to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(model_dir)
        self.image_root, self.prompt, self.device = image_root, prompt, device
        self.name = f"CLIP similarity of the box crop with {prompt.format('<class>')!r} ({model_dir})"
        self._text: dict[str, Any] = {}

    def _text_embedding(self, label: str):
        if label not in self._text:
            tokens = self.processor(text=[self.prompt.format(label)], return_tensors="pt", padding=True)
            with self._torch.no_grad():
                embedding = _features(self.model.get_text_features(**tokens.to(self.device)))
            self._text[label] = embedding / embedding.norm(dim=-1, keepdim=True)
        return self._text[label]

    def __call__(self, query: BoxQuery) -> list[float]:
        if not query.boxes:
            return []
        from PIL import Image

        square = load_square_rgb(self.image_root, query.record["image"])
        crops = []
        for box in query.boxes:
            left, top, right, bottom = box_pixels(box, square.shape[0])
            crops.append(Image.fromarray(square[top:bottom, left:right]))
        pixels = self.processor(images=crops, return_tensors="pt")["pixel_values"].to(self.device)
        with self._torch.no_grad():
            embeddings = _features(self.model.get_image_features(pixel_values=pixels))
        embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
        return (embeddings @ self._text_embedding(query.label).T)[:, 0].tolist()


def _features(output):
    """get_*_features returns a tensor, or in some transformers versions an output with pooler_output."""
    return output if hasattr(output, "norm") else output.pooler_output


def choose_scorer(predictions: Sequence[Prediction], clip_model: str | None = None,
                  image_root: str | None = None) -> BoxScorer:
    """CLIP when a folder is given (needs the image root), else log-probabilities when the predictions
    carry box_scores, else equal scores (module docstring)."""
    if clip_model:
        if image_root is None:
            raise EvaluationInputError("CLIP confidence needs the image root of the references")
        return ClipScorer(clip_model, image_root)
    if any(p.box_scores is not None for p in predictions):
        return LogProbScorer()
    return EqualScorer()
