"""The design rule: evaluation needs only mmrs, and the model code only in evaluation/predict.py; nothing
under evaluation imports Dagster or the pipeline. Scoring therefore runs without torch."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "evaluation"


def test_evaluation_imports_only_mmrs_and_the_model_code_only_in_predict():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                top = name.split(".")[0]
                assert top not in ("dagster", "assets", "pipelines"), (path.name, name)
                assert top != "models" or path.name == "predict.py", (path.name, name)


def test_scoring_tables_and_pictures_load_without_torch():
    code = ("import sys, evaluation.scoring, evaluation.tables, evaluation.pictures, evaluation.store; "
            "print(sorted(m for m in ('torch', 'models', 'dagster') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
