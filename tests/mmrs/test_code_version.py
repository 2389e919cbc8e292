"""An asset's code version: a digest of the repository modules it imports, directly or not."""

import shutil

import pytest

from mmrs import code_version as cv
from mmrs.registry import SOURCES


def test_the_closure_follows_imports_within_the_repository():
    modules = cv.closure(["mmrs.build"])
    assert {"mmrs.build", "mmrs.convert", "mmrs.templates", "mmrs.geometry", "mmrs.readers.base"} <= set(modules)
    assert not any(m.startswith(("models", "evaluation")) for m in modules)
    assert "mmrs.readers.voc" not in modules  # a reader belongs to its own sources only
    assert "models.trainer" in cv.closure(["models.stages"])


def test_a_source_is_versioned_by_its_own_reader():
    assert cv.source_modules(SOURCES["dota"]) == ("mmrs.readers.dota",)
    assert "mmrs.readers.voc" in cv.source_modules(SOURCES["mar20"])


def test_unknown_modules_are_an_error():
    with pytest.raises(ValueError, match="not a module of this repository"):
        cv.closure(["mmrs.no_such_module"])


def test_an_edit_changes_the_version_of_the_code_that_imports_it_and_no_other(tmp_path, monkeypatch):
    shutil.copytree(cv.REPO / "mmrs", tmp_path / "mmrs")
    monkeypatch.setattr(cv, "REPO", tmp_path)
    for cached in (cv._imports, cv.code_version):
        cached.cache_clear()
    try:
        build, dota, voc = cv.code_version("mmrs.build"), cv.code_version("mmrs.readers.dota"), \
            cv.code_version("mmrs.readers.voc")
        template = tmp_path / "mmrs" / "templates.py"
        template.write_text(template.read_text() + "\n# reworded\n")
        for cached in (cv._imports, cv.code_version):
            cached.cache_clear()
        assert cv.code_version("mmrs.build") != build  # conversion imports the templates
        reader = tmp_path / "mmrs" / "readers" / "voc.py"
        reader.write_text(reader.read_text() + "\n# a quirk handled\n")
        cv.code_version.cache_clear()
        assert cv.code_version("mmrs.readers.voc") != voc
        assert cv.code_version("mmrs.readers.dota") == dota
    finally:
        for cached in (cv._imports, cv.code_version):
            cached.cache_clear()
