"""Typed configs of EarthGPT and its two presets.

- `tiny`: random-init DINOv2-style ViT, ConvNeXt and LLaMA small enough to train on 2 CPU cores in
  minutes; the tokenizer is a BPE trained on the MMRS text (see `tokenization.py`).
- `paper`: DINOv2 ViT-L/14, CLIP ConvNeXt-L and LLaMA-2-7B, each loaded from a local or `s3://` folder
  in its usual format. Nothing is downloaded: a missing folder is an error that names it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # DINOv2 was trained on pixels normalised with these
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI / open_clip CLIP models (the paper's ConvNeXt)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ViTConfig:
    """DINOv2-family ViT. `layers`: 1-based block indices whose outputs are concatenated channel-wise.
    mean, std: the normalisation of its input pixels (in [0, 1]), per channel.
    position_init (random init only): "sincos" gives the patch tokens fixed 2-D sine-cosine position
    embeddings, "random" the library's N(0, 0.02) ones (see models.vision.build_vit)."""

    path: str | None = None  # HF folder (config.json + safetensors); None = random init from the fields below
    hidden_size: int = 64
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 128
    patch_size: int = 8
    layers: tuple[int, ...] = (2, 4)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    position_init: str = "sincos"


@dataclass
class CNNConfig:
    """ConvNeXt-family CNN. `stages`: 1-based stage indices (stage s has stride 2**(s+1): H/4, H/8, ...).

    backend "hf": transformers ConvNextModel (folder or random init); "open_clip": an open_clip / timm
    ConvNeXt from a local checkpoint (the paper's CLIP ConvNeXt-L; needs the optional `open_clip` extra).
    mean, std: the normalisation of its input pixels (in [0, 1]); CLIP models have their own.
    """

    backend: str = "hf"
    path: str | None = None
    model_name: str = "convnext_large_d_320"  # open_clip architecture name, used by backend "open_clip"
    hidden_sizes: tuple[int, ...] = (16, 32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    stages: tuple[int, ...] = (1, 2, 3)
    scale_channels: int = 32  # common width each scale is brought to before concatenation
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class LLMConfig:
    """LLaMA decoder. With `path`, weights and config come from that HF folder."""

    path: str | None = None
    vocab_size: int = 512
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    rms_norm_eps: float = 1e-5


@dataclass
class AdapterConfig:
    """Stage-3 bias + shift: y = alpha * (W x + beta), beta = 0, alpha ~ N(1, alpha_init_std**2)."""

    alpha_init_std: float = 1e-3


@dataclass
class EarthGPTConfig:
    preset: str = "tiny"
    image_size: int = 64  # square input side in pixels, a multiple of the ViT patch size
    vit: ViTConfig = field(default_factory=ViTConfig)
    cnn: CNNConfig = field(default_factory=CNNConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    tokenizer_path: str | None = None  # folder of a saved tokenizer; the paper preset uses the LLaMA folder
    max_text_tokens: int = 768  # text budget per sample; visual tokens come on top and are never cut

    @property
    def grid(self) -> int:
        """Side of the visual token grid: image_size / patch_size."""
        return self.image_size // self.vit.patch_size

    @property
    def num_visual_tokens(self) -> int:
        return self.grid * self.grid

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EarthGPTConfig:
        """Inverse of `to_dict` (JSON lists become tuples again). Folders saved before each encoder had its
        own statistics carry one `image_mean` / `image_std` for both: they go to both encoders."""
        data = dict(data)
        shared = {"mean": data.pop("image_mean", None), "std": data.pop("image_std", None)}
        kwargs = _tuples({k: v for k, v in data.items() if k not in _NESTED})
        for name, kind in _NESTED.items():
            if name in data:
                fields = _tuples(data[name])
                if name in ("vit", "cnn"):
                    fields = {k: tuple(v) for k, v in shared.items() if v is not None} | fields
                kwargs[name] = kind(**fields)
        return cls(**kwargs)


_NESTED = {"vit": ViTConfig, "cnn": CNNConfig, "llm": LLMConfig, "adapter": AdapterConfig}


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def tiny() -> EarthGPTConfig:
    """CPU preset: 64 px images, 8x8 = 64 visual tokens, a 2-layer 128-wide LLaMA."""
    return EarthGPTConfig()


def paper(llama_path: str, dinov2_path: str, convnext_path: str) -> EarthGPTConfig:
    """The paper's encoders and LLM from local or s3:// folders.

    DINOv2 ViT-L/14 at 224 px gives a 16x16 grid (256 visual tokens); layers 8, 16 and 24 of 24 are
    taken. CLIP ConvNeXt-L stages 1-3 (H/4, H/8, H/16) are pooled to that grid.
    """
    return EarthGPTConfig(
        preset="paper",
        image_size=224,
        vit=ViTConfig(path=dinov2_path, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                      intermediate_size=4096, patch_size=14, layers=(8, 16, 24)),
        cnn=CNNConfig(backend="open_clip", path=convnext_path, hidden_sizes=(192, 384, 768, 1536),
                      depths=(3, 3, 27, 3), stages=(1, 2, 3), scale_channels=512, mean=CLIP_MEAN, std=CLIP_STD),
        llm=LLMConfig(path=llama_path, vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                      max_position_embeddings=4096, rms_norm_eps=1e-5),
        tokenizer_path=llama_path,
        max_text_tokens=2048 - 256,
    )

