"""DVC versions what Dagster produces: dvc.yaml's stages are Dagster materializations with params.yaml's paths,
and after `dvc commit` (the data_versions asset) `dvc repro` rebuilds nothing; push and pull through an S3
remote (a moto server on loopback) give back the same data."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mmrs.dvc import VersioningSettings, record, status
from pipelines.definitions import defs
from pipelines.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
DVC = REPO / ".tools" / "dvc" / "bin" / "dvc"


def _lookup(document, dotted):
    for part in dotted.split("."):
        document = document[part]
    return document


def _stages():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    text = (REPO / "dvc.yaml").read_text()
    text = re.sub(r"\$\{([^}]+)\}", lambda m: str(_lookup(params, m.group(1))), text)
    return yaml.safe_load(text)["stages"], params


def test_stages_are_dagster_materializations_of_the_demo_profiles_paths():
    stages, params = _stages()
    demo = load_settings("demo")
    graph = defs.resolve_asset_graph()
    for name, stage in stages.items():
        argv = shlex.split(stage["cmd"])
        assert argv[1:5] == [".venv/bin/dagster", "asset", "materialize", "-m"], name
        selection = argv[argv.index("--select") + 1]
        assert dg.AssetSelection.from_string(selection).resolve(graph), (name, selection)
        for key in stage.get("params", []):
            _lookup(params, key)
        produced = {o for s in stages.values() for o in s.get("outs", [])}
        for dep in stage.get("deps", []):
            assert (REPO / dep).exists() or dep in produced, f"{name}: {dep}"
    assert [str(REPO / o) for s in stages.values() for o in s["outs"]] == [demo.storage.sample, demo.storage.mmrs]
    assert tuple(stages) == demo.versioning.stages


def _run(cwd, *args, env=None):
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_what_the_producer_wrote_is_committed_pushed_to_s3_and_pulled_back(tmp_path, s3_bucket, s3_endpoint):
    assert DVC.exists(), "DVC's environment is missing: `make dvc-setup` installs it (`make test` does)"
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    _run(repo, "git", "init", "-q")
    _run(repo, str(DVC), "init", "-q", env=env)
    (repo / "params.yaml").write_text("profiles: {demo: {storage: {sample: data/sample}, scale: 2}}\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  sample_corpus:\n    cmd: python make.py\n    deps: [make.py]\n"
        "    params: [profiles.demo.scale]\n    outs:\n      - ${profiles.demo.storage.sample}\n")
    (repo / "make.py").write_text("from pathlib import Path\nPath('data/sample').mkdir(parents=True, exist_ok=True)\n"
                                  "for i in range(3):\n    Path(f'data/sample/{i}.txt').write_text(str(i) * 100)\n")
    _run(repo, str(DVC), "remote", "add", "-d", "s3", f"s3://{s3_bucket}/dvc", env=env)
    _run(repo, str(DVC), "remote", "modify", "s3", "endpointurl", s3_endpoint, env=env)
    _run(repo, "python", "make.py")  # the producer writes the data outside DVC, as Dagster does
    versioning = VersioningSettings(dvc=str(DVC), stages=("sample_corpus",), push=True, repo=str(repo))
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DVC_NO_ANALYTICS")})
    recorded = record(versioning)
    assert recorded.pushed and "changed" not in status(versioning)
    repro = _run(repo, str(DVC), "repro", env=env)
    assert "didn't change, skipping" in repro and "Running stage" not in repro  # nothing built twice
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "data")
    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    _run(clone, str(DVC), "pull", "-q", env=env)
    assert sorted(p.name for p in (clone / "data" / "sample").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    assert (clone / "data" / "sample" / "2.txt").read_text() == "2" * 100
