"""Strict typed settings from plain mappings: unknown keys and wrong types are errors naming the key."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mmrs.settings import SettingsError, from_mapping, to_mapping, with_overrides


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    tasks: tuple[str, ...] | Literal["all"] = "all"
    weights: dict[str, float] | None = None


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    steps: int = 10
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    optional: Inner | None = None


def test_round_trip_and_defaults():
    settings = from_mapping(Outer, {"steps": 3, "inner": {"lr": 2, "tasks": ["a", "b"]}})
    assert settings == Outer(steps=3, inner=Inner(lr=2.0, tasks=("a", "b")))
    assert isinstance(settings.inner.lr, float)
    assert from_mapping(Outer, to_mapping(settings)) == settings


@pytest.mark.parametrize(("data", "message"), [
    ({"stepz": 3}, "unknown setting 'stepz'; allowed here: name, steps, flag, inner, optional"),
    ({"inner": {"lrr": 1}}, "unknown setting 'inner.lrr'; allowed here: lr, tasks, weights"),
    ({"steps": "3"}, "steps: expected int, got str"),
    ({"steps": True}, "steps: expected int, got bool"),
    ({"flag": 1}, "flag: expected bool, got int"),
    ({"inner": {"tasks": "alll"}}, "inner.tasks: 'alll' fits none of"),
    ({"inner": {"weights": {"a": "x"}}}, "inner.weights.a: expected float"),
    ({"inner": 3}, "inner: expected a mapping"),
    ({"optional": {"lr": "x"}}, "optional.lr: expected float"),
])
def test_errors_name_the_key(data, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_mapping(Outer, data)


def test_overrides_by_dotted_key():
    base = from_mapping(Outer, {"inner": {"weights": {"a": 1}}})
    changed = with_overrides(base, {"inner.lr": 0.5, "inner.weights.b": 2, "optional.lr": 0.1, "steps": 4})
    assert changed.inner.lr == 0.5 and changed.inner.weights == {"a": 1.0, "b": 2.0}
    assert changed.optional == Inner(lr=0.1) and changed.steps == 4
    assert base.inner.lr == 1e-3  # frozen: the original is unchanged
    with pytest.raises(SettingsError, match="unknown setting 'inner.lrr'; allowed here: lr, tasks, weights"):
        with_overrides(base, {"inner.lrr": 1})
    with pytest.raises(SettingsError, match="'steps.x': steps has no keys"):
        with_overrides(base, {"steps.x": 1})
