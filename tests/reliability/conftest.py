"""Shared fixtures of the reliability tests: pristine sample releases to damage, and the count of cases tried.

`release(name)` copies a pristine sample-corpus dataset (generated once per session) to a fresh folder, so a
test damages its own copy. `tried(family, n=1)` counts the cases a property test ran; with the environment
variable RELIABILITY_COUNTS set, the counts per family are written there as JSON at the end of the session
(docs/reliability.md quotes them).
"""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mmrs.synthetic.corpus import DATASETS, generate_dataset

_TRIED: Counter[str] = Counter()


@pytest.fixture(scope="session")
def pristine(tmp_path_factory):
    """name -> the folder of that sample-corpus dataset, generated on first use (seed 0, scale 1)."""
    root = tmp_path_factory.mktemp("pristine")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            generate_dataset(name, root)
            made[name] = root / DATASETS[name].folder
        return made[name]

    return get


@pytest.fixture
def release(pristine, tmp_path_factory):
    """name -> a fresh copy of the pristine dataset (one per call), to damage."""

    def copy(name: str) -> Path:
        target = tmp_path_factory.mktemp(name) / DATASETS[name].folder
        shutil.copytree(pristine(name), target, symlinks=True)
        return target

    return copy


@pytest.fixture(scope="session")
def tried():
    def count(family: str, n: int = 1) -> None:
        _TRIED[family] += n

    return count


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("RELIABILITY_COUNTS")
    if target and _TRIED:
        Path(target).write_text(json.dumps(dict(sorted(_TRIED.items())), indent=2) + "\n")
