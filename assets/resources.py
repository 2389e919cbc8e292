"""Dagster resources: what differs between environments (laptop, CI, S3 + a remote MLflow, a GPU cluster).

`Definitions` builds them from the profile's settings (`pipelines/definitions.py`); a run can override any
field under `resources:` in its config. Assets read paths, tracking and compute only from these.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import dagster as dg
import fsspec
from pydantic import create_model

from mmrs.readers.base import SourceSpec
from mmrs.settings import field_types, from_mapping, to_mapping
from mmrs.shards import join
from models.distributed import DistributedConfig
from models.layout import ModelLayout
from models.tracking import TrackingSettings

R = TypeVar("R", bound=dg.ConfigurableResource)


class StorageResource(dg.ConfigurableResource):
    """Where data lives: local folders or s3:// prefixes (params.yaml `storage`)."""

    sample: str
    raw: str
    raw_roots: dict[str, str] = {}
    mmrs: str
    models: str
    checkpoints: str | None = None
    eval: str

    def raw_root(self, spec: SourceSpec) -> str:
        """A source's raw release folder: its override, else <raw>/<the release's own folder name>."""
        return self.raw_roots.get(spec.name) or join(self.raw, spec.release_folder)

    @property
    def layout(self) -> ModelLayout:
        return ModelLayout(self.models, self.checkpoints)

    def eval_file(self, *parts: str) -> str:
        return join(self.eval, *parts)

    def exists(self, url: str) -> bool:
        fs, path = fsspec.core.url_to_fs(url)
        return fs.exists(path)


class TrackingResource(dg.ConfigurableResource):
    """Where MLflow tracks runs and registers models (params.yaml `mlflow`)."""

    uri: str
    artifacts: str | None = None
    experiment: str
    registered_model: str
    ui: str | None = None

    @property
    def settings(self) -> TrackingSettings:
        return from_mapping(TrackingSettings, {name: getattr(self, name) for name in field_types(TrackingSettings)})

    def run_url(self, run_id: str, path: str | None = None) -> str | None:
        """A link to a run (or an artifact of it) in the MLflow UI, when the settings give a UI address."""
        return self.settings.run_url(run_id, path)


class ComputeResource(dg.ConfigurableResource):
    """Where and how training runs (params.yaml `compute`: models.distributed.DistributedConfig's fields)."""

    strategy: str = "auto"
    zero_stage: int = 2
    offload_optimizer: bool = False
    precision: str = "bf16-mixed"
    gradient_accumulation: int = 1
    gradient_clip: float = 1.0
    micro_batch_size: int = 1
    activation_checkpointing: bool = False
    processes: int = 1
    cpu_threads: int | None = None

    @property
    def distributed(self) -> DistributedConfig:
        return from_mapping(DistributedConfig, {name: getattr(self, name) for name in field_types(DistributedConfig)})


class ModelLoaderResource(dg.ConfigurableResource):
    """Loads a saved model folder for evaluation once per process and folder version: every benchmark of a
    run shares one load."""

    device: str = "cpu"

    def load(self, folder: str):
        """(model, tokenizer) of `folder` (local or s3://), cached while its files stay the same."""
        from models.io import load_model

        key = (folder, self.device, _fingerprint(folder))
        with _CACHE_LOCK:
            if key not in _MODEL_CACHE:
                _MODEL_CACHE.clear()  # one model at a time: a 7B model is 14 GB
                _MODEL_CACHE[key] = load_model(folder, device=self.device)
            return _MODEL_CACHE[key]


_MODEL_CACHE: dict[tuple[str, str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def _fingerprint(folder: str) -> str:
    """Names, sizes and modification times (or ETags) of a folder's files."""
    fs, path = fsspec.core.url_to_fs(folder)
    if not fs.exists(path):
        raise FileNotFoundError(f"model folder not found: {folder}")
    entries = fs.find(path, detail=True)
    return "|".join(f"{name}:{info.get('size')}:{info.get('mtime') or info.get('ETag') or info.get('LastModified')}"
                    for name, info in sorted(entries.items()))


def with_defaults(cls: type[R], values: dict[str, Any]) -> R:
    """An instance of `cls` whose class defaults are `values`. Dagster fills the fields a run's config leaves
    out from the class defaults, not from the instance given to Definitions: without this, a run overriding
    one path would reset the others."""
    fields = {name: (cls.model_fields[name].annotation, value) for name, value in values.items()}
    return create_model(cls.__name__, __base__=cls, __doc__=cls.__doc__, **fields)()


def resources_from_settings(storage: Any, tracking: TrackingSettings, compute: DistributedConfig,
                            device: str = "cpu") -> dict[str, dg.ConfigurableResource]:
    """The resources of one environment, from its settings sections (each field overridable per run)."""
    return {"storage": with_defaults(StorageResource, to_mapping(storage)),
            "tracking": with_defaults(TrackingResource, to_mapping(tracking)),
            "compute": with_defaults(ComputeResource, to_mapping(compute)),
            "model_loader": with_defaults(ModelLoaderResource, {"device": device})}
