"""The `paper` preset's loading code on local and s3:// folders in the real formats, at tiny sizes."""

import dataclasses

import fsspec
import pytest
import torch
from safetensors.torch import save_file
from transformers import ConvNextConfig, ConvNextModel, Dinov2Config, Dinov2Model, LlamaForCausalLM

from models.config import LLMConfig, paper
from models.earthgpt import EarthGPT, llama_config
from models.tokenization import load_tokenizer, save_tokenizer
from models.weights import MissingWeightsError


@pytest.fixture
def weight_folders(tmp_path, tokenizer, open_clip_state):
    """LLaMA HF folder (+ tokenizer without a pad token, as LLaMA ships), DINOv2 HF folder, open_clip file."""
    torch.manual_seed(0)
    llama = LlamaForCausalLM(llama_config(LLMConfig(vocab_size=len(tokenizer), hidden_size=64,
                                                    intermediate_size=128, num_attention_heads=4,
                                                    num_key_value_heads=4)))
    llama.save_pretrained(tmp_path / "llama-2-7b")
    tokenizer_without_pad = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer,
                                                bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    save_tokenizer(tokenizer_without_pad, tmp_path / "llama-2-7b")
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=24, num_attention_heads=2, intermediate_size=64,
                             patch_size=14, image_size=224)).save_pretrained(tmp_path / "dinov2-large")
    cnn = ConvNextModel(ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 2, 1]))
    (tmp_path / "clip-convnext-large").mkdir()
    save_file(open_clip_state(cnn), str(tmp_path / "clip-convnext-large" / "open_clip_model.safetensors"))
    return tmp_path


def _config(root, prefix=""):
    config = paper(f"{prefix}{root}/llama-2-7b", f"{prefix}{root}/dinov2-large", f"{prefix}{root}/clip-convnext-large")
    return dataclasses.replace(config, cnn=dataclasses.replace(config.cnn, hidden_sizes=(8, 16, 32, 64),
                                                               depths=(1, 1, 2, 1), scale_channels=16))


def test_paper_preset_builds_from_local_folders(weight_folders):
    config = _config(weight_folders)
    model = EarthGPT(config).eval()
    tokenizer = load_tokenizer(config.tokenizer_path)
    assert tokenizer.pad_token == tokenizer.unk_token  # LLaMA has no pad token
    assert model.llm.config.hidden_size == 64 and model.vision.vit.config.num_hidden_layers == 24
    pixels = torch.randn(1, 3, 224, 224)
    ids = torch.tensor([tokenizer.encode("There are three planes.")])
    logits = model(pixels, ids, torch.ones_like(ids)).logits
    assert logits.shape == (1, 256 + ids.shape[1], len(tokenizer))
    reference = LlamaForCausalLM.from_pretrained(weight_folders / "llama-2-7b")
    torch.testing.assert_close(model.llm.model.embed_tokens.weight, reference.model.embed_tokens.weight)


def test_paper_preset_builds_from_s3(weight_folders, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHGPT_WEIGHT_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("s3")
    for name in ("llama-2-7b", "dinov2-large", "clip-convnext-large"):
        fs.put(str(weight_folders / name), f"{s3_bucket}/weights/{name}", recursive=True)
    local = EarthGPT(_config(weight_folders)).eval()
    remote = EarthGPT(_config(f"{s3_bucket}/weights", prefix="s3://")).eval()
    for (name, a), (_, b) in zip(local.state_dict().items(), remote.state_dict().items(), strict=True):
        if not name.startswith("vision.projector"):  # the projector is freshly initialised in both
            torch.testing.assert_close(a, b, msg=name)


def test_missing_llama_folder_names_it(tmp_path):
    with pytest.raises(MissingWeightsError, match="LLaMA weights not found: .*nowhere"):
        EarthGPT(paper(str(tmp_path / "nowhere"), "x", "y"))
