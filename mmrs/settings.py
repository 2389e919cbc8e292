"""Typed, frozen settings built strictly from plain mappings (params.yaml, Dagster run config, `--set`).

Each package declares the settings it consumes as a frozen dataclass next to the code that uses them;
`from_mapping` builds one from a mapping and refuses anything it does not declare, naming the key and the
keys it allows, so a misspelt key is an error and never a silent default. Supported field types: bool, int,
float, str, Literal[...], tuple[X, ...], dict[str, X], nested settings dataclasses, and unions of these
(`X | None`, `tuple[str, ...] | Literal["all"]`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


class SettingsError(ValueError):
    """A settings document does not fit its declaration; the message names the key."""


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """An instance of the settings dataclass `cls` from `data`; missing keys take the field defaults."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where or cls.__name__}: expected a mapping of settings, got {_kind(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise SettingsError(f"unknown setting {_dotted(where, str(unknown[0]))!r}; allowed here: "
                            f"{', '.join(fields)}")
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, _dotted(where, name))
    try:
        return cls(**values)
    except TypeError as error:  # a required field is missing
        raise SettingsError(f"{where or cls.__name__}: {error}") from None
    except ValueError as error:  # the dataclass's own validation (__post_init__)
        raise SettingsError(f"{where or cls.__name__}: {error}") from None


def to_mapping(settings: Any) -> Any:
    """Plain YAML/JSON-able data of a settings object (tuples become lists); from_mapping's inverse."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return {f.name: to_mapping(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    if isinstance(settings, tuple | list):
        return [to_mapping(v) for v in settings]
    if isinstance(settings, Mapping):
        return {k: to_mapping(v) for k, v in settings.items()}
    return settings


def with_overrides(settings: T, overrides: Mapping[str, Any], where: str = "") -> T:
    """A copy of `settings` with dotted keys replaced (`{"stage3.lr": 0.02}`), validated like the original.

    A key may reach into a dict field (`stage3.weights.dota`); a section that is off (null) is switched on
    with its defaults when a key inside it is set."""
    data = to_mapping(settings)
    for dotted, value in overrides.items():
        node, cls = data, type(settings)
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            here = _dotted(where, ".".join(parts[:i + 1]))
            if dataclasses.is_dataclass(cls):
                hints = field_types(cls)
                if part not in hints:
                    raise SettingsError(f"unknown setting {here!r}; allowed here: {', '.join(hints)}")
                cls = _unwrap_optional(hints[part])
            elif get_origin(cls) is dict:
                cls = get_args(cls)[1]
            else:
                raise SettingsError(f"unknown setting {here!r}: {_dotted(where, '.'.join(parts[:i]))} has no keys")
            if i == len(parts) - 1:
                node[part] = value
            else:
                if node.get(part) is None:  # a section or dict that is off: on, with its defaults
                    node[part] = to_mapping(cls()) if dataclasses.is_dataclass(cls) else {}
                node = node[part]
    return from_mapping(type(settings), data, where)


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation, for callers that derive schemas (Dagster config) from settings."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _unwrap_optional(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    return args[0] if len(args) == 1 else tp


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if _is_union(tp):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        present = [o for o in options if o is not type(None)]
        if value is not None and len(present) == 1:  # `X | None`: X's own error is the useful one
            return _coerce(present[0], value, where)
        for option in options:
            with contextlib.suppress(SettingsError):
                return _coerce(option, value, where)
        raise SettingsError(f"{where}: {value!r} fits none of {_describe(tp)}")
    origin = get_origin(tp)
    if tp is type(None):
        if value is None:
            return None
        raise SettingsError(f"{where}: expected null, got {_kind(value)}")
    if origin is Literal:
        if any(value == option and type(value) is type(option) for option in get_args(tp)):
            return value
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(map(repr, get_args(tp)))}")
    if origin is tuple:
        (item, _) = get_args(tp)
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{where}: expected a list, got {_kind(value)}")
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        key_type, item = get_args(tp)
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where}: expected a mapping, got {_kind(value)}")
        return {_coerce(key_type, k, where): _coerce(item, v, _dotted(where, str(k))) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    else:
        raise SettingsError(f"{where}: unsupported settings type {tp!r}")
    raise SettingsError(f"{where}: expected {tp.__name__}, got {_kind(value)} {value!r}")


def _describe(tp: Any) -> str:
    if _is_union(tp):
        return " | ".join(_describe(a) for a in get_args(tp))
    if get_origin(tp) is Literal:
        return " | ".join(map(repr, get_args(tp)))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _dotted(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
