"""The generic top-level package names must resolve to this repository, not to a site-packages namesake."""

from importlib import import_module
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["mmrs", "models", "evaluation", "assets", "pipelines"])
def test_top_level_package_comes_from_this_repo(name):
    module = import_module(name)
    assert Path(module.__file__).resolve().parent == REPO / name
