"""CI's materialization step (.ci/materialize) fails on a failed ERROR check or a failed run, not on WARN."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAPH = '''
import dagster as dg

@dg.asset(check_specs=[dg.AssetCheckSpec("{check}", asset="thing", blocking={blocking})])
def thing():
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
        check_name="{check}", passed={passed}, severity=dg.AssetCheckSeverity.{severity})])

defs = dg.Definitions(assets=[thing])
'''


@pytest.mark.parametrize(("passed", "severity", "blocking", "fails"), [
    (True, "ERROR", False, False),
    (False, "WARN", False, False),
    (False, "ERROR", False, True),  # the run succeeds; the failed check fails the step
    (False, "ERROR", True, True),  # a blocking check fails the run itself
])
def test_the_materialization_step_fails_on_a_failed_error_check(tmp_path, passed, severity, blocking, fails):
    graph = tmp_path / "graph.py"
    graph.write_text(GRAPH.format(check="looks_right", passed=passed, severity=severity, blocking=blocking))
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(["bash", str(REPO / ".ci" / "materialize"), "-f", str(graph), "--select", "thing"],
                          env={**os.environ, "DAGSTER_HOME": str(home), "BIN": str(Path(sys.executable).parent)},
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode != 0) == fails, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "thing looks_right" in proc.stdout
