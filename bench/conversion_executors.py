"""The demo's conversion group (raw/<source>, mmrs/<source> for its 16 sources, mmrs_1m) in one process against
Dagster's multiprocess executor (mmrs_job with orchestration.concurrency > 1, which the release sensor's runs
use too: a process per step from a forkserver that imported the pipeline once, --concurrency at once).

    .venv/bin/python bench/conversion_executors.py [--scale 8] [--concurrency 2] [--rounds 2] [--sample DIR]

Generates the sample corpus at the demo's scale (or reads --sample), converts it once untimed (so that every
timed run finds the corpus in the page cache), then runs the group alternately serial and parallel, each
through the `dagster` CLI in a fresh process (as CI or a run worker starts it: the imports and, for the
parallel run, the forkserver's own imports count), each converting into a fresh folder on the same Dagster
instance, and prints each run's wall time, the sum of its steps' times, and the median speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(kind: str, sample: str, out: str, concurrency: int, instance: dg.DagsterInstance) -> tuple[float, float]:
    """(wall seconds, sum of step seconds) of one run of the group, as a person or CI starts it, in a fresh
    process: `serial` materializes the group in the whole-graph job (one process, what `make demo` runs),
    `parallel` executes mmrs_job with `concurrency` processes."""
    config = Path(f"{out}-run.json")
    config.write_text(json.dumps({"resources": {"storage": {"config": {
        "sample": sample, "raw": sample, "mmrs": out, "models": f"{out}-models", "eval": f"{out}-eval"}}}}))
    dagster = str(Path(sys.executable).parent / "dagster")
    if kind == "parallel":
        command = [dagster, "job", "execute", "-m", "pipelines.definitions", "-j", "mmrs_job"]
    else:
        command = [dagster, "asset", "materialize", "-m", "pipelines.definitions", "--select",
                   "group:raw or group:mmrs"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "EARTHGPT_PROFILE": "demo",
           "EARTHGPT_SET": f"orchestration.concurrency={concurrency if kind == 'parallel' else 1}"}
    start = time.perf_counter()
    subprocess.run([*command, "-c", str(config)], cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    (latest,) = instance.get_runs(limit=1)
    assert latest.is_success, f"{kind} run failed"
    steps = instance.get_run_step_stats(latest.run_id)
    return wall, sum((s.end_time or 0) - (s.start_time or 0) for s in steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2, help="mmrs_job's processes (orchestration.concurrency)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample", help="an existing sample corpus (default: generate one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = args.sample
        if sample is None:
            from mmrs.synthetic.corpus import generate_corpus

            sample = str(Path(tmp) / "sample")
            start = time.perf_counter()
            list(generate_corpus(Path(sample), seed=0, scale=args.scale))
            print(f"sample corpus at scale {args.scale}: {time.perf_counter() - start:.0f} s")
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "home")
        Path(os.environ["DAGSTER_HOME"]).mkdir()

        times: dict[str, list[float]] = {"serial": [], "parallel": []}
        with dg.DagsterInstance.get() as instance:
            wall, _ = run("serial", sample, str(Path(tmp) / "mmrs-warm-up"), 1, instance)
            print(f"warm-up (serial, not counted: reads the corpus into the page cache) {wall:.1f} s")
            for round_ in range(args.rounds):
                for kind in ("serial", "parallel") if round_ % 2 == 0 else ("parallel", "serial"):
                    wall, steps = run(kind, sample, str(Path(tmp) / f"mmrs-{kind}-{round_}"), args.concurrency,
                                      instance)
                    times[kind].append(wall)
                    print(f"round {round_ + 1} {kind:<8} {wall:6.1f} s wall, steps {steps:6.1f} s "
                          f"(cores {os.cpu_count()}, concurrency {args.concurrency if kind == 'parallel' else 1})")
        serial, parallel = statistics.median(times["serial"]), statistics.median(times["parallel"])
        print(f"median: serial {serial:.1f} s, parallel {parallel:.1f} s: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
