"""Sensors, declarative automation and the retraining schedule, evaluated as the daemon would
(build_sensor_context, build_schedule_context, evaluate_automation_conditions) against a real instance."""

import datetime
import http.server
import json
import os
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import StorageResource
from mmrs.registry import SOURCES
from pipelines.sensors import (
    build_failure_sensor,
    build_new_model_sensor,
    build_release_sensor,
    build_retraining_schedule,
)
from pipelines.settings import AutomationSettings, ReleaseSensorSettings

SENSOR_TIME_LIMIT = 60  # seconds: Dagster's default sensor evaluation timeout (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS)
NAMES = ["dota", "hit_uav"]


def _job(name="mmrs_job", groups=("raw", "mmrs")):
    return dg.define_asset_job(name, selection=dg.AssetSelection.groups(*groups))


def _storage(raw) -> StorageResource:
    return StorageResource(sample=str(raw), raw=str(raw), mmrs="m", models="x", eval="e")


def _release(raw: Path, name: str, files: int = 3) -> Path:
    root = raw / SOURCES[name].release_folder
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / "images" / f"{i:04d}.png").write_bytes(b"x" * (i + 1))
    return root


def _tick(sensor, raw, cursor=None):
    return sensor(dg.build_sensor_context(cursor=cursor, resources={"storage": _storage(raw)}))


def _requested(result) -> list[set[str]]:
    return [{k.to_user_string() for k in r.asset_selection} for r in result.run_requests or []]


def test_a_changed_release_requests_exactly_its_raw_and_mmrs_assets(tmp_path):
    roots = {name: _release(tmp_path, name) for name in NAMES}
    sensor = build_release_sensor([SOURCES[n] for n in NAMES], _job(), ReleaseSensorSettings())
    first = _tick(sensor, tmp_path)
    assert _requested(first) == []  # first sight: the listing is recorded
    unchanged = _tick(sensor, tmp_path, first.cursor)
    assert _requested(unchanged) == [] and unchanged.skip_reason

    (roots["hit_uav"] / "images" / "0001.png").write_bytes(b"rewritten, another size")
    changed = _tick(sensor, tmp_path, unchanged.cursor)
    assert _requested(changed) == [{"raw/hit_uav", "mmrs/hit_uav"}]
    assert changed.run_requests[0].tags["earthgpt/release"] == "hit_uav"
    assert _requested(_tick(sensor, tmp_path, changed.cursor)) == []  # the change is reported once

    os.utime(roots["dota"] / "images" / "0000.png", ns=(1, 1))  # same bytes, new modification time
    (roots["dota"] / "images" / "new.png").write_bytes(b"")
    assert _requested(_tick(sensor, tmp_path, changed.cursor)) == [{"raw/dota", "mmrs/dota"}]


def test_a_release_that_appears_is_requested(tmp_path):
    sensor = build_release_sensor([SOURCES["dota"]], _job(), ReleaseSensorSettings())
    first = _tick(sensor, tmp_path)
    assert _requested(first) == []
    _release(tmp_path, "dota")
    assert _requested(_tick(sensor, tmp_path, first.cursor)) == [{"raw/dota", "mmrs/dota"}]


def test_a_release_on_s3_is_listed_page_by_page_across_ticks(s3_bucket, monkeypatch):
    import fsspec

    from mmrs import listing

    monkeypatch.setattr(listing, "PAGE", 100)  # keys per list request (S3's own maximum: 1,000)
    fs = fsspec.filesystem("s3")
    folder = SOURCES["dota"].release_folder
    fs.pipe({f"{s3_bucket}/{folder}/images/{i:05d}.png": b"x" for i in range(250)})
    settings = ReleaseSensorSettings(time_budget_seconds=0.0)  # one page per tick at most
    sensor = build_release_sensor([SOURCES["dota"]], _job(), settings)
    cursor, ticks = None, 0
    while True:  # the first listing, a page per tick, the partial listing carried in the cursor
        result = _tick(sensor, f"s3://{s3_bucket}", cursor)
        cursor, ticks = result.cursor, ticks + 1
        if json.loads(cursor)["current"] is None:
            break
    assert ticks == 3 and json.loads(cursor)["done"]["dota"]["files"] == 250
    fs.pipe({f"{s3_bucket}/{folder}/images/00007.png": b"new bytes"})  # a new ETag and size
    settings = ReleaseSensorSettings()
    result = _tick(build_release_sensor([SOURCES["dota"]], _job(), settings), f"s3://{s3_bucket}", cursor)
    assert _requested(result) == [{"raw/dota", "mmrs/dota"}]


@pytest.mark.slow  # writes 100,000 files
def test_a_100000_file_release_is_evaluated_within_the_sensor_time_limit(tmp_path):
    root = tmp_path / SOURCES["dota"].release_folder
    for d in range(100):
        folder = root / "images" / f"{d:03d}"
        folder.mkdir(parents=True)
        for i in range(1000):
            (folder / f"{i:04d}.png").touch()
    sensor = build_release_sensor([SOURCES["dota"]], _job(), ReleaseSensorSettings())
    start = time.perf_counter()
    first = _tick(sensor, tmp_path)
    seconds = time.perf_counter() - start
    print(f"100,000-file release listed in {seconds:.2f} s")
    assert json.loads(first.cursor)["done"]["dota"]["files"] == 100_000
    assert seconds < SENSOR_TIME_LIMIT / 4  # finished in one tick, with room to spare
    (root / "images" / "042" / "0042.png").write_bytes(b"changed")
    assert _requested(_tick(sensor, tmp_path, first.cursor)) == [{"raw/dota", "mmrs/dota"}]


# --- declarative automation ------------------------------------------------------------------------------------
def test_mmrs_1m_follows_a_new_source_and_training_does_not(tmp_path):
    from pipelines.definitions import build_definitions
    from pipelines.settings import load_settings

    defs = build_definitions(load_settings("demo", {"mmrs.sources": ["dota", "hit_uav"]}))
    instance = dg.DagsterInstance.ephemeral()
    for key in ["mmrs/dota", "mmrs/hit_uav", "mmrs_1m"]:
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey.from_user_string(key)))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing new since mmrs_1m
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["mmrs", "dota"])))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 1 and result.get_num_requested(dg.AssetKey("mmrs_1m")) == 1
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey("mmrs_1m")))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0  # training waits for the schedule or a person


# --- retraining schedule ---------------------------------------------------------------------------------------
def _stub_graph(code="v1"):
    """mmrs_1m and the training assets' shape: the schedule reads only what the instance recorded."""
    version = {"now": "aaaa"}

    @dg.asset(name="mmrs_1m")
    def mmrs_1m():
        return dg.MaterializeResult(data_version=dg.DataVersion(version["now"]))

    @dg.asset(name="aligned_model", deps=[mmrs_1m], code_version=code)
    def aligned_model():
        return None

    @dg.asset(name="earthgpt_model", deps=[aligned_model, mmrs_1m], code_version=code)
    def earthgpt_model():
        return None

    return version, mmrs_1m, [aligned_model, earthgpt_model]


def _schedule_tick(schedule, instance):
    tick = datetime.datetime(2026, 12, 6, 3, 0, tzinfo=datetime.UTC)
    return schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))


def test_the_schedule_trains_only_when_something_upstream_changed():
    version, mmrs_1m, training = _stub_graph()
    schedule = build_retraining_schedule(_job("training_job", ("training",)), training, AutomationSettings())
    with dg.instance_for_test() as instance:
        first = _schedule_tick(schedule, instance)
        assert isinstance(first, dg.RunRequest) and "never materialized" in first.tags["earthgpt/why"]
        dg.materialize([mmrs_1m, *training], instance=instance)
        assert isinstance(_schedule_tick(schedule, instance), dg.SkipReason)  # unchanged inputs: no training

        version["now"] = "bbbb"  # new MMRS-1M data
        dg.materialize([mmrs_1m, *training], instance=instance, selection=[mmrs_1m])
        again = _schedule_tick(schedule, instance)
        assert isinstance(again, dg.RunRequest) and "mmrs_1m changed (aaaa -> bbbb)" in again.tags["earthgpt/why"]
        dg.materialize([mmrs_1m, *training], instance=instance, selection=training)
        assert isinstance(_schedule_tick(schedule, instance), dg.SkipReason)

        _, _, changed_code = _stub_graph(code="v2")  # an edit to the training code
        schedule = build_retraining_schedule(_job("training_job", ("training",)), changed_code, AutomationSettings())
        result = _schedule_tick(schedule, instance)
        assert isinstance(result, dg.RunRequest) and "code changed (v1 -> v2)" in result.tags["earthgpt/why"]


# --- new model -> evaluation -----------------------------------------------------------------------------------
def _model_asset(passed: bool, mlflow_run: str):
    @dg.asset(name="earthgpt_model", check_specs=[dg.AssetCheckSpec("loss_fell", asset="earthgpt_model",
                                                                    blocking=True)])
    def earthgpt_model():
        return dg.MaterializeResult(metadata={"mlflow_run_id": mlflow_run},
                                    check_results=[dg.AssetCheckResult(check_name="loss_fell", passed=passed)])

    return earthgpt_model


def test_a_new_model_starts_the_evaluation_job_once():
    job = _job("evaluation_job", ("evaluation",))
    sensor = build_new_model_sensor(job, running=True)
    assert sensor.job_name == "evaluation_job"
    with dg.instance_for_test() as instance:
        def tick(cursor=None):
            return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))

        assert tick().run_requests == []  # no model yet
        dg.materialize([_model_asset(True, "run-a")], instance=instance)
        first = tick()
        (request,) = first.run_requests
        assert request.run_key == "evaluate-run-a" and request.tags["earthgpt/model_run"] == "run-a"
        assert tick(first.cursor).run_requests == []  # the same materialization is not evaluated twice

        dg.materialize([_model_asset(False, "run-b")], instance=instance, raise_on_error=False)
        skipped = tick(first.cursor)
        assert skipped.run_requests == [] and "failed its checks: loss_fell" in skipped.skip_message


# --- failures --------------------------------------------------------------------------------------------------
class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()


def test_a_failed_run_is_recorded_on_its_asset_in_a_file_and_at_the_webhook(tmp_path, webhook, monkeypatch):
    url, received = webhook

    @dg.asset(key=["mmrs", "dota"])
    def broken():
        raise ValueError("the DOTA labels are unreadable")

    settings = AutomationSettings(failures=str(tmp_path / "failures"), failure_webhook_env="TEST_EARTHGPT_HOOK")
    monkeypatch.setenv("TEST_EARTHGPT_HOOK", url)
    sensor = build_failure_sensor([broken], settings)
    with dg.instance_for_test() as instance:
        result = dg.materialize([broken], instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance,
                                                     dagster_run=result.dagster_run, dagster_event=failure)
        sensor(context.for_run_failure())

        (record_file,) = (tmp_path / "failures").iterdir()
        record = json.loads(record_file.read_text())
        assert record["run_id"] == result.run_id and record["assets"] == ["mmrs/dota"]
        assert "the DOTA labels are unreadable" in record["steps"][0]["error"]
        (observation,) = instance.fetch_observations(dg.AssetKey(["mmrs", "dota"]), limit=5).records
        meta = observation.asset_observation.metadata
        assert meta["last_failed_run"].value == result.run_id and "unreadable" in meta["last_failure"].value
    (posted,) = received
    assert posted["failure"]["run_id"] == result.run_id and "the DOTA labels are unreadable" in posted["text"]


def test_without_a_webhook_the_failure_is_still_recorded(tmp_path, monkeypatch):
    @dg.asset
    def fragile():
        raise RuntimeError("boom")

    monkeypatch.delenv("EARTHGPT_FAILURE_WEBHOOK", raising=False)
    sensor = build_failure_sensor([fragile], AutomationSettings(failures=str(tmp_path / "f")))
    with dg.instance_for_test() as instance:
        result = dg.materialize([fragile], instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance,
                                                     dagster_run=result.dagster_run, dagster_event=failure)
        sensor(context.for_run_failure())
    assert len(list((tmp_path / "f").iterdir())) == 1
