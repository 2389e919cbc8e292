import dataclasses

import pytest
import torch
from transformers import LlamaForCausalLM

from models.adapters import STAGE2, STAGE3, ScaleShiftLinear, trainable_parameters
from models.config import AdapterConfig, tiny
from models.earthgpt import IGNORE_INDEX, EarthGPT, llama_config
from models.io import load_model, save_model


def _batch(vocab=512, b=2, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (b, t), generator=g)
    return torch.randn(b, 3, 64, 64, generator=g), ids, torch.ones_like(ids)


def _plain_llama_like(model: EarthGPT) -> LlamaForCausalLM:
    """A stock HF LLaMA holding the same weights (q/k/v biases are zero, so they are simply not there)."""
    plain = LlamaForCausalLM(llama_config(model.config.llm)).eval()
    renamed = {k.removeprefix("llm.").replace(".base.", "."): v for k, v in model.state_dict().items()
               if k.startswith("llm.")}
    state = {k: v for k, v in renamed.items() if not k.endswith((".alpha", ".beta", "_proj.bias"))}
    plain.load_state_dict(state, strict=True)
    return plain


@pytest.mark.parametrize("stage", ["stage2", "stage3"])
def test_logits_match_plain_hf_llama_at_identity_adapters(stage):
    torch.manual_seed(0)
    config = dataclasses.replace(tiny(), adapter=AdapterConfig(alpha_init_std=0.0))
    model = EarthGPT(config).eval()
    model.set_stage(stage)
    plain = _plain_llama_like(model)
    _, ids, mask = _batch()
    ours = model.llm(input_ids=ids, attention_mask=mask).logits
    ref = plain(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    # and the multimodal path: the same embeddings through both
    pixels, ids, mask = _batch(seed=1)
    embeds, full_mask = model.embed(pixels, ids, mask)
    torch.testing.assert_close(model.llm(inputs_embeds=embeds, attention_mask=full_mask).logits,
                               plain(inputs_embeds=embeds, attention_mask=full_mask).logits, rtol=0, atol=1e-5)


def test_fresh_stage3_starts_close_to_the_stage2_function(model):
    pixels, ids, mask = _batch()
    before = model(pixels, ids, mask).logits
    model.set_stage("stage3")
    after = model(pixels, ids, mask).logits
    assert 0 < (after - before).abs().max() < 0.05  # alpha ~ N(1, 1e-3^2): close, not identical


def _expected_stage2(config):
    n = config.llm.num_hidden_layers
    names = {f"llm.model.layers.{i}.self_attn.{p}_proj.{w}"
             for i in range(n) for p in "qkv" for w in ("weight", "bias")}
    names |= {f"llm.model.layers.{i}.{ln}.weight" for i in range(n)
              for ln in ("input_layernorm", "post_attention_layernorm")}
    names.add("llm.model.norm.weight")
    names |= {f"vision.projector.scale_proj.{s}.{w}" for s in range(len(config.cnn.stages)) for w in ("weight", "bias")}
    names |= {"vision.projector.proj.weight", "vision.projector.proj.bias"}
    return names


def _expected_stage3(config):
    linears = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    return {f"llm.model.layers.{i}.{lin}.{p}" for i in range(config.llm.num_hidden_layers)
            for lin in linears for p in ("alpha", "beta")}


def test_trainable_tensors_per_stage_are_exactly_the_expected_ones(model):
    assert set(model.set_stage("stage2")) == _expected_stage2(model.config)
    assert set(model.set_stage("stage3")) == _expected_stage3(model.config)
    assert sum(isinstance(m, ScaleShiftLinear) for m in model.modules()) == 14
    assert STAGE2.name != STAGE3.name
    with pytest.raises(ValueError, match="cannot go back"):
        model.set_stage("stage2")


@pytest.mark.parametrize("stage", ["stage2", "stage3"])
def test_frozen_tensors_stay_bit_equal_after_optimiser_steps(model, stage):
    trainable = set(model.set_stage(stage))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimiser = torch.optim.AdamW(trainable_parameters(model), lr=1e-2, weight_decay=0.1)
    assert sum(len(g["params"]) for g in optimiser.param_groups) == len(trainable)
    model.train()
    for step in range(3):
        pixels, ids, mask = _batch(seed=step)
        loss = model(pixels, ids, mask, labels=ids).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for name, param in model.named_parameters():
        changed = not torch.equal(before[name], param.detach())
        assert changed == (name in trainable), name


def test_visual_positions_carry_no_loss(model):
    pixels, ids, mask = _batch()
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, -3:] = ids[:, -3:]
    out = model(pixels, ids, mask, labels=labels)
    logits = out.logits[:, model.vision.num_tokens:, :]
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                               labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.loss, manual)


@pytest.mark.parametrize("stage", ["stage2", "stage3"])
def test_save_load_round_trip_reproduces_logits(model, tokenizer, tmp_path, stage):
    model.set_stage(stage)
    pixels, ids, mask = _batch()
    expected = model(pixels, ids, mask).logits
    save_model(model, tokenizer, tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.bin")) and not list((tmp_path / "m").glob("*.pt"))
    loaded, tok = load_model(tmp_path / "m")
    assert loaded.stage == stage and tok.eos_token_id == tokenizer.eos_token_id
    torch.testing.assert_close(loaded(pixels, ids, mask).logits, expected, rtol=0, atol=0)
