"""The generic top-level package names must resolve to this repository, not to a site-packages namesake."""

from importlib import import_module
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["mmrs", "models", "evaluation", "assets", "pipelines"])
def test_top_level_package_comes_from_this_repo(name):
    module = import_module(name)
    assert Path(module.__file__).resolve().parent == REPO / name


# Imports point one way: pipelines -> assets -> (models, evaluation) -> mmrs; nothing below assets imports Dagster.
FORBIDDEN = {
    "mmrs": {"models", "evaluation", "assets", "pipelines", "dagster", "torch", "mlflow", "lightning"},
    "models": {"evaluation", "assets", "pipelines", "dagster"},
    "evaluation": {"assets", "pipelines", "dagster"},
    "assets": {"pipelines"},
}


def _imported_top_levels(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    offenders = {str(path.relative_to(REPO)): sorted(_imported_top_levels(path) & FORBIDDEN[package])
                 for path in (REPO / package).rglob("*.py")}
    assert {path: names for path, names in offenders.items() if names} == {}
