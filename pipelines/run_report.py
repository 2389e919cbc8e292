"""What a Dagster run did, as CI needs it: the run's status and every asset check's result, as a table, and an
exit status that fails on a failed run or on any failed check of ERROR severity (WARN failures are listed).

    DAGSTER_HOME=... python -m pipelines.run_report [--run-id ID]      # default: the instance's latest run
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, DagsterRunStatus


@dataclass(frozen=True)
class CheckOutcome:
    asset: str
    check: str
    passed: bool
    severity: str


def run_outcome(instance: DagsterInstance, run_id: str | None = None) -> tuple[str, str, list[CheckOutcome]]:
    """(run id, status, check results in the order they were evaluated) of a run (default: the latest)."""
    if run_id is None:
        runs = instance.get_runs(limit=1)
        if not runs:
            raise LookupError(f"no run in the Dagster instance at {instance.root_directory}")
        run_id = runs[0].run_id
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise LookupError(f"no run {run_id} in the Dagster instance at {instance.root_directory}")
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    checks = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        checks.append(CheckOutcome(evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.passed,
                                   evaluation.severity.value))
    return run_id, run.status.value, checks


def failed(status: str, checks: Sequence[CheckOutcome]) -> bool:
    return status != DagsterRunStatus.SUCCESS.value or any(
        not c.passed and c.severity == AssetCheckSeverity.ERROR.value for c in checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.run_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-id", help="a run of the instance at $DAGSTER_HOME (default: the latest)")
    args = parser.parse_args(argv)
    try:
        run_id, status, checks = run_outcome(DagsterInstance.get(), args.run_id)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    width = max([len(f"{c.asset} {c.check}") for c in checks] + [20])
    print(f"run {run_id}: {status}; {sum(c.passed for c in checks)} of {len(checks)} checks passed")
    for c in checks:
        mark = "passed" if c.passed else f"FAILED ({c.severity})"
        print(f"  {f'{c.asset} {c.check}':<{width}}  {mark}")
    bad = [c for c in checks if not c.passed and c.severity == AssetCheckSeverity.ERROR.value]
    if failed(status, checks):
        print(f"failing: run {status}" + (f", {len(bad)} check(s) of ERROR severity failed" if bad else ""),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
