"""DeepSpeed config, strategy selection, and a real ZeRO engine on CPU (gloo, one process) whose checkpoint is
converted to a model folder. Lightning's DeepSpeedStrategy itself needs CUDA, so its checkpoint layout (tag
"checkpoint", LightningModule names) is reproduced around a bare engine."""

import logging
import socket

import deepspeed
import deepspeed.comm
import deepspeed.ops
import pytest
import torch
import torch.distributed as dist
from deepspeed.runtime.config import DeepSpeedConfig
from lightning.pytorch.strategies import DeepSpeedStrategy
from torch import nn

from models.adapters import trainable_parameters
from models.config import tiny
from models.distributed import (
    DistributedConfig,
    apply_activation_checkpointing,
    convert_zero_checkpoint,
    deepspeed_config,
    lightning_strategy,
    trainer_kwargs,
)
from models.earthgpt import EarthGPT
from models.io import load_model, save_model

ZERO2 = {
    "train_micro_batch_size_per_gpu": 4,
    "gradient_accumulation_steps": 8,
    "gradient_clipping": 1.0,
    "bf16": {"enabled": True},
    "zero_optimization": {
        "stage": 2, "overlap_comm": True, "contiguous_gradients": True, "reduce_bucket_size": 200_000_000,
        "allgather_partitions": True, "allgather_bucket_size": 200_000_000, "reduce_scatter": True,
    },
    "zero_allow_untested_optimizer": True,
}
ZERO3_OFFLOAD = {
    "train_micro_batch_size_per_gpu": 2,
    "gradient_accumulation_steps": 1,
    "gradient_clipping": 0.5,
    "bf16": {"enabled": False},
    "zero_optimization": {
        "stage": 3, "overlap_comm": True, "contiguous_gradients": True, "reduce_bucket_size": 200_000_000,
        "stage3_prefetch_bucket_size": 50_000_000, "stage3_param_persistence_threshold": 100_000,
        "offload_optimizer": {"device": "cpu", "pin_memory": True},
    },
    "zero_allow_untested_optimizer": True,
    "zero_force_ds_cpu_optimizer": False,
}
GPU = DistributedConfig(strategy="deepspeed", zero_stage=2, precision="bf16-mixed", gradient_accumulation=8,
                        gradient_clip=1.0, micro_batch_size=4)


# --- config ------------------------------------------------------------------------------------------------
def test_zero2_config_is_exact_and_accepted_by_deepspeed():
    config = deepspeed_config(GPU)
    assert config == ZERO2
    parsed = DeepSpeedConfig(config)
    assert parsed.zero_config.stage == 2 and parsed.bfloat16_config.enabled
    assert parsed.train_batch_size == 4 * 8  # micro batch x accumulation x world size 1


def test_zero3_offload_config_is_exact_and_accepted_by_deepspeed():
    cfg = DistributedConfig(strategy="deepspeed", zero_stage=3, offload_optimizer=True, precision="32-true",
                            gradient_clip=0.5, micro_batch_size=2)
    config = deepspeed_config(cfg)
    assert config == ZERO3_OFFLOAD
    parsed = DeepSpeedConfig(config)
    assert parsed.zero_config.stage == 3 and parsed.zero_config.offload_optimizer.device == "cpu"
    assert not parsed.bfloat16_config.enabled and parsed.gradient_clipping == 0.5


def test_lightning_config_leaves_accumulation_to_the_trainer():
    config = deepspeed_config(GPU, for_lightning=True)
    assert config == {k: v for k, v in ZERO2.items() if k != "gradient_accumulation_steps"}


@pytest.mark.parametrize("bad", [{"zero_stage": 1}, {"strategy": "ddp"}, {"precision": "16-mixed"},
                                 {"gradient_accumulation": 0}, {"micro_batch_size": 0}, {"gradient_clip": -1.0}])
def test_invalid_settings_are_rejected(bad):
    with pytest.raises(ValueError):
        DistributedConfig(**bad)


def test_from_dict_rejects_unknown_keys():
    assert DistributedConfig.from_dict({"strategy": "deepspeed", "zero_stage": 3}).zero_stage == 3
    with pytest.raises(ValueError, match="zero_stages"):
        DistributedConfig.from_dict({"zero_stages": 3})


# --- strategy ----------------------------------------------------------------------------------------------
@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_cpu_auto_strategy(no_cuda):
    kwargs = trainer_kwargs(DistributedConfig(strategy="auto", gradient_accumulation=4, gradient_clip=1.0))
    assert kwargs == {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto", "precision": "32-true",
                      "accumulate_grad_batches": 4, "gradient_clip_val": 1.0}
    assert trainer_kwargs(DistributedConfig(gradient_clip=0.0))["gradient_clip_val"] is None


def test_deepspeed_without_cuda_is_an_error(no_cuda):
    with pytest.raises(RuntimeError, match="CUDA"):
        lightning_strategy(GPU)


def test_deepspeed_without_cuda_falls_back_when_allowed(no_cuda, caplog):
    with caplog.at_level(logging.WARNING, logger="models.distributed"):
        kwargs = trainer_kwargs(GPU, allow_cpu_fallback=True)
    assert kwargs["strategy"] == "auto" and kwargs["precision"] == "32-true"
    assert kwargs["gradient_clip_val"] == 1.0  # Lightning clips on the fallback path
    assert "without CUDA" in caplog.text


def test_deepspeed_on_cuda_clips_inside_the_engine(fake_cuda):
    kwargs = trainer_kwargs(GPU)
    assert isinstance(kwargs["strategy"], DeepSpeedStrategy)
    assert kwargs["strategy"].config == deepspeed_config(GPU, for_lightning=True)
    assert kwargs["precision"] == "bf16-mixed" and kwargs["accumulate_grad_batches"] == 8
    assert kwargs["gradient_clip_val"] is None


def test_activation_checkpointing_keeps_gradients():
    torch.manual_seed(0)
    model = EarthGPT(tiny()).train()
    model.set_stage("stage3")
    batch = _batch()
    plain = _grads(model, batch)
    assert apply_activation_checkpointing(model, DistributedConfig(activation_checkpointing=True))
    assert model.llm.is_activation_checkpointing
    for name, grad in _grads(model, batch).items():
        torch.testing.assert_close(grad, plain[name], msg=name)


def _grads(model: EarthGPT, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    model.zero_grad()
    model(**batch).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


# --- a real ZeRO engine on CPU ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def process_group():
    """World size 1 over gloo. DeepSpeed's shared-memory all-reduce kernel is switched off: one process never
    uses it, and building it is a ~60 s C++ JIT compile on first use."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1",
                           "LOCAL_RANK": "0"}.items():
            mp.setenv(key, value)
        mp.setitem(deepspeed.ops.__compatible_ops__, "deepspeed_shm_comm", False)
        dist.init_process_group("gloo", rank=0, world_size=1)
        yield
        deepspeed.comm.destroy_process_group()
    assert not dist.is_initialized()


class _Wrapper(nn.Module):
    """Stands in for the modules Lightning puts around EarthGPT, so the engine saves their names."""

    def __init__(self, name: str, inner: nn.Module):
        super().__init__()
        self.name = name
        self.add_module(name, inner)

    def forward(self, *args, **kwargs):
        return getattr(self, self.name)(*args, **kwargs)


def _batch(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 300, (2, 12), generator=gen)
    return {"pixels": torch.randn(2, 3, 64, 64, generator=gen), "input_ids": ids,
            "attention_mask": torch.ones_like(ids), "labels": ids}


def _train(engine, steps: int = 2) -> None:
    for step in range(steps):
        loss = engine(**_batch(seed=step)).loss
        engine.backward(loss)
        engine.step()


def _engine_tensors(model: EarthGPT) -> dict[str, torch.Tensor]:
    """The engine model's full tensors (ZeRO-3 partitions parameters: gather them)."""
    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        return {n: t.detach().clone() for n, t in model.state_dict().items()}


def _engine_logits(engine, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    engine.eval()
    with torch.no_grad():
        return engine(**{k: v for k, v in batch.items() if k != "labels"}).logits


def _assert_same_model(folder, engine, model: EarthGPT, before: dict[str, torch.Tensor]) -> None:
    expected = _engine_tensors(model)
    trained = {n for n in expected if not torch.equal(expected[n], before[n])}
    assert trained and all(n.endswith((".alpha", ".beta")) for n in trained)  # the step moved only adapters
    loaded, _ = load_model(folder)
    assert loaded.stage == "stage3"
    got = loaded.state_dict()
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name
    batch = _batch(seed=7)
    logits = _engine_logits(engine, batch)
    with torch.no_grad():
        assert torch.equal(loaded(batch["pixels"], batch["input_ids"], batch["attention_mask"]).logits, logits)


def _stage3_model() -> EarthGPT:
    torch.manual_seed(0)
    model = EarthGPT(tiny())
    model.set_stage("stage3")
    return model


def test_zero2_lightning_layout_converts_to_model_folder(process_group, tokenizer, tmp_path):
    """ZeRO-2, names `model.llm...` (Lightning >= 2.1), tag "checkpoint", template given as (model, tokenizer)."""
    model = _stage3_model()
    before = {n: t.clone() for n, t in model.state_dict().items()}
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-2)
    cfg = DistributedConfig(strategy="deepspeed", zero_stage=2, precision="32-true", micro_batch_size=2)
    engine, *_ = deepspeed.initialize(model=_Wrapper("model", model), optimizer=optimizer,
                                      config=deepspeed_config(cfg))
    _train(engine)
    engine.save_checkpoint(str(tmp_path / "epoch=0-step=2.ckpt"), tag="checkpoint", client_state={"epoch": 0})

    template = (EarthGPT(tiny()), tokenizer)
    template[0].set_stage("stage3")
    folder = convert_zero_checkpoint(tmp_path / "epoch=0-step=2.ckpt", template, tmp_path / "model")

    assert not list(folder.glob("*.pt")) and not list(folder.glob("*.bin"))  # safetensors only, no pickle
    _assert_same_model(folder, engine, model, before)


def test_zero3_without_frozen_tensors_converts_from_stage2_folder(process_group, tokenizer, tmp_path, caplog):
    """ZeRO-3 with activation checkpointing, names `_forward_module.model.llm...` (Lightning < 2.1), frozen
    tensors left out of the checkpoint: they come from the stage-2 folder training started from."""
    torch.manual_seed(0)
    model = EarthGPT(tiny())
    base = save_model(model, tokenizer, tmp_path / "stage2")
    model.set_stage("stage3")
    before = {n: t.clone() for n, t in model.state_dict().items()}
    cfg = DistributedConfig(strategy="deepspeed", zero_stage=3, precision="32-true", micro_batch_size=2,
                            activation_checkpointing=True)
    apply_activation_checkpointing(model, cfg)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-2)
    engine, *_ = deepspeed.initialize(model=_Wrapper("_forward_module", _Wrapper("model", model)),
                                      optimizer=optimizer, config=deepspeed_config(cfg))
    _train(engine)
    engine.save_checkpoint(str(tmp_path / "ds"), exclude_frozen_parameters=True)

    with caplog.at_level(logging.INFO, logger="models.distributed"):
        folder = convert_zero_checkpoint(tmp_path / "ds", base, tmp_path / "model")

    assert "frozen tensors not in the checkpoint" in caplog.text
    _assert_same_model(folder, engine, model, before)


def test_tensors_the_template_lacks_are_an_error(process_group, tokenizer, tmp_path):
    """A LightningModule holding more than EarthGPT: its extra tensors are reported, not silently dropped."""
    model = _stage3_model()
    wrapper = _Wrapper("model", model)
    wrapper.extra = nn.Linear(2, 2).requires_grad_(False)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-2)
    cfg = DistributedConfig(strategy="deepspeed", zero_stage=2, precision="32-true", micro_batch_size=2)
    engine, *_ = deepspeed.initialize(model=wrapper, optimizer=optimizer, config=deepspeed_config(cfg))
    engine.save_checkpoint(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match="extra.weight"):
        convert_zero_checkpoint(tmp_path / "ds", (_stage3_model(), tokenizer), tmp_path / "model")


def test_ranks_started_by_torchrun_train_as_one_with_ddp(no_cuda, monkeypatch):
    """torchrun's environment (2 machines x 2 processes) -> Lightning's DDP over gloo on every rank."""
    from lightning.pytorch.strategies import DDPStrategy

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    kwargs = trainer_kwargs(DistributedConfig(processes=2))
    assert (kwargs["devices"], kwargs["num_nodes"], kwargs["accelerator"]) == (2, 2, "cpu")
    assert isinstance(kwargs["strategy"], DDPStrategy) and kwargs["strategy"].process_group_backend == "gloo"
    with pytest.raises(ValueError, match="processes 0 < 1"):
        DistributedConfig(processes=0)


def test_a_training_context_travels_to_the_ranks_as_plain_data(tmp_path):
    import json

    from models.launch import context_document, context_from_document
    from models.layout import ModelLayout
    from models.stages import TrainingContext, TrainSettings
    from models.tracking import TrackingSettings

    ctx = TrainingContext(TrainSettings(), ModelLayout(str(tmp_path / "models"), "/shared/ckpt"), "s3://b/mmrs",
                          TrackingSettings(uri="http://mlflow:5000"), GPU, tags={"dagster_run_id": "r1"})
    assert context_from_document(json.loads(json.dumps(context_document(ctx)))) == ctx
