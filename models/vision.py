"""Visual-enhanced perception (paper Sec. III-B, Eqs. 1-7).

pixels (B, 3, S, S) -> frozen ViT: patch tokens of several blocks, concatenated channel-wise (Eq. 3)
                    -> frozen CNN: several stage maps, each pooled to the ViT grid and brought to a common
                       width, concatenated (Eq. 6)
                    -> Concat(Va, Vb) -> learnable projection to the LLM width (Eq. 7): (B, g*g, D_llm)

Single-channel SAR / infrared inputs (B, 1, S, S) are replicated to three channels before the encoders,
which were trained on RGB.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from transformers import ConvNextConfig, ConvNextModel, Dinov2Config, Dinov2Model

from models.config import CNNConfig, EarthGPTConfig, ViTConfig
from models.weights import localize

# The encoders are frozen: built without dropout and drop-path, they compute their inference function in
# train and eval mode alike, so the whole model can follow Lightning's train()/eval() switches.
_VIT_FROZEN = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "drop_path_rate": 0.0}
_CNN_FROZEN = {"drop_path_rate": 0.0}


def build_vit(config: ViTConfig, image_size: int) -> Dinov2Model:
    """DINOv2 from an HF folder, or randomly initialised from the config fields."""
    if config.path:
        return Dinov2Model.from_pretrained(localize(config.path, "DINOv2 ViT"), **_VIT_FROZEN)
    if config.position_init not in ("sincos", "random"):
        raise ValueError(f"vit.position_init must be 'sincos' or 'random', got {config.position_init!r}")
    vit = Dinov2Model(Dinov2Config(
        hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        patch_size=config.patch_size, image_size=image_size, **_VIT_FROZEN,
    ))
    if config.position_init == "sincos":
        grid = image_size // config.patch_size
        with torch.no_grad():
            vit.embeddings.position_embeddings[0, 1:] = SINCOS_AMPLITUDE * sincos_positions(grid, config.hidden_size)
    return vit


# A frozen random ViT stands in for DINOv2, whose patch tokens say where in the image they are. Its library
# init (position embeddings ~ N(0, 0.02) under patch embeddings of std ~0.15) hides that: a linear probe reads
# a token's row and column from its layer-2 and layer-4 features with R^2 0.30 / 0.38. Sine-cosine embeddings
# of std ~0.14 (amplitude 0.2) make it 0.98 / 0.97 and leave the tokens' content in place.
SINCOS_AMPLITUDE = 0.2


def sincos_positions(grid: int, width: int) -> torch.Tensor:
    """(grid * grid, width) 2-D sine-cosine position embeddings (MAE's): half the channels code the row, half
    the column, each as sines and cosines of geometrically spaced frequencies. Row-major like the patches."""
    if width % 4:
        raise ValueError(f"sine-cosine positions need a width divisible by 4, got {width}")
    quarter = width // 4
    frequencies = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32),
                                indexing="ij")
    parts = []
    for axis in (rows.flatten(), cols.flatten()):
        angles = axis[:, None] * frequencies[None]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1)


def _convnext_config(config: CNNConfig) -> ConvNextConfig:
    return ConvNextConfig(hidden_sizes=list(config.hidden_sizes), depths=list(config.depths),
                          num_stages=len(config.depths), **_CNN_FROZEN)


# open_clip / timm ConvNeXt trunk names -> transformers ConvNextModel names
_TIMM_TO_HF = (
    (r"^stem\.0\.", "embeddings.patch_embeddings."),
    (r"^stem\.1\.", "embeddings.layernorm."),
    (r"^stages\.(\d+)\.downsample\.(\d)\.", r"encoder.stages.\1.downsampling_layer.\2."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.", r"encoder.stages.\1.layers.\2.dwconv."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.norm\.", r"encoder.stages.\1.layers.\2.layernorm."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.", r"encoder.stages.\1.layers.\2.pwconv1."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.", r"encoder.stages.\1.layers.\2.pwconv2."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.gamma$", r"encoder.stages.\1.layers.\2.layer_scale_parameter"),
)


def timm_convnext_to_hf(state: dict[str, torch.Tensor], prefix: str = "visual.trunk.") -> dict[str, torch.Tensor]:
    """Rename an open_clip CLIP-ConvNeXt checkpoint's trunk tensors to ConvNextModel names (head dropped)."""
    out = {}
    for name, tensor in state.items():
        if not name.startswith(prefix):
            continue
        key = name[len(prefix):]
        for pattern, repl in _TIMM_TO_HF:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = tensor
                break
    return out


def build_cnn(config: CNNConfig) -> ConvNextModel:
    """ConvNeXt as a transformers ConvNextModel: from an HF folder ("hf"), from an open_clip checkpoint file
    or folder holding `open_clip_model.safetensors` ("open_clip"), or random init (no path)."""
    if not config.path:
        return ConvNextModel(_convnext_config(config))
    location = localize(config.path, "ConvNeXt CNN")
    if config.backend == "hf":
        return ConvNextModel.from_pretrained(location, **_CNN_FROZEN)
    if config.backend != "open_clip":
        raise ValueError(f"unknown CNN backend {config.backend!r} (hf | open_clip)")
    file = location / "open_clip_model.safetensors" if location.is_dir() else location
    model = ConvNextModel(_convnext_config(config))
    state = timm_convnext_to_hf(load_file(str(file)))
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.startswith("layernorm.")]  # final pooled norm: unused here
    if missing:
        raise ValueError(f"{file} lacks ConvNeXt tensors such as {missing[:3]} (is it a CLIP ConvNeXt for "
                         f"{config.model_name}?)")
    return model


class Projector(nn.Module):
    """The learnable part: per-scale CNN width alignment and the projection to the LLM width (Eq. 7)."""

    def __init__(self, vit_channels: int, cnn_channels: list[int], scale_channels: int, llm_width: int):
        super().__init__()
        self.scale_proj = nn.ModuleList(nn.Linear(c, scale_channels) for c in cnn_channels)
        self.proj = nn.Linear(vit_channels + scale_channels * len(cnn_channels), llm_width)

    def forward(self, vit_tokens: torch.Tensor, cnn_tokens: list[torch.Tensor]) -> torch.Tensor:
        """vit_tokens (B, N, n*D_vit), cnn_tokens [(B, N, C_s)] -> (B, N, D_llm)."""
        scales = [proj(t) for proj, t in zip(self.scale_proj, cnn_tokens, strict=True)]
        return self.proj(torch.cat([vit_tokens, *scales], dim=-1))


class VisualPerception(nn.Module):
    def __init__(self, config: EarthGPTConfig, llm_width: int, vit: Dinov2Model | None = None,
                 cnn: ConvNextModel | None = None):
        """Encoders are built from the config unless given (loading a saved model passes skeletons)."""
        super().__init__()
        self.config = config
        self.vit = vit if vit is not None else build_vit(config.vit, config.image_size)
        self.cnn = cnn if cnn is not None else build_cnn(config.cnn)
        for encoder in (self.vit, self.cnn):
            encoder.requires_grad_(False)
        self.set_normalisation()
        vit_width = self.vit.config.hidden_size * len(config.vit.layers)
        cnn_widths = [self.cnn.config.hidden_sizes[s - 1] for s in config.cnn.stages]
        self.projector = Projector(vit_width, cnn_widths, config.cnn.scale_channels, llm_width)

    def set_normalisation(self, device: torch.device | str | None = None) -> None:
        """Each encoder's input mean and std (1, 3, 1, 1) as buffers, from the config (not saved)."""
        for name, encoder in (("vit", self.config.vit), ("cnn", self.config.cnn)):
            for stat in ("mean", "std"):
                value = torch.tensor(getattr(encoder, stat), device=device).view(1, 3, 1, 1)
                self.register_buffer(f"{name}_{stat}", value, persistent=False)

    @property
    def num_tokens(self) -> int:
        return self.config.num_visual_tokens

    def vit_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, g*g, n_layers * D_vit): patch tokens (CLS dropped) of the chosen blocks."""
        hidden = self.vit(pixels, output_hidden_states=True).hidden_states  # [embeddings, block1, ...]
        return torch.cat([hidden[i][:, 1:, :] for i in self.config.vit.layers], dim=-1)

    def cnn_features(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) -> [(B, g*g, C_s)] per chosen stage, each resampled to the g x g ViT grid."""
        grid = self.config.grid
        hidden = self.cnn(pixels, output_hidden_states=True).hidden_states  # [stem, stage1, stage2, ...]
        out = []
        for stage in self.config.cnn.stages:
            fmap = hidden[stage]
            if fmap.shape[-1] >= grid:
                fmap = F.adaptive_avg_pool2d(fmap, grid)
            else:
                fmap = F.interpolate(fmap, size=(grid, grid), mode="bilinear", align_corners=False)
            out.append(fmap.flatten(2).transpose(1, 2))
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, C, S, S) in [0, 1], C in {1, 3} -> visual tokens (B, g*g, D_llm). Each encoder sees the
        pixels normalised with its own statistics (DINOv2: ImageNet's; the paper's CLIP ConvNeXt: CLIP's)."""
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        with torch.no_grad():
            vit_tokens = self.vit_features((pixels - self.vit_mean) / self.vit_std)
            cnn_tokens = self.cnn_features((pixels - self.cnn_mean) / self.cnn_std)
        return self.projector(vit_tokens, cnn_tokens)
