"""params.yaml is read strictly into typed settings; the CLI and the DVC stages use the same settings."""

import pytest
import yaml

from mmrs.settings import SettingsError
from pipelines.cli import main
from pipelines.settings import PARAMS_FILE, load_settings, parse_override


def _params_with(tmp_path, change):
    document = yaml.safe_load(PARAMS_FILE.read_text())
    change(document["profiles"]["demo"])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_every_profile_of_params_yaml_loads():
    for profile in yaml.safe_load(PARAMS_FILE.read_text())["profiles"]:
        settings = load_settings(profile)
        assert settings.mmrs.enabled


def test_a_misspelt_key_in_params_yaml_names_it_and_the_allowed_keys(tmp_path):
    path = _params_with(tmp_path, lambda demo: demo["train"]["stage3"].update(learning_rate=0.1))
    with pytest.raises(SettingsError, match=r"unknown setting 'profiles.demo.train.stage3.learning_rate'; "
                                            r"allowed here: tasks, sources, weights, batch_size, max_steps, lr"):
        load_settings("demo", path=path)


def test_an_unknown_source_or_benchmark_is_an_error(tmp_path):
    path = _params_with(tmp_path, lambda demo: demo["mmrs"].update(sources=["dota", "dotaa"]))
    with pytest.raises(SettingsError, match="unknown source 'dotaa'"):
        load_settings("demo", path=path)
    with pytest.raises(SettingsError, match="unknown benchmark 'table2'"):
        load_settings("demo", {"evaluation.benchmarks": ["table2"]})


def test_overrides_are_typed_and_paths_resolved():
    settings = load_settings("demo", dict(parse_override(t) for t in ["train.stage3.lr=0.02",
                                                                       "train.stage3.tasks=[vqa, captioning]",
                                                                       "storage.mmrs=elsewhere/mmrs"]))
    assert settings.train.stage3.lr == 0.02 and settings.train.stage3.tasks == ("vqa", "captioning")
    assert settings.storage.mmrs.endswith("/elsewhere/mmrs") and settings.storage.mmrs.startswith("/")
    assert settings.mlflow.uri.startswith("sqlite:////")
    with pytest.raises(SettingsError, match="key=value"):
        parse_override("train.stage3.lr")


def test_the_cli_reports_a_bad_setting_in_one_line(capsys):
    assert main(["settings", "--set", "train.stage3.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown setting 'train.stage3.lrr'") and "Traceback" not in err
    assert main(["settings", "--set", "train.stage3.lr=0.5"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["stage3"]["lr"] == 0.5


def test_sources_lists_every_registered_source_with_its_release_folder(capsys):
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert "dior_rsvg" in out and "DIOR_RSVG" in out and "grounding, region_caption" in out
