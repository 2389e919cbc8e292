"""MLflow: where runs are tracked, the experiment, and the EarthGPT model logged, registered and promoted.

The saved model folder (models/io.py) is logged as a pyfunc "model from code" (models/mlflow_pyfunc.py), so
`mlflow models serve` answers {"image": base64 file, "question": ...} requests with this project's code.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

PYFUNC_FILE = Path(__file__).with_name("mlflow_pyfunc.py")
REPO_ROOT = Path(__file__).resolve().parents[1]
_EXAMPLE = pd.DataFrame({"image": ["iVBORw0KGgo="], "question": ["What is the category of this image?"]})
# the MLflow UI's view of an experiment: traditional model training (runs, metrics), not GenAI traces
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


@dataclass(frozen=True)
class TrackingSettings:
    """Where MLflow tracks runs (params.yaml `mlflow`). uri: sqlite:///path, http(s)://server, databricks...;
    artifacts: the artifact root of a new experiment (None: the server's default); ui: the address of the MLflow
    UI people open for a tracking store that is not a server, for links (a tracking server is its own UI)."""

    uri: str = "sqlite:///.state/mlflow/mlflow.db"
    artifacts: str | None = None
    experiment: str = "earthgpt"
    registered_model: str = "earthgpt"
    ui: str | None = None

    def run_url(self, run_id: str, path: str | None = None) -> str | None:
        """A link to a run (or one of its artifacts) in the MLflow UI, when there is a UI address."""
        base = self.uri if self.uri.startswith(("http://", "https://")) else self.ui
        if base is None:
            return None
        mlflow.set_tracking_uri(self.uri)
        experiment = mlflow.get_run(run_id).info.experiment_id
        url = f"{base.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
        return f"{url}/artifacts/{path}" if path else url


def describe_model_version(tracking: TrackingSettings, version: int | str, description: str,
                           tags: dict[str, str]) -> None:
    """A registered version's description and tags (what it is, what it was trained on, how it scores)."""
    client = mlflow.MlflowClient(tracking.uri)
    client.update_model_version(tracking.registered_model, str(version), description=description)
    for key, value in tags.items():
        client.set_model_version_tag(tracking.registered_model, str(version), key, value)


def experiment_id(tracking: TrackingSettings) -> str:
    """The experiment's id, created on first use as a model-training experiment."""
    mlflow.set_tracking_uri(tracking.uri)
    existing = mlflow.get_experiment_by_name(tracking.experiment)
    if existing is not None:
        return existing.experiment_id
    return mlflow.create_experiment(tracking.experiment, artifact_location=tracking.artifacts,
                                    tags=dict([EXPERIMENT_KIND]))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=REPO_ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# What serving the logged model imports (tests/models/test_mlflow_pyfunc.py checks that these, with what they
# require, cover every module it loads); pinned to the project's versions, so any environment manager can
# rebuild the environment.
SERVING_PACKAGES = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "numpy", "pillow", "tifffile",
                    "fsspec", "s3fs", "imagesize", "defusedxml", "pyyaml", "orjson")


def pinned_requirements(packages: tuple[str, ...] = SERVING_PACKAGES) -> list[str]:
    """`name==version` of each package as pyproject.toml pins it (the versions this code is tested with)."""
    import tomllib

    pins = {}
    for requirement in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        pins[name.strip().lower()] = version.strip()
    missing = [p for p in packages if p not in pins]
    if missing:
        raise ValueError(f"pyproject.toml pins no version of {missing}")
    return [f"{p}=={pins[p]}" for p in packages]


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
        pip_requirements=pinned_requirements(),
    )


def promote(registered_model_name: str, version: int | str, alias: str = "champion", passed: bool = True) -> bool:
    """Point `alias` at `version` only when the evaluation checks `passed`; returns whether it did."""
    if not passed:
        return False
    mlflow.MlflowClient().set_registered_model_alias(registered_model_name, alias, str(version))
    return True
