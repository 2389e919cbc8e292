"""Every source dataset and benchmark, collected from the reader modules' `SOURCES` lists."""

from __future__ import annotations

import importlib

from mmrs.readers.base import SourceSpec

READER_MODULES = (
    "captions", "vqa", "folders", "dscr", "coco", "yolo", "voc", "dior_rsvg", "dota", "gaofen", "nwpu_vhr",
    "ucas_aod", "visdrone", "caption_corpora",
)


def _collect() -> dict[str, SourceSpec]:
    sources: dict[str, SourceSpec] = {}
    for module in READER_MODULES:
        for spec in importlib.import_module(f"mmrs.readers.{module}").SOURCES:
            if spec.name in sources:
                raise ValueError(f"source {spec.name!r} is registered twice")
            sources[spec.name] = spec
    return dict(sorted(sources.items()))


SOURCES: dict[str, SourceSpec] = _collect()


def get_source(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None
