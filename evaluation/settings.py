"""What a run of the benchmarks may change (params.yaml `evaluation.protocol`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvaluationSettings:
    batch_size: int = 32  # questions generated at once
    max_new_tokens: int | None = None  # answer length limit in tokens; None: per task (evaluation.predict)
    clip_model: str | None = None  # a CLIP folder (transformers format): detection confidence by CLIP similarity
    max_parse_failure_percent: float = 20.0  # more unusable answers than this fails the benchmark's check
    regression_points: float = 5.0  # a headline drop of more than this against the last run warns
    gallery: int = 6  # images drawn with their boxes per grounding / detection benchmark

    def __post_init__(self) -> None:
        if self.batch_size < 1 or (self.max_new_tokens is not None and self.max_new_tokens < 1):
            raise ValueError("batch_size and max_new_tokens must be >= 1")
