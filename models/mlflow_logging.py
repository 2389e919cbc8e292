"""Log a saved EarthGPT folder to MLflow as a pyfunc model (and optionally register it)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

PYFUNC_FILE = Path(__file__).with_name("mlflow_pyfunc.py")
REPO_ROOT = Path(__file__).resolve().parents[1]
_EXAMPLE = pd.DataFrame({"image": ["iVBORw0KGgo="], "question": ["What is the category of this image?"]})


def log_earthgpt_model(model_dir: str | Path, name: str = "model", registered_model_name: str | None = None):
    """Inside an active run: log `model_dir` (see models/io.py) with our code, so serving needs only this env.

    Returns mlflow's ModelInfo (model_uri, registered_model_version, ...)."""
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(PYFUNC_FILE),
        artifacts={"model": str(model_dir)},
        code_paths=[str(REPO_ROOT / "models"), str(REPO_ROOT / "mmrs")],
        signature=infer_signature(_EXAMPLE, ["an answer"], params={"max_new_tokens": 64}),
        registered_model_name=registered_model_name,
        pip_requirements=[],  # served with --env-manager local from the project's environment
    )


def promote(registered_model_name: str, version: int | str, alias: str = "champion", passed: bool = True) -> bool:
    """Point `alias` at `version` only when the evaluation checks `passed`; returns whether it did."""
    if not passed:
        return False
    mlflow.MlflowClient().set_registered_model_alias(registered_model_name, alias, str(version))
    return True
