"""The evaluation report: the paper's tables with ours, rendered by `evaluation.tables` (one renderer).
`render_report` and `benchmark_table` keep the names `assets/evaluation.py` imports."""

from __future__ import annotations

from evaluation.tables import benchmark_table
from evaluation.tables import render_tables as render_report

__all__ = ["benchmark_table", "render_report"]
