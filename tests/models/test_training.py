import math

import pytest
import torch

from models.training import EarthGPTModule, OptimConfig, warmup_cosine


def test_warmup_then_cosine_to_the_minimum():
    config = OptimConfig(lr=2e-5, min_lr=0.0, warmup_steps=10, max_steps=110)
    values = [warmup_cosine(s, config) for s in range(111)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[60] == pytest.approx(0.5) and values[110] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    floor = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=0, max_steps=10)
    assert warmup_cosine(10, floor) * 1e-3 == pytest.approx(1e-4)


def test_paper_optimiser_settings_and_only_policy_tensors(model):
    module = EarthGPTModule(model, "stage3", OptimConfig())
    optimiser = module.configure_optimizers()["optimizer"]
    assert optimiser.defaults["betas"] == (0.9, 0.95) and optimiser.defaults["lr"] == 2e-5
    given = {id(p) for group in optimiser.param_groups for p in group["params"]}
    expected = {id(p) for n, p in model.named_parameters() if n in set(module.trainable_names)}
    assert given == expected and len(given) == 28


def test_training_step_returns_a_finite_loss(model):
    module = EarthGPTModule(model, "stage2", OptimConfig())
    ids = torch.randint(4, 512, (2, 10))
    batch = {"pixels": torch.randn(2, 3, 64, 64), "input_ids": ids, "attention_mask": torch.ones_like(ids),
             "labels": ids}
    assert math.isfinite(float(module(batch)))


def test_text_pretraining_stand_in_trains_every_llm_weight_on_text_alone(model):
    module = EarthGPTModule(model, "text", OptimConfig())
    llm_names = {f"llm.{n}" for n, _ in model.llm.named_parameters()}
    assert set(module.trainable_names) == llm_names  # the encoders and the projector stay frozen
    ids = torch.randint(4, 512, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.full_like(ids, -100)}  # no pixels
    expected = model.llm(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
    assert torch.allclose(module(batch), expected)


def test_a_stage3_model_cannot_go_back_to_text_pretraining(model):
    model.set_stage("stage3")
    with pytest.raises(ValueError, match="cannot go back to text"):
        model.set_stage("text")
