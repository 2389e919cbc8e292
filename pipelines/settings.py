"""params.yaml -> one typed, frozen `Settings`, validated once, shared by Dagster, the CLI and DVC stages.

The active profile is `EARTHGPT_PROFILE`, else the file's `profile` key. Every key is checked against the
settings it feeds (declared next to the code that uses them): an unknown or misspelt key is an error that
names it and the keys allowed there. Relative local paths are resolved against the repository root; any path
may be an s3:// URL. Overrides are dotted keys (`train.stage3.lr=0.02`), from `earthgpt ... --set`, a
Dagster run's config, or `EARTHGPT_SET` for the Dagster code location, validated the same way.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from evaluation.settings import EvaluationSettings
from mmrs.build import ConversionSettings
from mmrs.dvc import VersioningSettings
from mmrs.registry import SOURCES
from mmrs.settings import SettingsError, from_mapping, to_mapping, with_overrides
from mmrs.synthetic.corpus import SampleCorpusSettings
from models.distributed import DistributedConfig
from models.stages import TrainSettings, WeightFolders
from models.tracking import TrackingSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO_ROOT / "params.yaml"


@dataclass(frozen=True)
class StorageSettings:
    """Where data lives (params.yaml `storage`)."""

    sample: str = "data/sample"  # the generated sample corpus, one folder per imitated dataset
    raw: str = "data/sample"  # the folder holding each raw release's own top folder
    raw_roots: dict[str, str] = field(default_factory=dict)  # per-source release folders, e.g. {dota: s3://b/DOTA}
    mmrs: str = "data/mmrs"  # converted shards, manifests, mmrs_1m.json
    models: str = "data/models"  # tokenizer, checkpoints, saved models (models.layout)
    checkpoints: str | None = None  # training checkpoints, if not under `models` (DeepSpeed needs a filesystem)
    eval: str = "data/eval"  # benchmark results and the paper's tables

    def model_layout(self):
        from models.layout import ModelLayout

        return ModelLayout(self.models, self.checkpoints)


@dataclass(frozen=True)
class MmrsSettings:
    """params.yaml `mmrs`: which sources the graph holds, and how they are converted."""

    sources: tuple[str, ...] | Literal["all"] = "all"
    conversion: ConversionSettings = field(default_factory=ConversionSettings)

    @property
    def enabled(self) -> list[str]:
        return list(SOURCES) if self.sources == "all" else list(self.sources)


@dataclass(frozen=True)
class EvaluationSection:
    """params.yaml `evaluation`: which benchmarks the graph holds, and how they are run."""

    benchmarks: tuple[str, ...] | Literal["all"] = "all"
    protocol: EvaluationSettings = field(default_factory=EvaluationSettings)


@dataclass(frozen=True)
class ReleaseSensorSettings:
    """The sensor that lists every raw release and requests raw/<source> and mmrs/<source> when one changed."""

    running: bool = False  # started with the code location (else switched on in the UI)
    interval_seconds: int = 300  # between ticks
    time_budget_seconds: float = 40.0  # listing per tick; Dagster cancels a sensor evaluation after 60 s


@dataclass(frozen=True)
class AutomationSettings:
    """params.yaml `automation`: what reacts to change without a person (pipelines/sensors.py)."""

    release_sensor: ReleaseSensorSettings = field(default_factory=ReleaseSensorSettings)
    mmrs_1m_follows_sources: bool = True  # the declarative-automation sensor for mmrs_1m starts running
    retraining_cron: str = "0 3 * * 0"  # the retraining schedule; it skips a tick when nothing upstream changed
    retraining_running: bool = False  # switched on where a GPU pool is attached
    evaluate_new_models: bool = True  # a new earthgpt_model starts evaluation_job
    failures: str = ".state/failures"  # one JSON record per failed run (local folder or s3://)
    failure_webhook_env: str = "EARTHGPT_FAILURE_WEBHOOK"  # the environment variable holding a webhook URL


@dataclass(frozen=True)
class RetrySettings:
    """Retries of steps bound to the object store (transient errors only), with backoff."""

    max_retries: int = 3
    delay_seconds: float = 10.0  # before the first retry
    backoff: Literal["exponential", "linear"] = "exponential"


@dataclass(frozen=True)
class StepResources:
    """A Kubernetes step pod: resource requests (the GPUs also as the limit) and where it may run."""

    cpu: str = "1"
    memory: str = "4Gi"
    gpus: int = 0  # nvidia.com/gpu
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, str], ...] = ()


def _default_steps() -> dict[str, StepResources]:
    return {"default": StepResources(), "conversion": StepResources(cpu="4", memory="16Gi"),
            "training": StepResources(cpu="8", memory="64Gi", gpus=1), "inference": StepResources(gpus=1)}


@dataclass(frozen=True)
class KubernetesSettings:
    """The cluster's step pods (dagster-k8s): image, namespace, secrets, and resources per kind of step."""

    image: str = "earthgpt-pipeline:latest"
    namespace: str = "earthgpt"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str | None = None
    env_secrets: tuple[str, ...] = ()  # Kubernetes secrets holding S3 and MLflow credentials
    max_concurrent: int = 32  # step pods of one run at a time
    volume_claim: str | None = None  # a ReadWriteMany PersistentVolumeClaim mounted in every step pod
    volume_mount: str = "/shared"  # where (storage.checkpoints lives there: DeepSpeed writes folders)
    steps: dict[str, StepResources] = field(default_factory=_default_steps)  # default, conversion, training, ...

    def __post_init__(self) -> None:
        unknown = sorted(set(self.steps) - set(_default_steps()))
        if unknown:
            raise ValueError(f"steps: unknown kind {unknown[0]!r}; kinds: {', '.join(_default_steps())}")

    def resources(self, kind: str) -> StepResources:
        return self.steps.get(kind) or self.steps.get("default") or StepResources()


@dataclass(frozen=True)
class OrchestrationSettings:
    """params.yaml `orchestration`: where and how many steps run at once (pipelines/executors.py).

    executor: of whole-graph runs (`dagster asset materialize --select '*'`, the UI). in_process: one
        process, steps in order; multiprocess: a process per step, `concurrency` at once; k8s: a pod per step.
    concurrency: steps at once in the conversion runs (mmrs_job and the release sensor's runs) and in
        multiprocess whole-graph runs.
    """

    executor: Literal["in_process", "multiprocess", "k8s"] = "in_process"
    concurrency: int = 2
    retries: RetrySettings = field(default_factory=RetrySettings)
    kubernetes: KubernetesSettings | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.executor == "k8s" and self.kubernetes is None:
            raise ValueError("executor 'k8s' needs the kubernetes section")


@dataclass(frozen=True)
class Settings:
    """One profile of params.yaml."""

    storage: StorageSettings = field(default_factory=StorageSettings)
    mlflow: TrackingSettings = field(default_factory=TrackingSettings)
    compute: DistributedConfig = field(default_factory=DistributedConfig)
    sample_corpus: SampleCorpusSettings = field(default_factory=SampleCorpusSettings)
    mmrs: MmrsSettings = field(default_factory=MmrsSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    automation: AutomationSettings = field(default_factory=AutomationSettings)
    orchestration: OrchestrationSettings = field(default_factory=OrchestrationSettings)
    versioning: VersioningSettings = field(default_factory=lambda: VersioningSettings(dvc=None))

    @property
    def uses_sample_corpus(self) -> bool:
        """Whether the raw releases are the generated sample corpus (its assets then feed raw/<source>)."""
        return self.storage.raw == self.storage.sample


def active_profile(path: Path = PARAMS_FILE) -> str:
    return os.environ.get("EARTHGPT_PROFILE") or _document(path)["profile"]


def load_settings(profile: str | None = None, overrides: Mapping[str, Any] | None = None,
                  path: Path = PARAMS_FILE) -> Settings:
    """The settings of `profile` (default: active_profile()) with dotted-key `overrides` applied."""
    return _load(path, profile or active_profile(path), json.dumps(dict(overrides or {}), sort_keys=True))


def environment_overrides(variable: str = "EARTHGPT_SET") -> dict[str, Any]:
    """Dotted-key overrides from the environment, for a code location that takes no arguments:
    EARTHGPT_SET="orchestration.concurrency=4 train.stage3.lr=0.02" (shell words, each key=value)."""
    return dict(parse_override(item) for item in shlex.split(os.environ.get(variable, "")))


def parse_override(text: str) -> tuple[str, Any]:
    """'train.stage3.lr=0.02' -> ('train.stage3.lr', 0.02): the value is read as YAML (numbers, lists, null)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SettingsError(f"an override is key=value, got {text!r}")
    return key.strip(), yaml.safe_load(value) if value.strip() else ""


def settings_document(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain data (for run metadata, MLflow artifacts and `earthgpt settings`)."""
    return to_mapping(settings)


@cache
def _document(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def _load(path: Path, profile: str, overrides: str) -> Settings:
    """Cached per (file, profile, overrides as sorted JSON)."""
    profiles = _document(path).get("profiles", {})
    if profile not in profiles:
        raise SettingsError(f"profile {profile!r} is not in {path} (have: {', '.join(profiles)})")
    settings = from_mapping(Settings, profiles[profile], where=f"profiles.{profile}")
    settings = with_overrides(settings, json.loads(overrides))
    _check_names(settings)
    _check_storage(settings)
    return resolve_paths(settings)


def _check_names(settings: Settings) -> None:
    """Source and benchmark names must exist (a typo would silently leave one out)."""
    from evaluation.benchmarks import BENCHMARKS

    unknown = [s for s in settings.mmrs.enabled if s not in SOURCES]
    stages = [s for s in (settings.train.text, settings.train.stage2, settings.train.stage3) if s is not None]
    unknown += [name for stage in stages for name in (stage.weights or {}) if name not in SOURCES]
    unknown += [name for stage in stages if stage.sources != "mmrs_1m" for name in stage.sources
                if name not in SOURCES]
    if unknown:
        raise SettingsError(f"unknown source {unknown[0]!r}; registered sources: {', '.join(SOURCES)}")
    benchmarks = settings.evaluation.benchmarks
    if benchmarks != "all":
        missing = [b for b in benchmarks if b not in BENCHMARKS]
        if missing:
            raise SettingsError(f"unknown benchmark {missing[0]!r}; benchmarks: {', '.join(BENCHMARKS)}")


def _check_storage(settings: Settings) -> None:
    """Refuse URLs where a local filesystem is needed: the sample corpus generator writes local files, and
    DeepSpeed saves sharded checkpoints with torch.save into folders."""
    if "://" in settings.storage.sample:
        raise SettingsError(f"storage.sample must be a local folder (the sample corpus is generated with local "
                            f"file writes), not {settings.storage.sample}")
    checkpoints = settings.storage.checkpoints or settings.storage.models
    if settings.compute.strategy == "deepspeed" and "://" in checkpoints and not checkpoints.startswith("file://"):
        raise SettingsError(f"compute.strategy 'deepspeed' writes checkpoint folders to a filesystem, not "
                            f"{checkpoints}: set storage.checkpoints to a local or shared folder")


def repo_path(value: str) -> str:
    """A local path relative to the repo root becomes absolute; URLs (s3://...) pass unchanged."""
    if "://" in value or os.path.isabs(value):
        return value
    return str(REPO_ROOT / value)


def _tracking_uri(uri: str) -> str:
    """sqlite:///relative/path.db -> sqlite:////abs/path.db (sqlite:////abs stays)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + repo_path(uri.removeprefix("sqlite:///"))
    return uri


def resolve_paths(settings: Settings) -> Settings:
    """Every local path made absolute against the repository root."""
    storage = settings.storage
    storage = replace(storage, sample=repo_path(storage.sample), raw=repo_path(storage.raw),
                      raw_roots={k: repo_path(v) for k, v in storage.raw_roots.items()},
                      mmrs=repo_path(storage.mmrs), models=repo_path(storage.models), eval=repo_path(storage.eval),
                      checkpoints=None if storage.checkpoints is None else repo_path(storage.checkpoints))
    tracking = replace(settings.mlflow, uri=_tracking_uri(settings.mlflow.uri),
                       artifacts=None if settings.mlflow.artifacts is None else repo_path(settings.mlflow.artifacts))
    weights = settings.train.model.weights
    weights = WeightFolders(**{k: None if v is None else repo_path(v) for k, v in to_mapping(weights).items()})
    train = replace(settings.train, model=replace(settings.train.model, weights=weights))
    automation = replace(settings.automation, failures=repo_path(settings.automation.failures))
    versioning = replace(settings.versioning, repo=repo_path(settings.versioning.repo),
                         dvc=None if settings.versioning.dvc is None else repo_path(settings.versioning.dvc))
    return replace(settings, storage=storage, mlflow=tracking, train=train, automation=automation,
                   versioning=versioning)
