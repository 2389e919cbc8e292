"""Where steps run, from params.yaml `orchestration`: the executors of the jobs, and each kind of step's
placement (Kubernetes pod resources and node selectors as op tags, the GPU pool, retries with backoff).

- Whole-graph runs (the UI, `dagster asset materialize --select '*'`): `orchestration.executor`. The demo
  keeps one process: a process per step would import torch, transformers and Dagster again for each.
- Conversion runs (`mmrs_job`, and the release sensor's runs): a process per step, `concurrency` at once,
  started from a forkserver that has imported the pipeline once (concurrency 1: one process, the demo's
  choice, as its sources convert in less time than a step's process costs); on a cluster a pod per step.
- `k8s`: dagster-k8s's step executor; each step's pod gets its kind's requests and node selector from
  its op tags (`dagster-k8s/config`), training and inference the GPUs; the run launcher is the
  instance's (deploy/k8s/dagster.yaml). See docs/scale-out.md.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.placement import GPU_POOL, Placement, Placements, retry_policy
from pipelines.settings import KubernetesSettings, OrchestrationSettings, StepResources

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"


def k8s_step_config(resources: StepResources) -> dict[str, Any]:
    """The `dagster-k8s/config` of a step: container requests (GPUs also as limits), node selector,
    tolerations."""
    requests = {"cpu": resources.cpu, "memory": resources.memory}
    limits: dict[str, str] = {}
    if resources.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(resources.gpus)
    container: dict[str, Any] = {"resources": {"requests": requests} | ({"limits": limits} if limits else {})}
    pod: dict[str, Any] = {}
    if resources.node_selector:
        pod["node_selector"] = dict(resources.node_selector)
    if resources.tolerations:
        pod["tolerations"] = [dict(t) for t in resources.tolerations]
    return {"container_config": container} | ({"pod_spec_config": pod} if pod else {})


def placements(orchestration: OrchestrationSettings) -> Placements:
    """Each kind of step's placement: retries on the object-store-bound kinds, the GPU pool for the GPU-bound
    ones, and on Kubernetes each kind's pod resources."""
    retries = orchestration.retries
    policy = retry_policy(retries.max_retries, retries.delay_seconds, retries.backoff)
    k8s = orchestration.kubernetes if orchestration.executor == "k8s" else None

    def tags(kind: str) -> dict[str, Any]:
        return {K8S_CONFIG_TAG: k8s_step_config(k8s.resources(kind))} if k8s else {}

    return Placements(conversion=Placement(tags("conversion"), retry_policy=policy),
                      training=Placement(tags("training"), pool=GPU_POOL),
                      inference=Placement(tags("inference"), pool=GPU_POOL, retry_policy=policy),
                      default=Placement(tags("default"), retry_policy=policy))


def k8s_executor(k8s: KubernetesSettings) -> dg.ExecutorDefinition:
    """dagster-k8s's step executor for this cluster: image, namespace, secrets, pods at once."""
    from dagster_k8s import k8s_job_executor

    config: dict[str, Any] = {"job_image": k8s.image, "job_namespace": k8s.namespace,
                              "image_pull_policy": k8s.image_pull_policy, "max_concurrent": k8s.max_concurrent,
                              "env_vars": ["EARTHGPT_PROFILE"],  # the step pods load the run's profile
                              "env_secrets": list(k8s.env_secrets)}
    if k8s.service_account:
        config["service_account_name"] = k8s.service_account
    if k8s.volume_claim:
        config["volumes"] = [{"name": "shared", "persistent_volume_claim": {"claim_name": k8s.volume_claim}}]
        config["volume_mounts"] = [{"name": "shared", "mount_path": k8s.volume_mount}]
    return k8s_job_executor.configured(config, name="k8s")


def multiprocess_executor(concurrency: int) -> dg.ExecutorDefinition:
    """A process per step, `concurrency` at once, forked from a server that imported the pipeline once
    (a fresh interpreter per step would spend seconds importing torch and Dagster)."""
    return dg.multiprocess_executor.configured(
        {"max_concurrent": concurrency,
         "start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}},
        name="multiprocess")


def default_executor(orchestration: OrchestrationSettings) -> dg.ExecutorDefinition:
    """The executor of whole-graph runs."""
    if orchestration.executor == "k8s":
        return k8s_executor(orchestration.kubernetes)
    if orchestration.executor == "multiprocess":
        return multiprocess_executor(orchestration.concurrency)
    return dg.in_process_executor


def conversion_executor(orchestration: OrchestrationSettings) -> dg.ExecutorDefinition:
    """The executor of conversion runs: the sources in parallel (one process when concurrency is 1: each
    step's own process costs about a second, more than the demo's sources take; bench/conversion_executors.py)."""
    if orchestration.executor == "k8s":
        return k8s_executor(orchestration.kubernetes)
    if orchestration.concurrency == 1:
        return dg.in_process_executor
    return multiprocess_executor(orchestration.concurrency)
