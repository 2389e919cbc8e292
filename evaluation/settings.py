"""What a run of the benchmarks may change (params.yaml `evaluation.protocol`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvaluationSettings:
    batch_size: int = 32  # questions generated at once
    max_new_tokens: int = 48  # answer length limit, in tokens

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
