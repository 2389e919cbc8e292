"""Save and load a trained EarthGPT as one folder, no pickle:

    earthgpt.json        our config + the stage (stage2 | stage3)
    vit_config.json      the encoders' and the LLM's own HF configs, so loading needs no weight folders
    cnn_config.json
    llm_config.json
    model.safetensors    every tensor of the model (encoders included)
    model.sha256         the SHA-256 of model.safetensors (the model's content version)
    tokenizer.json ...   the tokenizer (save_pretrained files)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import ConvNextConfig, ConvNextModel, Dinov2Config, Dinov2Model, LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from mmrs.storage import is_local_fs
from models.config import EarthGPTConfig
from models.earthgpt import EarthGPT
from models.tokenization import load_tokenizer, save_tokenizer
from models.vision import VisualPerception
from models.weights import BadModelError, check_model_folder, localize


@contextlib.contextmanager
def writable_folder(url: str | Path) -> Iterator[Path]:
    """A local folder to write `url`'s files into, whose files replace those under `url` when the block ends
    without error: never half a model under `url`. Local: a temporary sibling folder renamed into place (the
    previous folder moved aside first, then removed); what a killed save left beside it (`.<name>.tmp-*`,
    `.<name>.old-*`) is removed first. Object stores: a temporary local folder uploaded file by file."""
    fs, path = fsspec.core.url_to_fs(str(url))
    if is_local_fs(fs):
        folder = Path(path)
        folder.parent.mkdir(parents=True, exist_ok=True)
        for leftover in folder.parent.glob(f".{folder.name}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in folder.parent.glob(f".{folder.name}.old-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            yield scratch
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        old = folder.parent / f".{folder.name}.old-{scratch.name.rsplit('-', 1)[1]}"
        if folder.exists():
            folder.rename(old)
        scratch.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
        return
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.makedirs(path, exist_ok=True)
        for name in sorted(os.listdir(scratch)):
            fs.put_file(os.path.join(scratch, name), posixpath.join(path, name))


def save_model(model: EarthGPT, tokenizer, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"config": model.config.to_dict(), "stage": model.stage}
    (folder / "earthgpt.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    for name, sub in (("vit", model.vision.vit), ("cnn", model.vision.cnn), ("llm", model.llm)):
        (folder / f"{name}_config.json").write_text(sub.config.to_json_string(), encoding="utf-8")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "model.sha256").write_text(_file_sha256(folder / "model.safetensors") + "\n", encoding="utf-8")
    save_tokenizer(tokenizer, folder)
    return folder


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def model_digest(folder: str | Path) -> str:
    """The SHA-256 of a saved model's weights: read from model.sha256 (written by save_model), else computed
    from model.safetensors (local or s3://)."""
    fs, path = fsspec.core.url_to_fs(str(folder))
    recorded = posixpath.join(path, "model.sha256")
    if fs.exists(recorded):
        return fs.cat_file(recorded).decode().strip()
    digest = hashlib.sha256()
    with fs.open(posixpath.join(path, "model.safetensors"), "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(folder: str | Path, device: str | torch.device = "cpu"):
    """-> (EarthGPT in eval mode, tokenizer). The skeleton is built on the meta device, then the saved
    tensors are assigned, so a 7B model is not initialised twice. The folder is checked first
    (models.weights.check_model_folder): MissingWeightsError / BadModelError name what is wrong."""
    check_model_folder(str(folder))
    local = localize(str(folder), "EarthGPT model")
    meta = json.loads((local / "earthgpt.json").read_text(encoding="utf-8"))
    config = EarthGPTConfig.from_dict(meta["config"])
    # the saved folder is self-contained: never reach back to the original weight folders
    config = dataclasses.replace(
        config, tokenizer_path=None,
        vit=dataclasses.replace(config.vit, path=None), cnn=dataclasses.replace(config.cnn, path=None),
        llm=dataclasses.replace(config.llm, path=None),
    )
    hf = {n: json.loads((local / f"{n}_config.json").read_text(encoding="utf-8")) for n in ("vit", "cnn", "llm")}
    try:
        return _load(local, folder, meta, config, hf, device)
    except (KeyError, TypeError, RuntimeError) as error:
        raise BadModelError(f"{folder} cannot be loaded as an EarthGPT model: {type(error).__name__}: "
                            f"{str(error)[:500]}") from None


def _load(local: Path, folder: str | Path, meta: dict, config: EarthGPTConfig, hf: dict, device):
    with torch.device("meta"):
        llm = LlamaForCausalLM(LlamaConfig.from_dict(hf["llm"]))
        vision = VisualPerception(config, llm.config.hidden_size,
                                  vit=Dinov2Model(Dinov2Config.from_dict(hf["vit"])),
                                  cnn=ConvNextModel(ConvNextConfig.from_dict(hf["cnn"])))
        model = EarthGPT(config, llm=llm, vision=vision)
        if meta["stage"] == "stage3":
            model.set_stage("stage3")
    try:
        state = load_file(str(local / "model.safetensors"), device=str(device))
    except SafetensorError as error:
        raise BadModelError(f"{folder}/model.safetensors cannot be read: {error}") from None
    model.load_state_dict(state, strict=True, assign=True)
    # non-persistent buffers (not saved) are still on the meta device: RoPE frequencies, pixel statistics
    model.llm.model.rotary_emb = LlamaRotaryEmbedding(config=model.llm.config).to(device)
    model.vision.set_normalisation(device)
    left_on_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left_on_meta:
        raise RuntimeError(f"tensors not restored from {local}: {left_on_meta[:5]}")
    model.set_stage(meta["stage"])
    model.requires_grad_(False)
    return model.eval(), load_tokenizer(str(local))

