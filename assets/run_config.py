"""Dagster run config from typed settings: the launchpad shows every knob an asset reads, with the profile's
values as defaults; what a run sets comes back as the same frozen settings object, validated strictly.

One declaration serves params.yaml, `--set` and the launchpad: the schema is derived from the settings
dataclass (bool, int, float, str, Literal, tuple, dict[str, X], nested settings, optional fields).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import dagster as dg
import yaml

from mmrs.settings import field_types, from_mapping, to_mapping

T = TypeVar("T")


def config_schema(defaults: Any, exclude: Iterable[str] = ()) -> dict[str, dg.Field]:
    """Dagster config fields for a settings object's fields (minus `exclude`), defaulting to its values."""
    skip = set(exclude)
    values = to_mapping(defaults)
    return {name: dg.Field(_config_type(tp), default_value=values[name], is_required=False,
                           description=_doc(type(defaults), name))
            for name, tp in field_types(type(defaults)).items() if name not in skip}


def read_config(defaults: T, op_config: Mapping[str, Any] | None) -> T:
    """The settings a run asked for: `defaults` with the run config's values (the excluded fields kept)."""
    return from_mapping(type(defaults), to_mapping(defaults) | dict(op_config or {}), where="run config")


def settings_markdown(**sections: Any) -> dg.MetadataValue:
    """Resolved settings as a YAML block for asset metadata."""
    text = yaml.safe_dump({k: to_mapping(v) for k, v in sections.items()}, sort_keys=False)
    return dg.MetadataValue.md(f"```yaml\n{text}```")


def _config_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        inner = _config_type(options[0]) if len(options) == 1 else dg.Any  # e.g. list | "all": checked on read
        return dg.Noneable(inner) if type(None) in get_args(tp) else inner
    if origin is Literal:
        return type(get_args(tp)[0])
    if origin is tuple:
        return [_config_type(get_args(tp)[0])]
    if origin is dict:
        return dg.Map(str, _config_type(get_args(tp)[1]))
    if dataclasses.is_dataclass(tp):
        return {name: dg.Field(_config_type(t), is_required=False) for name, t in field_types(tp).items()}
    if tp in (bool, int, float, str):
        return tp
    return dg.Any


def _doc(cls: type, name: str) -> str | None:
    """The comment after a field in the class's source (`x: int = 1  # what x is`), if any."""
    import inspect

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(f"{name}:") and "#" in stripped:
            return stripped.split("#", 1)[1].strip()
    return None
