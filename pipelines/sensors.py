"""What reacts to change without a person: sensors, declarative automation and the retraining schedule.

    raw release changed ──raw_release_sensor──> raw/<source>, mmrs/<source>   (conversion runs, in parallel)
    mmrs/<source> updated ──mmrs_1m_automation──> mmrs_1m                      (AutomationCondition.eager)
    cron tick, and training inputs changed ──retraining_schedule──> training_job   (else the tick skips)
    new earthgpt_model, its checks passed ──evaluate_new_model──> evaluation_job  (champion only if all pass)
    any run failed ──record_run_failures──> asset observations, a JSON record, the log, a webhook

Training is never started by data alone: it costs GPU hours, so the schedule or a person starts it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request
from collections.abc import Sequence

import dagster as dg

from assets.resources import StorageResource
from mmrs.listing import ReleaseScan
from mmrs.readers.base import SourceSpec
from mmrs.shards import join, write_json
from pipelines.settings import AutomationSettings, ReleaseSensorSettings

MMRS_1M = dg.AssetKey("mmrs_1m")
EARTHGPT_MODEL = dg.AssetKey("earthgpt_model")
PAPER_TABLES = dg.AssetKey("paper_tables")
# Dagster's materialization tags (dagster._core.definitions.data_version)
DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/{}"


def _status(running: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


# --- raw releases ----------------------------------------------------------------------------------------------
def build_release_sensor(specs: Sequence[SourceSpec], job: dg.UnresolvedAssetJobDefinition,
                         settings: ReleaseSensorSettings) -> dg.SensorDefinition:
    """Lists every enabled source's raw release (storage.raw / storage.raw_roots, local or s3://) a time budget
    per tick, carrying the listing in the cursor (mmrs.listing); a release whose listing changed gets a
    conversion run of exactly raw/<source> and mmrs/<source> (mmrs_1m follows by automation)."""
    by_name = {spec.name: spec for spec in specs}

    @dg.sensor(name="raw_release_sensor", job=job, minimum_interval_seconds=settings.interval_seconds,
               default_status=_status(settings.running),
               description="Notices a changed raw release (names, sizes and modification times or ETags, listed "
                           "incrementally within a time budget per tick) and requests raw/<source> and "
                           "mmrs/<source> for it.")
    def raw_release_sensor(context: dg.SensorEvaluationContext, storage: StorageResource) -> dg.SensorResult:
        scan = ReleaseScan.from_cursor(context.cursor)
        roots = {name: storage.raw_root(spec) for name, spec in by_name.items()}
        changes = scan.advance(roots, settings.time_budget_seconds)
        requests = [dg.RunRequest(run_key=f"{c.name}:{c.now.version}",
                                  asset_selection=[dg.AssetKey(["raw", c.name]), dg.AssetKey(["mmrs", c.name])],
                                  tags={"earthgpt/release": c.name, "earthgpt/listing": c.now.version})
                    for c in changes]
        for change in changes:
            context.log.info(f"{change.name}: release changed ({change.before.files} -> {change.now.files} files, "
                             f"{change.before.bytes} -> {change.now.bytes} bytes)")
        if requests:
            return dg.SensorResult(run_requests=requests, cursor=scan.to_cursor())
        waiting = f"; listing {scan.current.name} ({scan.current.files} files so far)" if scan.current else ""
        return dg.SensorResult(skip_reason=f"no release changed{waiting}", cursor=scan.to_cursor())

    return raw_release_sensor


def build_mmrs_1m_automation(running: bool) -> dg.AutomationConditionSensorDefinition:
    """Evaluates mmrs_1m's AutomationCondition (eager: after any source updates, none missing or running)."""
    return dg.AutomationConditionSensorDefinition(
        "mmrs_1m_automation", target=dg.AssetSelection.assets(MMRS_1M), default_status=_status(running),
        description="mmrs_1m follows its sources: merged again after any mmrs/<source> updates.")


# --- retraining ------------------------------------------------------------------------------------------------
def training_inputs_changed(instance: dg.DagsterInstance, training: Sequence[dg.AssetsDefinition],
                            upstream: dg.AssetKey = MMRS_1M) -> list[str]:
    """Why training would give something new, or [] when nothing did change: a training asset never
    materialized, materialized by other code (its code version), or from another `upstream` data version
    than the current one."""
    latest = instance.get_latest_materialization_event(upstream)
    current = latest.asset_materialization.tags.get(DATA_VERSION_TAG) if latest and latest.asset_materialization \
        else None
    reasons = []
    for asset in training:
        for key, code_version in asset.code_versions_by_key.items():
            name = key.to_user_string()
            event = instance.get_latest_materialization_event(key)
            if event is None or event.asset_materialization is None:
                reasons.append(f"{name} was never materialized")
                continue
            tags = event.asset_materialization.tags or {}
            if code_version is not None and tags.get(CODE_VERSION_TAG) != code_version:
                reasons.append(f"{name}: code changed ({tags.get(CODE_VERSION_TAG)} -> {code_version})")
            if upstream in asset.asset_deps.get(key, ()):
                used = tags.get(INPUT_DATA_VERSION_TAG.format(upstream.to_user_string()))
                if current is not None and used != current:
                    reasons.append(f"{name}: {upstream.to_user_string()} changed ({used} -> {current})")
    return reasons


def build_retraining_schedule(job: dg.UnresolvedAssetJobDefinition, training: Sequence[dg.AssetsDefinition],
                              settings: AutomationSettings) -> dg.ScheduleDefinition:
    """training_job on the cron, but only when its inputs changed (new MMRS-1M data, new training code, or a
    training asset missing); otherwise the tick is skipped with the reason."""

    @dg.schedule(name="retraining_schedule", job=job, cron_schedule=settings.retraining_cron,
                 default_status=dg.DefaultScheduleStatus.RUNNING if settings.retraining_running
                 else dg.DefaultScheduleStatus.STOPPED,
                 description="Re-trains (tokenizer, stage 2, stage 3) on its cron when mmrs_1m or the training code "
                             "changed since the last training; a tick with nothing new is skipped.")
    def retraining_schedule(context: dg.ScheduleEvaluationContext):
        reasons = training_inputs_changed(context.instance, training)
        if not reasons:
            return dg.SkipReason("nothing upstream of training changed since the last training")
        tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
        return dg.RunRequest(run_key=f"retrain-{tick}", tags={"earthgpt/why": "; ".join(reasons)[:2000]})

    return retraining_schedule


# --- new model -> evaluation -----------------------------------------------------------------------------------
def _checks_of(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey) -> dict[str, bool]:
    """check name -> passed, for `key`'s checks evaluated in run `run_id`."""
    results = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.asset_key == key:
            results[evaluation.check_name] = evaluation.passed
    return results


def build_new_model_sensor(job: dg.UnresolvedAssetJobDefinition, running: bool) -> dg.SensorDefinition:
    """A new earthgpt_model (from the schedule, the UI or the CLI) starts evaluation_job, once per trained
    model (run key: its MLflow run), unless its checks failed or its own run already evaluated it."""

    @dg.asset_sensor(asset_key=EARTHGPT_MODEL, job=job, name="evaluate_new_model", default_status=_status(running),
                     description="Starts evaluation_job for each newly trained earthgpt_model whose checks passed; "
                                 "paper_tables then moves the champion alias only if every benchmark passes.")
    def evaluate_new_model(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        checks = _checks_of(context.instance, asset_event.run_id, EARTHGPT_MODEL)
        failed = sorted(name for name, passed in checks.items() if not passed)
        if failed:
            return dg.SkipReason(f"earthgpt_model of run {asset_event.run_id} failed its checks: {', '.join(failed)}")
        tables = context.instance.get_latest_materialization_event(PAPER_TABLES)
        if tables is not None and tables.run_id == asset_event.run_id:
            return dg.SkipReason(f"run {asset_event.run_id} evaluated its model itself")
        metadata = asset_event.asset_materialization.metadata
        model_run = metadata["mlflow_run_id"].value if "mlflow_run_id" in metadata else asset_event.run_id
        return dg.RunRequest(run_key=f"evaluate-{model_run}",
                             tags={"earthgpt/model_run": str(model_run), "earthgpt/trained_in": asset_event.run_id})

    return evaluate_new_model


# --- failures --------------------------------------------------------------------------------------------------
def failure_record(context: dg.RunFailureSensorContext, steps_to_assets: dict[str, list[dg.AssetKey]]) -> dict:
    """What failed: the run, its job, each failed step with its error and assets, when."""
    run = context.dagster_run
    steps = []
    for event in context.get_step_failure_events():
        error = event.event_specific_data.error if event.event_specific_data else None
        while error is not None and error.cause is not None:  # Dagster's wrapper -> what the step raised
            error = error.cause
        steps.append({"step": event.step_key, "error": error.message.strip() if error else event.message,
                      "assets": [k.to_user_string() for k in steps_to_assets.get(event.step_key or "", [])]})
    assets = sorted({a for step in steps for a in step["assets"]}) or sorted(
        k.to_user_string() for k in (run.asset_selection or ()))
    return {"run_id": run.run_id, "job": run.job_name, "failed_at": dt.datetime.now(dt.UTC).isoformat(),
            "message": context.failure_event.message, "steps": steps, "assets": assets,
            "tags": {k: v for k, v in run.tags.items() if not k.startswith("dagster/") or k == "dagster/sensor_name"}}


def post_webhook(url: str, record: dict, timeout: float = 10.0) -> int:
    """POST the record as JSON (with a Slack-style "text" line); the HTTP status."""
    what = "; ".join(f"{s['step']}: {s['error'][:200]}" for s in record["steps"]) or record["message"]
    text = f"EarthGPT run {record['run_id']} ({record['job']}) failed: {what}"
    body = json.dumps({"text": text, "failure": record}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def build_failure_sensor(assets: Sequence[dg.AssetsDefinition], settings: AutomationSettings
                         ) -> dg.SensorDefinition:
    """On every failed run of this code location: an observation on each failed asset (its page shows the
    error), a JSON record under automation.failures, an error in the sensor's log, and a POST to the webhook
    named by automation.failure_webhook_env when that variable is set."""
    steps_to_assets = {a.node_def.name: list(a.keys) for a in assets}

    @dg.run_failure_sensor(name="record_run_failures", default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Records every failed run where the team looks: the failed assets' "
                                       "observations, a JSON record, the log, and a webhook when one is set.")
    def record_run_failures(context: dg.RunFailureSensorContext) -> None:
        record = failure_record(context, steps_to_assets)
        stamp = record["failed_at"][:19].replace(":", "").replace("-", "")
        path = join(settings.failures, f"{stamp}-{record['run_id']}.json")
        write_json(path, record)
        context.log.error(f"run {record['run_id']} ({record['job']}) failed; assets: "
                          f"{', '.join(record['assets']) or 'none'}; record: {path}")
        for name in record["assets"]:
            errors = [s["error"] for s in record["steps"] if name in s["assets"]] or [record["message"]]
            context.instance.report_runless_asset_event(dg.AssetObservation(
                asset_key=dg.AssetKey.from_user_string(name),
                metadata={"last_failure": dg.MetadataValue.md(f"run `{record['run_id']}` failed at "
                                                              f"{record['failed_at']}:\n\n```\n{errors[0][:2000]}\n```"),
                          "last_failed_run": record["run_id"], "failure_record": path}))
        url = os.environ.get(settings.failure_webhook_env)
        if url:
            try:
                status = post_webhook(url, record)
                context.log.info(f"posted the failure to the webhook in ${settings.failure_webhook_env}: {status}")
            except OSError as error:  # a webhook that is down must not hide the failure itself
                context.log.error(f"webhook in ${settings.failure_webhook_env} failed: {error}")

    return record_run_failures
