"""dvc.yaml stays in step with params.yaml and the CLI (DVC itself lives in its own environment)."""

import re
import shlex
from pathlib import Path

import yaml

from pipelines.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def _lookup(document, dotted):
    for part in dotted.split("."):
        document = document[part]
    return document


def test_stage_params_and_interpolations_exist_in_params_yaml():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in stages.values():
        for key in stage.get("params", []):
            _lookup(params, key)
        for key in re.findall(r"\$\{([^}]+)\}", stage["cmd"]):
            _lookup(params, key)


def test_stage_commands_parse_with_the_cli_and_deps_exist():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        cmd = re.sub(r"\$\{([^}]+)\}", lambda m: str(_lookup(params, m.group(1))), stage["cmd"])
        argv = shlex.split(cmd)
        assert argv[0] == ".venv/bin/earthgpt", name
        build_parser().parse_args(argv[1:])
        produced = {o for s in stages.values() for o in s.get("outs", [])}
        for dep in stage.get("deps", []):
            assert (REPO / dep).exists() or dep in produced, f"{name}: {dep}"
