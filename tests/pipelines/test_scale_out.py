"""Where steps run: executors per profile, the Kubernetes launcher and step pods resolved from their config
(no cluster needed), the GPU pool, retries with backoff, code versions on every asset."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.definitions import build_definitions
from pipelines.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
GPU_BOUND = {"pretrained_llm", "aligned_model", "earthgpt_model"}


@pytest.fixture(scope="module")
def demo():
    return build_definitions(load_settings("demo"))


@pytest.fixture(scope="module")
def cluster():
    return build_definitions(load_settings("cluster"))


def _ops(defs):
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).assets_def for key in graph.get_all_asset_keys()}


def test_every_asset_carries_the_version_of_the_code_it_runs(demo):
    graph = demo.resolve_asset_graph()
    versions = {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}
    assert all(versions.values()), [k for k, v in versions.items() if not v]
    assert versions["mmrs/dota"] != versions["mmrs/hit_uav"]  # each source: its own reader
    assert versions["aligned_model"] == versions["earthgpt_model"]  # one training code


def test_gpu_bound_steps_share_the_gpu_pool_and_object_store_steps_retry_with_backoff(demo):
    ops = _ops(demo)
    pools = {name: a.op.pool for name, a in ops.items()}
    assert {n for n, p in pools.items() if p == "gpu"} == GPU_BOUND | {n for n in ops if n.startswith("predictions/")}
    for name in ["raw/dota", "mmrs/dota", "mmrs_1m", "predictions/mar20_hbb", "eval/mar20_hbb", "paper_tables"]:
        policy = ops[name].op.retry_policy
        assert policy.max_retries == 3 and policy.backoff == dg.Backoff.EXPONENTIAL, name
    assert ops["earthgpt_model"].op.retry_policy is None  # a failed training resumes from its checkpoint


def test_conversion_runs_convert_sources_in_parallel_when_asked_and_whole_graph_runs_stay_in_one_process(demo):
    assert demo.resolve_job_def("training_job").executor_def.name == "in_process"
    assert demo.resolve_job_def("mmrs_job").executor_def.name == "in_process"  # the demo: concurrency 1
    for concurrency in (2, 4):
        parallel = build_definitions(load_settings("demo", {"orchestration.concurrency": concurrency}))
        execution = dg.validate_run_config(parallel.resolve_job_def("mmrs_job"), {})["execution"]["multiprocess"]
        assert execution["max_concurrent"] == concurrency and "forkserver" in execution["start_method"]
        assert parallel.resolve_job_def("training_job").executor_def.name == "in_process"


def test_the_code_location_takes_overrides_from_the_environment(monkeypatch):
    from pipelines.settings import environment_overrides

    monkeypatch.setenv("EARTHGPT_SET", "orchestration.concurrency=4 'automation.failures=/tmp/a b'")
    assert environment_overrides() == {"orchestration.concurrency": 4, "automation.failures": "/tmp/a b"}
    assert load_settings("demo", environment_overrides()).orchestration.concurrency == 4


def test_mmrs_1m_alone_follows_its_upstream_by_automation(demo):
    graph = demo.resolve_asset_graph()
    automated = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).automation_condition}
    assert automated == {"mmrs_1m"}


# --- the cluster profile ---------------------------------------------------------------------------------------
def test_the_cluster_profile_runs_every_step_in_its_own_pod(cluster):
    for job in ["mmrs_job", "training_job", "evaluation_job"]:
        k8s = dg.validate_run_config(cluster.resolve_job_def(job), {})["execution"]["k8s"]
        assert k8s["job_image"] == "registry.example.com/earthgpt-pipeline:latest"
        assert k8s["job_namespace"] == "earthgpt" and k8s["env_secrets"] == ["earthgpt-s3", "earthgpt-mlflow"]
        assert k8s["volumes"][0]["persistent_volume_claim"]["claim_name"] == "earthgpt-shared"
    settings = load_settings("cluster")
    assert settings.storage.mmrs.startswith("s3://") and settings.mlflow.uri.startswith("http://")
    assert settings.compute.processes == 8 and settings.compute.strategy == "deepspeed"


def _step_job(defs, asset: str):
    """The Kubernetes Job the k8s executor would create for an asset's step (from its op tags)."""
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    op = _ops(defs)[asset].op
    config = DagsterK8sJobConfig(job_image="registry.example.com/earthgpt-pipeline:latest",
                                 dagster_home="/opt/dagster/dagster_home")
    return construct_dagster_k8s_job(config, ["dagster", "api", "execute_step"], "step",
                                     user_defined_k8s_config=get_user_defined_k8s_config(op.tags))


def test_each_step_pod_gets_its_kinds_resources_and_gpu_nodes(cluster):
    training = _step_job(cluster, "earthgpt_model").spec.template.spec
    (container,) = training.containers
    assert container.resources.requests == {"cpu": "96", "memory": "960Gi", "nvidia.com/gpu": "8"}
    assert container.resources.limits == {"nvidia.com/gpu": "8"}
    assert training.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert training.tolerations[0].key == "nvidia.com/gpu"
    inference = _step_job(cluster, "predictions/mar20_hbb").spec.template.spec
    assert inference.containers[0].resources.requests["nvidia.com/gpu"] == "1"
    conversion = _step_job(cluster, "mmrs/dota").spec.template.spec
    assert conversion.containers[0].resources.requests == {"cpu": "8", "memory": "32Gi"}
    assert conversion.node_selector is None and conversion.tolerations is None


def test_the_cluster_instance_launches_runs_with_the_k8s_run_launcher(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config  # the schema `dagster` checks at start
    from dagster_k8s import K8sRunLauncher

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused")
    config, _ = dagster_instance_config(str(REPO / "deploy" / "k8s"), "dagster.yaml")
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    kubeconfig = tmp_path / "kubeconfig"  # outside a cluster: a kubeconfig naming an unreachable API server
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "users": [{"name": "test", "user": {"token": "unused"}}]}))
    resolved = K8sRunLauncher(**(launcher["config"] | {"load_incluster_config": False,
                                                       "kubeconfig_file": str(kubeconfig)}))
    assert resolved.job_namespace == "earthgpt" and resolved.env_vars == ["EARTHGPT_PROFILE=cluster"]


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["demo", "cluster"])
def test_dagster_definitions_validate_passes(profile, tmp_path):
    env = {**os.environ, "EARTHGPT_PROFILE": profile, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
                           "pipelines.definitions"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr


# --- the GPU pool ----------------------------------------------------------------------------------------------
def test_a_gpu_step_waits_while_another_run_holds_the_gpu(tmp_path, monkeypatch):
    """dagster.yaml's pool limit: a step of the gpu pool starts only when no other step of it runs."""
    (tmp_path / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    started = []

    @dg.asset(pool="gpu")
    def on_the_gpu():
        started.append(time.monotonic())

    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("gpu")
        assert storage.claim_concurrency_slot("gpu", "other-run", "training").is_claimed
        worker = threading.Thread(target=dg.materialize, args=([on_the_gpu],), kwargs={"instance": instance})
        worker.start()
        time.sleep(3)
        assert started == []  # waiting for the slot
        freed = time.monotonic()
        storage.free_concurrency_slots_for_run("other-run")
        worker.join(timeout=60)
        assert started and started[0] >= freed
