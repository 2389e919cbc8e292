"""The training stages as plain functions, the same for the Dagster assets, `earthgpt train` and a notebook.

    train_tokenizer(ctx)          tiny: a BPE trained on the MMRS-1M text; paper: LLaMA's own tokenizer
    run_stage(ctx, "text")        tiny only: the stand-in for LLaMA's pretraining (causal LM, no image)
    run_stage(ctx, "stage2")      cross-modal alignment (paper Sec. III-C)
    run_stage(ctx, "stage3")      unified instruction tuning (paper Sec. III-D)
    register_model(ctx, outcome)  the stage-3 model as a registered MLflow model version

Each stage starts from the previous stage's saved model (models.layout), trains through models.trainer and
records its completed run beside the model (`run.json`). A stage whose run key (settings, data, tokenizer,
model config, starting weights, the training code's version; see models.trainer.run_key) matches a completed
run is not trained again: `run_stage` returns that run (`reused`), so re-materializing an unchanged pipeline
adds no MLflow run and no model version. Another key trains afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import fsspec
import mlflow
import torch
import yaml

from mmrs.code_version import code_version
from mmrs.settings import to_mapping
from mmrs.shards import iter_records, join, read_json, write_json
from mmrs.templates import without_image
from models.config import EarthGPTConfig, paper, tiny
from models.data import DataConfig, MMRSDataModule
from models.distributed import DistributedConfig, apply_activation_checkpointing, trainer_kwargs
from models.earthgpt import EarthGPT
from models.io import load_model, writable_folder
from models.layout import ModelLayout, Stage
from models.numerics import set_cpu_threads
from models.progress import loss_curve_png
from models.tokenization import load_tokenizer, save_tokenizer, tokenizer_digest, train_bpe_tokenizer
from models.tracking import TrackingSettings, describe_model_version, git_commit, log_earthgpt_model
from models.trainer import StageConfig, StageResult, lead_rank, run_key, train_stage
from models.training import OptimConfig
from models.weights import localize

PREVIOUS: dict[Stage, Stage | None] = {"text": None, "stage2": "text", "stage3": "stage2"}


@dataclass(frozen=True)
class WeightFolders:
    """The paper preset's pretrained weights (local folders or s3:// prefixes)."""

    llama: str | None = None  # LLaMA-2-7B in Hugging Face format (also its tokenizer)
    dinov2: str | None = None  # DINOv2 ViT-L/14
    convnext: str | None = None  # CLIP ConvNeXt-L (open_clip checkpoint)


@dataclass(frozen=True)
class ModelSettings:
    """How a new model is made (params.yaml `train.model`)."""

    preset: Literal["tiny", "paper"] = "tiny"
    seed: int = 0  # the random init (tiny: every weight; paper: the projection)
    tokenizer_vocab: int = 1024  # tiny: size of the BPE trained on the MMRS text
    max_text_tokens: int | None = None  # text budget per sample; None: the preset's
    weights: WeightFolders = field(default_factory=WeightFolders)

    def __post_init__(self) -> None:
        missing = [k for k, v in dataclasses.asdict(self.weights).items() if v is None]
        if self.preset == "paper" and missing:
            raise ValueError(f"the paper preset needs weight folders: set weights.{', weights.'.join(missing)}")

    def config(self, vocab_size: int) -> EarthGPTConfig:
        if self.preset == "paper":
            base = paper(self.weights.llama, self.weights.dinov2, self.weights.convnext)
        else:
            base = tiny()
            base = dataclasses.replace(base, llm=dataclasses.replace(base.llm, vocab_size=vocab_size))
        return base if self.max_text_tokens is None else dataclasses.replace(base, max_text_tokens=self.max_text_tokens)


@dataclass(frozen=True)
class StageSettings:
    """One training stage (params.yaml `train.text`, `train.stage2`, `train.stage3`).

    tasks: the record tasks trained on ("all", or e.g. [captioning]).
    sources: "mmrs_1m" (its training shards), or converted sources by name (stage 2 of real runs: COCO Caption
        and LAION, which are not part of MMRS-1M).
    weights: source -> mixing ratio (None: by size; 0 leaves a source out).
    validate_every: steps between validation losses on held-out records (0: none); holdout_permille of the
        training records (by id hash) are held out of training for it, val_samples of them used.
    """

    tasks: tuple[str, ...] | Literal["all"] = "all"
    sources: tuple[str, ...] | Literal["mmrs_1m"] = "mmrs_1m"
    weights: dict[str, float] | None = None
    batch_size: int = 8
    max_steps: int = 1000
    lr: float = 2e-5
    min_lr: float = 0.0
    weight_decay: float = 0.0
    warmup_steps: int = 100
    checkpoint_every: int = 100
    validate_every: int = 0
    holdout_permille: int = 0
    val_samples: int = 256
    num_workers: int = 0  # DataLoader processes decoding images
    seed: int = 0  # data order (the model's random init is train.model.seed)
    prompt_variation: bool = False  # tiny preset only: instructions in training paraphrases (models.prompt_variation)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size, max_steps and checkpoint_every must be >= 1")
        if self.validate_every and not self.holdout_permille:
            raise ValueError("validate_every needs held-out records: set holdout_permille > 0")

    def optim(self) -> OptimConfig:
        return OptimConfig(lr=self.lr, min_lr=self.min_lr, weight_decay=self.weight_decay,
                           warmup_steps=self.warmup_steps, max_steps=self.max_steps)


@dataclass(frozen=True)
class TrainSettings:
    """params.yaml `train`: the model and its stages (`text` only for the tiny preset)."""

    model: ModelSettings = field(default_factory=ModelSettings)
    stage2: StageSettings = field(default_factory=StageSettings)
    stage3: StageSettings = field(default_factory=StageSettings)
    text: StageSettings | None = None

    def __post_init__(self) -> None:
        varied = [name for name in ("stage2", "stage3") if getattr(self, name).prompt_variation]
        if self.model.preset == "paper" and varied:
            raise ValueError(f"prompt_variation is the tiny preset's remedy; the paper preset trains on the paper's "
                             f"wording: turn it off in train.{varied[0]}")
        if self.model.preset == "paper" and self.text is not None:
            raise ValueError("train.text is the tiny preset's stand-in for LLaMA's pretraining; the paper preset "
                             "starts from LLaMA-2 itself: remove train.text")

    def stage(self, stage: Stage) -> StageSettings:
        settings = getattr(self, stage)
        if settings is None:
            raise ValueError(f"no settings for stage {stage!r} (train.{stage} is not set)")
        return settings

    @property
    def trains_text(self) -> bool:
        return self.text is not None


@dataclass(frozen=True)
class TrainingContext:
    """Everything a stage needs besides its name: settings, where things are, where MLflow tracks.

    tags: extra MLflow run tags (Dagster run id, dvc.lock hash, ...); document: the resolved settings to log
    with each run (default: this context's own)."""

    train: TrainSettings
    layout: ModelLayout
    mmrs_out: str
    tracking: TrackingSettings
    distributed: DistributedConfig = field(default_factory=lambda: DistributedConfig(precision="32-true"))
    tags: Mapping[str, str] = field(default_factory=dict)
    document: Mapping[str, Any] | None = None

    def settings_document(self) -> dict[str, Any]:
        if self.document is not None:
            return dict(self.document)
        return {"train": to_mapping(self.train), "distributed": to_mapping(self.distributed),
                "mlflow": to_mapping(self.tracking), "storage": {"models": self.layout.root, "mmrs": self.mmrs_out}}


@dataclass
class StageOutcome:
    """A completed stage run (also what `run.json` holds)."""

    stage: str
    run_key: str
    run_id: str
    model_dir: str
    steps: int
    losses: list[float]
    val_losses: list[tuple[int, float]]
    trainable_tensors: int
    trainable_parameters: int
    resumed: bool = False  # continued from a checkpoint of the same run
    reused: bool = False  # not trained now: a completed run of the same key was found
    model: EarthGPT | None = field(default=None, repr=False, compare=False)  # the trained model, when trained now

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("reused", "model")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageOutcome:
        return cls(**{**data, "val_losses": [tuple(v) for v in data.get("val_losses", [])]})


# --- tokenizer -----------------------------------------------------------------------------------------------
def training_texts(mmrs_out: str) -> Iterator[str]:
    """Every turn of MMRS-1M's training records, without the image token."""
    merged = read_json(join(mmrs_out, "mmrs_1m.json"))
    for shard in merged["shards"]:
        for record in iter_records(join(mmrs_out, shard["path"])):
            for turn in record["conversations"]:
                yield without_image(turn["value"])


def train_tokenizer(ctx: TrainingContext):
    """The tokenizer every stage uses, saved to the layout: LLaMA's own (paper), or a byte-level BPE trained on
    the MMRS-1M training text (tiny). Returns it."""
    model = ctx.train.model
    if model.preset == "paper":
        tokenizer = load_tokenizer(model.weights.llama)
    else:
        tokenizer = train_bpe_tokenizer(training_texts(ctx.mmrs_out), vocab_size=model.tokenizer_vocab)
    with writable_folder(ctx.layout.tokenizer) as folder:
        save_tokenizer(tokenizer, folder)
    return tokenizer


# --- models ----------------------------------------------------------------------------------------------------
def new_model(model: ModelSettings, tokenizer) -> EarthGPT:
    """A new model: random-init weights (all of them for tiny, the projection for paper) drawn from
    `model.seed`, so that the same settings give the same model in every process."""
    torch.manual_seed(model.seed)
    return EarthGPT(model.config(len(tokenizer)))


def starting_model(ctx: TrainingContext, stage: Stage):
    """(model, tokenizer) a stage starts from: the previous stage's saved model, or a new one."""
    previous = PREVIOUS[stage]
    if previous == "text" and not ctx.train.trains_text:
        previous = None
    if previous is not None:
        return load_model(ctx.layout.model(previous))
    tokenizer = load_tokenizer(ctx.layout.tokenizer)
    return new_model(ctx.train.model, tokenizer), tokenizer


# --- one stage -------------------------------------------------------------------------------------------------
def data_config(ctx: TrainingContext, stage: Stage) -> DataConfig:
    settings = ctx.train.stage(stage)
    tasks = None if settings.tasks == "all" else settings.tasks
    if settings.sources == "mmrs_1m":
        where: dict[str, Any] = {"manifest": join(ctx.mmrs_out, "mmrs_1m.json")}
    else:
        where = {"sources": tuple(join(ctx.mmrs_out, name) for name in settings.sources)}
    return DataConfig(**where, tasks=tasks, batch_size=settings.batch_size, images=stage != "text",
                      weights=settings.weights, seed=settings.seed, num_workers=settings.num_workers,
                      holdout_permille=settings.holdout_permille, val_samples=settings.val_samples,
                      prompt_variation=settings.prompt_variation)


def data_version(config: DataConfig) -> tuple[str, list[list[str]]]:
    """(content hash, [source, shard path, sha256] in the order the stream mixes them) of the training data."""
    if config.manifest is not None:
        merged = read_json(config.manifest)
        return merged["content_hash"], [[s["source"], s["path"], s["sha256"]] for s in merged["shards"]]
    shards, hashes = [], []
    for folder in config.sources:
        manifest = read_json(join(folder, "manifest.json"))
        hashes.append(manifest["content_hash"])
        shards += [[manifest["source"], s["path"], s["sha256"]] for s in manifest["shards"]
                   if s["split"] in manifest["train_splits"]]
    return hashlib.sha256(json.dumps(hashes).encode()).hexdigest(), shards


def run_stage(ctx: TrainingContext, stage: Stage, callbacks: list | None = None) -> StageOutcome:
    """Train one stage from the previous stage's model (or reuse its completed run of the same key)."""
    settings = ctx.train.stage(stage)
    set_cpu_threads(ctx.distributed.cpu_threads)
    model, tokenizer = starting_model(ctx, stage)
    data = data_config(ctx, stage)
    content_hash, shards = data_version(data)
    config = StageConfig(stage, ctx.layout.checkpoints(stage), ctx.layout.model(stage), settings.optim(),
                         checkpoint_every=settings.checkpoint_every, val_every=settings.validate_every or None,
                         seed=settings.seed, trainer=trainer_kwargs(ctx.distributed))
    # resume only a run of these settings, data, starting weights and code; anything else retrains. The shards
    # in their merged order (the stream mixes sources in it), not only the order-free content hash; the GPU
    # count and the ranks (in the trainer settings: they split the stream); the training code's version.
    config.run_key = run_key(config, model, {
        "shards": hashlib.sha256(json.dumps(shards).encode()).hexdigest(), "tokenizer": tokenizer_digest(tokenizer),
        "devices": torch.cuda.device_count(), "code": training_code_version(),
        "data": dataclasses.asdict(data) | {"manifest": None, "sources": [s[0] for s in shards]}})
    completed = completed_run(ctx.layout, stage)
    if completed is not None and completed.run_key == config.run_key:
        return dataclasses.replace(completed, reused=True)
    apply_activation_checkpointing(model, ctx.distributed)
    manifest_url = data.manifest or data.sources[0]

    def log_inputs(run_id: str) -> None:
        _log_settings(ctx, stage, data)
        _log_dataset(manifest_url, content_hash)

    result = train_stage(model, tokenizer, MMRSDataModule(data, model.config, tokenizer), config, ctx.tracking,
                         tags={"data_version": content_hash, **ctx.tags}, callbacks=callbacks,
                         on_run_start=log_inputs)
    outcome = _outcome(stage, config.run_key, result, model)
    if not lead_rank():  # under torchrun only rank 0 tracks and writes
        return outcome
    if outcome.losses:
        mlflow.set_tracking_uri(ctx.tracking.uri)
        mlflow.MlflowClient().log_image(outcome.run_id, _png_image(loss_curve_png(
            outcome.losses, outcome.val_losses, f"{stage}: run {outcome.run_id[:8]}")), LOSS_CURVE)
    if outcome.steps >= settings.max_steps:  # a run stopped early is resumed next time, not reused
        write_json(ctx.layout.run_record(stage), outcome.to_dict())
    return outcome


def training_code_version() -> str:
    """The version of the code a stage runs (models/ and what it imports): part of every run key, so an edit
    to the model, the data pipeline or the trainer trains afresh."""
    return code_version("models.stages")


LOSS_CURVE = "loss_curve.png"  # in each stage's MLflow run


def _png_image(png: bytes):
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


def completed_run(layout: ModelLayout, stage: Stage) -> StageOutcome | None:
    """The stage's recorded completed run, if its model folder is there too."""
    fs, record = fsspec.core.url_to_fs(layout.run_record(stage))
    if not fs.exists(record) or not fs.exists(fsspec.core.url_to_fs(layout.model(stage))[1]):
        return None
    return StageOutcome.from_dict(read_json(layout.run_record(stage)))


def _outcome(stage: Stage, key: str, result: StageResult, model: EarthGPT) -> StageOutcome:
    return StageOutcome(stage, key, result.run_id, result.model_dir, result.steps, result.losses, result.val_losses,
                        trainable_tensors=len(result.trainable),
                        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
                        resumed=result.resumed, model=model)


def _log_settings(ctx: TrainingContext, stage: Stage, data: DataConfig) -> None:
    """The whole resolved configuration: flat params (settings.*, data.*) and the settings as YAML."""
    document = ctx.settings_document()
    params = {f"settings.{k}": v for k, v in _flatten(document).items()}
    params |= {f"data.{k}": v for k, v in _flatten(to_mapping(data)).items()}
    params["stage_settings"] = json.dumps(to_mapping(ctx.train.stage(stage)), sort_keys=True)
    mlflow.log_params({k: _param(v) for k, v in params.items()})
    mlflow.log_text(yaml.safe_dump(document, sort_keys=False), "settings.yaml")


def _log_dataset(manifest_url: str, content_hash: str) -> None:
    """The training data as an MLflow dataset input: its manifest and content hash."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    source = resolve_dataset_source(manifest_url)
    mlflow.log_input(MetaDataset(source, name="mmrs_1m", digest=content_hash[:16]), context="training")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def _param(value: Any) -> str:
    """MLflow params are strings of at most 6,000 characters."""
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= 6000 else text[:5990] + " [cut]"


# --- registration ------------------------------------------------------------------------------------------
def register_model(ctx: TrainingContext, outcome: StageOutcome) -> dict[str, Any]:
    """Log the stage-3 model folder as a pyfunc model in its MLflow run and register a version, once per run:
    the registration recorded for the same run is returned as it is."""
    url = ctx.layout.registration
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        registration = read_json(url)
        if registration.get("run_id") == outcome.run_id:
            return registration
    mlflow.set_tracking_uri(ctx.tracking.uri)
    with mlflow.start_run(run_id=outcome.run_id):
        info = log_earthgpt_model(localize(outcome.model_dir, "EarthGPT model"),
                                  registered_model_name=ctx.tracking.registered_model)
    registration = {"tracking_uri": ctx.tracking.uri, "run_id": outcome.run_id, "model_uri": info.model_uri,
                    "registered_model": ctx.tracking.registered_model, "version": info.registered_model_version}
    data_version = mlflow.get_run(outcome.run_id).data.tags.get("data_version", "unknown")
    describe_model_version(
        ctx.tracking, info.registered_model_version,
        f"EarthGPT after stage 3 (unified instruction tuning), preset {ctx.train.model.preset}: {outcome.steps} "
        f"steps on MMRS-1M data version {data_version[:16]}, final training loss "
        f"{outcome.losses[-1] if outcome.losses else float('nan'):.4f}. Not evaluated yet.",
        {"stage": "stage3", "preset": ctx.train.model.preset, "data_version": data_version,
         "run_key": outcome.run_key, "git_commit": git_commit()})
    write_json(url, registration)
    return registration
