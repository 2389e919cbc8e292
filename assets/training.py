"""Dagster assets `tokenizer`, `pretrained_llm`, `aligned_model` (stage 2) and `earthgpt_model` (stage 3).

Thin: each calls models.stages (the same functions `earthgpt train` runs) with the profile's settings, the
run's overrides of its own stage, and the storage, tracking and compute resources. `pretrained_llm` is the
paper's starting point, a pretrained LLaMA-2: the paper preset reads it from its folder; the tiny preset has
no such checkpoint and trains a stand-in (causal LM on the MMRS training text, every LLM weight, no image).
A stage whose inputs did not change reports its completed run instead of training again.
"""

# No `from __future__ import annotations` here: Dagster reads the resource annotations at decoration time.

import base64
import dataclasses
import hashlib
from pathlib import Path

import dagster as dg
import numpy as np
import torch

from assets.placement import LOCAL_PLACEMENTS, PLAIN, Placement, Placements
from assets.resources import ComputeResource, StorageResource, TrackingResource
from assets.run_config import config_schema, read_config, settings_markdown
from assets.torchrun import train_across_processes
from models.image_transform import preprocess
from models.inference import GenerationOptions, predict
from models.io import load_model
from models.layout import Stage
from models.progress import loss_curve_png
from models.stages import (
    LOSS_CURVE,
    StageOutcome,
    TrainingContext,
    TrainSettings,
    register_model,
    run_stage,
    train_tokenizer,
    training_code_version,
)
from models.tokenization import encode_prompt
from models.trainer import all_finite, losses_fell

_CHECKS = {
    "finite_losses": "Every training loss is a finite number (blocking: NaN or inf means a broken model).",
    "loss_fell": "The mean of the last training losses is below the mean of the first (blocking).",
    "reloads_and_generates": "The saved model folder reloads to the same logits and answers a question "
                             "(blocking: a model that cannot be reloaded must not be used).",
}
_MODEL_KNOBS = ("seed", "max_text_tokens")  # what a stage that builds a new model may change


def _check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset, blocking=True, description=text) for name, text in _CHECKS.items()]


def _context(train: TrainSettings, storage: StorageResource, tracking: TrackingResource, compute: ComputeResource,
             run_id: str) -> TrainingContext:
    return TrainingContext(train, storage.layout, storage.mmrs, tracking.settings, compute.distributed,
                           tags={"dagster_run_id": run_id, "dvc_lock": dvc_lock_hash()})


def dvc_lock_hash(path: Path = Path("dvc.lock")) -> str:
    """The first 16 hex digits of dvc.lock's SHA-256 (the data versions DVC recorded), or 'none'."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "none"


def reloads_and_generates(outcome: StageOutcome) -> tuple[bool, str]:
    """The saved folder reloads (to the trained model's logits, when it was trained in this process) and
    answers a question."""
    loaded, tokenizer = load_model(outcome.model_dir)
    pixels = preprocess(np.full((64, 64, 3), 128, np.uint8), loaded.config).unsqueeze(0)
    ids = torch.tensor([encode_prompt(tokenizer, [], "What is the category of this remote sensing image?")])
    same = True
    if outcome.model is not None:
        with torch.no_grad():
            same = torch.equal(loaded(pixels, ids, torch.ones_like(ids)).logits,
                               outcome.model.eval()(pixels, ids, torch.ones_like(ids)).logits)
    (answer,) = predict(loaded, tokenizer, pixels, [ids[0].tolist()], GenerationOptions(max_new_tokens=8))
    return same and isinstance(answer, str), answer


def _checks(outcome: StageOutcome) -> list[dg.AssetCheckResult]:
    reloads, answer = reloads_and_generates(outcome)
    losses = outcome.losses
    return [
        dg.AssetCheckResult(check_name="finite_losses", passed=all_finite(losses), metadata={"losses": len(losses)}),
        dg.AssetCheckResult(check_name="loss_fell", passed=losses_fell(losses),
                            metadata={"first": losses[0] if losses else -1.0, "last": losses[-1] if losses else -1.0}),
        dg.AssetCheckResult(check_name="reloads_and_generates", passed=reloads, metadata={"answer": answer}),
    ]


def _metadata(outcome: StageOutcome, tracking: TrackingResource, settings: dict) -> dict:
    url = tracking.run_url(outcome.run_id)
    curve_url = tracking.run_url(outcome.run_id, LOSS_CURVE)
    val = outcome.val_losses
    png = loss_curve_png(outcome.losses, val, f"{outcome.stage}: run {outcome.run_id[:8]}") if outcome.losses else b""
    return {
        "mlflow_run": dg.MetadataValue.url(url) if url else f"{tracking.uri} run {outcome.run_id}",
        "loss_curve_in_mlflow": dg.MetadataValue.url(curve_url) if curve_url else LOSS_CURVE,
        "mlflow_run_id": outcome.run_id,
        "run_key": outcome.run_key,
        "steps": outcome.steps,
        "resumed": outcome.resumed,
        "reused_completed_run": outcome.reused,
        "loss_first": round(outcome.losses[0], 4) if outcome.losses else None,
        "loss_last": round(outcome.losses[-1], 4) if outcome.losses else None,
        "val_loss_last": round(val[-1][1], 4) if val else None,
        "loss_curve": dg.MetadataValue.md(
            f"![loss curve](data:image/png;base64,{base64.b64encode(png).decode()})" if png else "no losses"),
        "trainable_tensors": outcome.trainable_tensors,
        "trainable_parameters": outcome.trainable_parameters,
        "model_dir": outcome.model_dir,
        "settings": settings_markdown(**settings),
    }


def build_stage_asset(stage: Stage, name: str, deps: list[str], train: TrainSettings, builds_model: bool,
                      description: str, placement: Placement = PLAIN) -> dg.AssetsDefinition:
    """The asset of one training stage; its run config is that stage's settings (and, for the stage that
    builds the new model, the model's seed and text budget)."""
    schema = {"stage": dg.Field(config_schema(train.stage(stage)), is_required=False)}
    if builds_model:
        exclude = [f for f in dataclasses.asdict(train.model) if f not in _MODEL_KNOBS]
        schema["model"] = dg.Field(config_schema(train.model, exclude=exclude), is_required=False)

    @dg.asset(name=name, group_name="training", deps=deps, kinds={"pytorch", "mlflow"}, config_schema=schema,
              check_specs=_check_specs(name), description=description, code_version=training_code_version(),
              **placement.asset_kwargs())
    def _stage(context: dg.AssetExecutionContext, storage: StorageResource, tracking: TrackingResource,
               compute: ComputeResource) -> dg.MaterializeResult:
        config = context.op_execution_context.op_config or {}
        stage_settings = read_config(train.stage(stage), config.get("stage"))
        model_settings = read_config(train.model, config.get("model")) if builds_model else train.model
        settings = dataclasses.replace(train, model=model_settings, **{stage: stage_settings})
        ctx = _context(settings, storage, tracking, compute, context.run.run_id)
        if compute.processes > 1:  # torchrun's ranks, reporting through Pipes (assets/torchrun.py)
            outcome, progress = train_across_processes(context, ctx, stage, compute.processes)
        else:
            outcome, progress = run_stage(ctx, stage), []
        metadata = _metadata(outcome, tracking, {"model": model_settings, stage: stage_settings,
                                                 "compute": compute.distributed})
        metadata |= {"processes": compute.processes,
                     "checkpoint_steps": ", ".join(str(m["checkpoint_step"]) for m in progress
                                                   if "checkpoint_step" in m) or "none reported"}
        if stage == "stage3":
            registration = register_model(ctx, outcome)
            metadata |= {"registered_model": f"{registration['registered_model']} v{registration['version']}",
                         "model_uri": registration["model_uri"]}
        return dg.MaterializeResult(metadata=metadata, check_results=_checks(outcome))

    return _stage


def build_tokenizer_asset(train: TrainSettings, placement: Placement = PLAIN) -> dg.AssetsDefinition:
    @dg.asset(name="tokenizer", group_name="training", deps=["mmrs_1m"], kinds={"python"},
              code_version=training_code_version(), **placement.asset_kwargs(),
              config_schema=config_schema(train.model, exclude=("preset", "seed", "max_text_tokens")),
              description="The tokenizer every stage uses: for the tiny preset a byte-level BPE trained on the "
                          "MMRS-1M training text; for the paper preset LLaMA's own, copied from its folder.")
    def tokenizer(context: dg.AssetExecutionContext, storage: StorageResource, tracking: TrackingResource,
                  compute: ComputeResource) -> dg.MaterializeResult:
        model = read_config(train.model, context.op_execution_context.op_config)
        ctx = _context(dataclasses.replace(train, model=model), storage, tracking, compute, context.run.run_id)
        tok = train_tokenizer(ctx)
        example = "There are three planes [0.12,0.33,0.45,0.67] in the image."
        return dg.MaterializeResult(metadata={
            "vocab_size": len(tok), "path": ctx.layout.tokenizer,
            "example": f"{len(tok.encode(example))} tokens: {example}", "settings": settings_markdown(model=model)})

    return tokenizer


def build_pretrained_llm_asset(train: TrainSettings, placements: Placements = LOCAL_PLACEMENTS) -> dg.AssetsDefinition:
    description = ("The LLM the paper starts from. paper preset: LLaMA-2 from its folder, nothing trained. tiny "
                   "preset: a stand-in trained here - causal LM on the MMRS training text, every LLM weight, no "
                   "image (train.text).")
    if train.trains_text:
        return build_stage_asset("text", "pretrained_llm", ["tokenizer", "mmrs_1m"], train, builds_model=True,
                                 description=description, placement=placements.training)

    @dg.asset(name="pretrained_llm", group_name="training", deps=["tokenizer", "mmrs_1m"], kinds={"pytorch"},
              description=description, code_version=training_code_version(), **placements.default.asset_kwargs())
    def pretrained_llm() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"llama": train.model.weights.llama or "none", "trained_here": False})

    return pretrained_llm


def build_training_assets(train: TrainSettings, placements: Placements = LOCAL_PLACEMENTS) -> list[dg.AssetsDefinition]:
    """tokenizer -> pretrained_llm -> aligned_model (stage 2) -> earthgpt_model (stage 3)."""
    return [
        build_tokenizer_asset(train, placements.default),
        build_pretrained_llm_asset(train, placements),
        build_stage_asset("stage2", "aligned_model", ["pretrained_llm", "mmrs_1m"], train,
                          builds_model=not train.trains_text, placement=placements.training,
                          description="Stage 2, cross-modal alignment on captions: q/k/v (with biases), RMSNorm "
                                      "scales and the visual projection train; the rest is frozen."),
        build_stage_asset("stage3", "earthgpt_model", ["aligned_model", "mmrs_1m"], train, builds_model=False,
                          placement=placements.training,
                          description="Stage 3, unified instruction tuning on MMRS-1M: only the bias + scale of "
                                      "every decoder linear layer trains. Logged and registered in MLflow as a "
                                      "pyfunc model version (once per completed run)."),
    ]
