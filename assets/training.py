"""Dagster assets `tokenizer`, `pretrained_llm`, `aligned_model` (stage 2) and `earthgpt_model` (stage 3).

`pretrained_llm` is the paper's starting point, a pretrained LLaMA-2: the `paper` preset reads it from its
folder; the `tiny` preset has no such checkpoint, so it trains a stand-in (causal LM on the MMRS training
text, every LLM weight, no image; params.yaml `train.text`). Without it, stage 3's bias + shift tuning of a
random-init 2-layer LLM learns the answer formats but not to read the image.

Thin: the work is in models.tokenization, models.data, models.trainer; MLflow holds the runs, checkpoints
and, after stage 3, a registered pyfunc model version.
"""

# No `from __future__ import annotations` here: Dagster reads the config annotation at decoration time.

import dataclasses
import hashlib
import json
from pathlib import Path

import dagster as dg
import numpy as np
import torch

from mmrs.shards import iter_records, join, read_json
from models.config import paper, tiny
from models.data import DataConfig, MMRSDataModule
from models.distributed import DistributedConfig, apply_activation_checkpointing, trainer_kwargs
from models.earthgpt import EarthGPT
from models.image_transform import preprocess
from models.inference import GenerationOptions, predict
from models.io import load_model
from models.mlflow_logging import log_earthgpt_model
from models.tokenization import encode_prompt, load_tokenizer, save_tokenizer, train_bpe_tokenizer
from models.trainer import StageConfig, StageResult, TrackingConfig, all_finite, losses_fell, run_key, train_stage
from models.training import OptimConfig
from pipelines.params import load_params, repo_path

_PARAMS = load_params()
_TRAIN = _PARAMS["train"]
_MMRS_OUT = _PARAMS["mmrs"]["out"]
_CHECKS = ("finite_losses", "loss_fell", "reloads_and_generates")


class TrainConfig(dg.Config):
    """Where models go and where MLflow tracks them (defaults from params.yaml `train`)."""

    out: str = _TRAIN["out"]
    mmrs_out: str = _MMRS_OUT
    tracking_uri: str = _TRAIN["mlflow"]["uri"]
    artifacts: str = _TRAIN["mlflow"]["artifacts"]
    experiment: str = _TRAIN["mlflow"]["experiment"]
    registered_model: str = _TRAIN["mlflow"]["registered_model"]
    max_steps_text: int = _TRAIN["text"]["max_steps"] if "text" in _TRAIN else 0
    max_steps_stage2: int = _TRAIN["stage2"]["max_steps"]
    max_steps_stage3: int = _TRAIN["stage3"]["max_steps"]


def _tracking(config: TrainConfig, context: dg.AssetExecutionContext, manifest: dict) -> TrackingConfig:
    uri = config.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + repo_path(uri.removeprefix("sqlite:///"))
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return TrackingConfig(uri, config.experiment, artifact_location=repo_path(config.artifacts),
                          tags={"data_version": manifest["content_hash"], "dagster_run_id": context.run_id,
                                "dvc_lock": _dvc_lock_hash()})


def _dvc_lock_hash() -> str:
    lock = Path(repo_path("dvc.lock"))
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.exists() else "none"


def _training_texts(mmrs_out: str):
    merged = read_json(join(mmrs_out, "mmrs_1m.json"))
    for shard in merged["shards"]:
        for record in iter_records(join(mmrs_out, shard["path"])):
            for turn in record["conversations"]:
                yield turn["value"].replace("<image>\n", "")


def _sparkline(values: list[float], width: int = 60) -> str:
    if not values:
        return ""
    points = np.interp(np.linspace(0, len(values) - 1, min(width, len(values))), np.arange(len(values)), values)
    lo, hi = float(points.min()), float(points.max())
    bars = "▁▂▃▄▅▆▇█"
    return "".join(bars[int((p - lo) / max(hi - lo, 1e-9) * (len(bars) - 1))] for p in points)


def _stage_config(stage: str, config: TrainConfig, out: Path) -> StageConfig:
    params = _TRAIN[stage]
    max_steps = {"text": config.max_steps_text, "stage2": config.max_steps_stage2,
                 "stage3": config.max_steps_stage3}[stage]
    dist = DistributedConfig.from_dict(_TRAIN["distributed"])
    return StageConfig(stage, str(out / stage),
                       OptimConfig(lr=params["lr"], warmup_steps=params["warmup_steps"], max_steps=max_steps),
                       checkpoint_every=params["checkpoint_every"], trainer=trainer_kwargs(dist))


def _datamodule(stage: str, config: TrainConfig, model: EarthGPT, tokenizer) -> MMRSDataModule:
    params = _TRAIN[stage]
    tasks = None if params["tasks"] == "all" else tuple(params["tasks"])
    data = DataConfig(manifest=join(repo_path(config.mmrs_out), "mmrs_1m.json"), tasks=tasks,
                      batch_size=params["batch_size"], images=stage != "text", weights=params.get("weights"))
    return MMRSDataModule(data, model.config, tokenizer)


def _reloads_and_generates(result: StageResult, model: EarthGPT, tokenizer) -> tuple[bool, str]:
    """The saved folder reloads to the same logits and answers a question."""
    loaded, loaded_tok = load_model(result.model_dir)
    pixels = preprocess(np.full((64, 64, 3), 128, np.uint8), loaded.config).unsqueeze(0)
    prompt = encode_prompt(loaded_tok, [], "What is the category of this remote sensing image?")
    ids = torch.tensor([prompt])
    with torch.no_grad():
        same = torch.equal(loaded(pixels, ids, torch.ones_like(ids)).logits,
                           model.eval()(pixels, ids, torch.ones_like(ids)).logits)
    (answer,) = predict(loaded, loaded_tok, pixels, [prompt], GenerationOptions(max_new_tokens=8))
    return same and isinstance(answer, str), answer


def _result_metadata(result: StageResult, model: EarthGPT, tracking: TrackingConfig) -> dict:
    return {
        "mlflow_run": f"{tracking.uri} run {result.run_id}",
        "steps": result.steps,
        "resumed": result.resumed,
        "loss_first": round(result.losses[0], 4) if result.losses else None,
        "loss_last": round(result.losses[-1], 4) if result.losses else None,
        "loss_curve": dg.MetadataValue.md(f"`{_sparkline(result.losses)}`"),
        "trainable_tensors": len(result.trainable),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "model_dir": str(result.model_dir),
    }


def _checks(result: StageResult, model: EarthGPT, tokenizer) -> list[dg.AssetCheckResult]:
    reloads, answer = _reloads_and_generates(result, model, tokenizer)
    return [
        dg.AssetCheckResult(check_name="finite_losses", passed=all_finite(result.losses)),
        dg.AssetCheckResult(check_name="loss_fell", passed=losses_fell(result.losses),
                            metadata={"first": result.losses[0] if result.losses else -1.0,
                                      "last": result.losses[-1] if result.losses else -1.0}),
        dg.AssetCheckResult(check_name="reloads_and_generates", passed=reloads, metadata={"answer": answer}),
    ]


@dg.asset(group_name="training", deps=["mmrs_1m"], kinds={"python"},
          description="The tiny preset's byte-level BPE, trained on the MMRS-1M training text (paper preset: "
                      "LLaMA's own tokenizer).")
def tokenizer(config: TrainConfig) -> dg.MaterializeResult:
    out = Path(repo_path(config.out)) / "tokenizer"
    if _TRAIN["preset"] == "paper":
        tok = load_tokenizer(_TRAIN["llama"])
    else:
        tok = train_bpe_tokenizer(_training_texts(repo_path(config.mmrs_out)), vocab_size=_TRAIN["tokenizer_vocab"])
    save_tokenizer(tok, out)
    example = "There are three planes [0.12,0.33,0.45,0.67] in the image."
    return dg.MaterializeResult(metadata={"vocab_size": len(tok), "path": str(out),
                                          "example": f"{len(tok.encode(example))} tokens: {example}"})


def _build_model(tok, seed: int = 0) -> EarthGPT:
    """A new model: random-init weights (all of them for tiny, the projection for paper) drawn from `seed`,
    so that the same params give the same model in every process."""
    torch.manual_seed(seed)
    if _TRAIN["preset"] == "paper":
        return EarthGPT(paper(_TRAIN["llama"], _TRAIN["dinov2"], _TRAIN["convnext"]))
    config = tiny()
    return EarthGPT(dataclasses.replace(config, llm=dataclasses.replace(config.llm, vocab_size=len(tok)),
                                        max_text_tokens=_TRAIN.get("max_text_tokens", config.max_text_tokens)))


def _train(stage: str, context: dg.AssetExecutionContext, config: TrainConfig, model: EarthGPT, tok
           ) -> tuple[StageResult, TrackingConfig]:
    out = Path(repo_path(config.out))
    manifest = read_json(join(repo_path(config.mmrs_out), "mmrs_1m.json"))
    tracking = _tracking(config, context, manifest)
    datamodule, stage_config = _datamodule(stage, config, model, tok), _stage_config(stage, config, out)
    # resume only a run of these settings, data and starting weights; anything else retrains. The shards in
    # their merged order (the stream mixes sources in it), not only the order-free content hash; the GPU
    # count (it splits the stream into ranks).
    shards = [[shard["source"], shard["path"], shard["sha256"]] for shard in manifest["shards"]]
    stage_config.run_key = run_key(stage_config, model, {
        "shards": hashlib.sha256(json.dumps(shards).encode()).hexdigest(), "tokenizer": _tokenizer_digest(tok),
        "devices": torch.cuda.device_count(),
        "data": dataclasses.asdict(datamodule.config) | {"manifest": None}})  # the path is not the content
    apply_activation_checkpointing(model, DistributedConfig.from_dict(_TRAIN["distributed"]))
    return train_stage(model, tok, datamodule, stage_config, tracking), tracking


def _tokenizer_digest(tok) -> str:
    """SHA-256 of the whole tokenizer (vocabulary, merges, normaliser, special tokens)."""
    return hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()


_TRAINS_TEXT = _TRAIN["preset"] == "tiny"


@dg.asset(group_name="training", deps=["tokenizer", "mmrs_1m"], kinds={"pytorch", "mlflow"},
          check_specs=[dg.AssetCheckSpec(c, asset="pretrained_llm") for c in _CHECKS] if _TRAINS_TEXT else [],
          description="The LLM the paper starts from. paper preset: LLaMA-2 from its folder, nothing trained. "
                      "tiny preset: a stand-in trained here - causal LM on the MMRS training text, every LLM "
                      "weight, no image.")
def pretrained_llm(context: dg.AssetExecutionContext, config: TrainConfig) -> dg.MaterializeResult:
    if not _TRAINS_TEXT:
        return dg.MaterializeResult(metadata={"llama": _TRAIN["llama"], "trained_here": False})
    tok = load_tokenizer(str(Path(repo_path(config.out)) / "tokenizer"))
    model = _build_model(tok)
    result, tracking = _train("text", context, config, model, tok)
    return dg.MaterializeResult(metadata=_result_metadata(result, model, tracking) | {"trained_here": True},
                                check_results=_checks(result, model, tok))


@dg.asset(group_name="training", deps=["pretrained_llm", "mmrs_1m"], kinds={"pytorch", "mlflow"},
          check_specs=[dg.AssetCheckSpec(c, asset="aligned_model") for c in _CHECKS],
          description="Stage 2, cross-modal alignment on captions: q/k/v (with biases), RMSNorm scales and the "
                      "visual projection train.")
def aligned_model(context: dg.AssetExecutionContext, config: TrainConfig) -> dg.MaterializeResult:
    if _TRAINS_TEXT:
        model, tok = load_model(Path(repo_path(config.out)) / "text" / "model")
    else:
        tok = load_tokenizer(str(Path(repo_path(config.out)) / "tokenizer"))
        model = _build_model(tok)
    result, tracking = _train("stage2", context, config, model, tok)
    return dg.MaterializeResult(metadata=_result_metadata(result, model, tracking),
                                check_results=_checks(result, model, tok))


@dg.asset(group_name="training", deps=["aligned_model"], kinds={"pytorch", "mlflow"},
          check_specs=[dg.AssetCheckSpec(c, asset="earthgpt_model") for c in _CHECKS],
          description="Stage 3, unified instruction tuning on MMRS-1M: only the bias + scale of every decoder "
                      "linear layer trains. Logged and registered in MLflow as a pyfunc model version.")
def earthgpt_model(context: dg.AssetExecutionContext, config: TrainConfig) -> dg.MaterializeResult:
    model, tok = load_model(Path(repo_path(config.out)) / "stage2" / "model")
    result, tracking = _train("stage3", context, config, model, tok)
    import mlflow

    with mlflow.start_run(run_id=result.run_id):
        info = log_earthgpt_model(result.model_dir, registered_model_name=config.registered_model)
    registration = {"tracking_uri": tracking.uri, "run_id": result.run_id, "model_uri": info.model_uri,
                    "registered_model": config.registered_model, "version": info.registered_model_version}
    (result.model_dir.parent / "registration.json").write_text(json.dumps(registration, indent=2), encoding="utf-8")
    metadata = _result_metadata(result, model, tracking) | {
        "registered_model": f"{config.registered_model} v{info.registered_model_version}",
        "model_uri": info.model_uri}
    return dg.MaterializeResult(metadata=metadata, check_results=_checks(result, model, tok))


TRAINING_ASSETS = [tokenizer, pretrained_llm, aligned_model, earthgpt_model]
