"""Run config derived from settings: the launchpad's defaults are the profile's values, a run's values come
back as the same typed settings."""

import dagster as dg
import pytest

from assets.run_config import config_schema, read_config
from mmrs.settings import SettingsError
from models.stages import StageSettings


def test_the_schema_defaults_to_the_settings_and_reads_back():
    defaults = StageSettings(lr=0.01, tasks=("vqa",), weights={"dota": 1.0})
    schema = config_schema(defaults)
    assert schema["lr"].default_value == 0.01 and schema["tasks"].default_value == ["vqa"]
    resolved = dg.validate_run_config(_job(schema), {"ops": {"op": {"config": {"lr": 0.5}}}})
    config = resolved["ops"]["op"]["config"]
    assert read_config(defaults, config) == StageSettings(lr=0.5, tasks=("vqa",), weights={"dota": 1.0})


def test_excluded_fields_keep_their_values():
    defaults = StageSettings(seed=3)
    assert "seed" not in config_schema(defaults, exclude=("seed",))
    assert read_config(defaults, {"lr": 0.1}).seed == 3


def test_values_dagster_accepts_are_still_checked_by_the_settings():
    with pytest.raises(SettingsError, match="tasks"):
        read_config(StageSettings(), {"tasks": "everything"})  # `tasks` is a list or "all": Any to Dagster


def _job(schema):
    @dg.op(config_schema=schema)
    def op(context):
        return None

    @dg.job
    def job():
        op()

    return job
