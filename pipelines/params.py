"""Read `params.yaml`: the active profile's parameters, with paths resolved against the repo root."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO_ROOT / "params.yaml"


@cache
def load_params(path: Path = PARAMS_FILE, profile: str | None = None) -> dict[str, Any]:
    """The parameters of `profile` (default: $EARTHGPT_PROFILE, else the file's `profile` key)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    name = profile or os.environ.get("EARTHGPT_PROFILE") or document["profile"]
    try:
        return document["profiles"][name]
    except KeyError:
        raise KeyError(f"profile {name!r} is not in {path} (have: {', '.join(document['profiles'])})") from None


def repo_path(value: str) -> str:
    """A local path relative to the repo root becomes absolute; URIs (s3://...) pass unchanged."""
    if "://" in value or os.path.isabs(value):
        return value
    return str(REPO_ROOT / value)
