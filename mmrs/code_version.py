"""The version of the code a step runs: a digest of the source files of the modules it imports from this
repository, found by following `import` statements (not by importing anything).

An asset built from `mmrs.build` and the DOTA reader gets `code_version("mmrs.build", "mmrs.readers.dota")`:
the SHA-256 of every repository module those two import, directly or not, so an edit to any of them (a
reader, a conversion template, the model, a scorer) changes the version, and an edit elsewhere does not.
`mmrs.registry` imports every reader; following it would tie each source to every reader, so the closure
stops there (a source names its own reader instead).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mmrs", "models", "evaluation", "assets", "pipelines")
NOT_FOLLOWED = frozenset({"mmrs.registry"})  # imports every reader; each source names its own


def module_file(name: str) -> Path | None:
    """The repository file of module `name` (a module or a package's __init__), None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def _imports(name: str) -> frozenset[str]:
    """Repository modules that module `name` imports (its parent packages included: Python runs them)."""
    path = module_file(name)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from mmrs import templates`
    modules = {m for m in found if module_file(m) is not None}
    parents = {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 1)}
    return frozenset(m for m in modules | parents if module_file(m) is not None)


def closure(roots: Iterable[str]) -> list[str]:
    """`roots` and every repository module they import, directly or not, sorted."""
    seen: set[str] = set()
    todo = [r for r in roots if module_file(r) is not None]
    missing = [r for r in roots if module_file(r) is None]
    if missing:
        raise ValueError(f"not a module of this repository: {missing[0]}")
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in NOT_FOLLOWED:
            todo.extend(_imports(name) - seen)
    return sorted(seen)


@cache
def code_version(*roots: str) -> str:
    """16 hex digits of SHA-256 over the path and bytes of every module in `closure(roots)`."""
    digest = hashlib.sha256()
    for name in closure(roots):
        path = module_file(name)
        digest.update(f"{path.relative_to(REPO).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_modules(spec) -> tuple[str, ...]:
    """The modules that make a source's records: its reader's module and the module that registers it (its
    options and class lists)."""
    import importlib

    from mmrs.registry import READER_MODULES

    owner = next(f"mmrs.readers.{m}" for m in READER_MODULES
                 if any(s is spec for s in importlib.import_module(f"mmrs.readers.{m}").SOURCES))
    return tuple(dict.fromkeys((spec.reader.__module__, owner)))
