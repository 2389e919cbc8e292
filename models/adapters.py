"""Adapters and per-stage trainable policies.

Stage 2 (cross-modal alignment, Eqs. 9-13): q/k/v projections get biases, and q/k/v, every RMSNorm scale
and the visual projection train. Stage 3 (unified instruction tuning, Eqs. 15-16): everything above is
frozen and each linear layer of the LLM's blocks becomes y = alpha * (W x + beta); only alpha and beta train.
As in LLaMA-Adapter V2, the output head (lm_head) keeps its plain form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn


def add_qkv_bias(llm: nn.Module) -> int:
    """Give every q_proj / k_proj / v_proj a zero-initialised bias (a no-op on the function). Returns count."""
    replaced = 0
    for module in llm.modules():
        for name in ("q_proj", "k_proj", "v_proj"):
            old = getattr(module, name, None)
            if isinstance(old, nn.Linear) and old.bias is None:
                new = nn.Linear(old.in_features, old.out_features, bias=True, device=old.weight.device,
                                dtype=old.weight.dtype)
                with torch.no_grad():
                    new.weight.copy_(old.weight)
                    new.bias.zero_()
                setattr(module, name, new)
                replaced += 1
    return replaced


class ScaleShiftLinear(nn.Module):
    """y = alpha * (base(x) + beta): beta (out,) zeros, alpha (out,) ~ N(1, std^2) (std 0: identity)."""

    def __init__(self, base: nn.Linear, alpha_init_std: float):
        super().__init__()
        self.base = base
        out = base.out_features
        self.beta = nn.Parameter(torch.zeros(out, device=base.weight.device, dtype=base.weight.dtype))
        alpha = torch.ones(out, device=base.weight.device, dtype=base.weight.dtype)
        if alpha_init_std > 0:
            alpha = alpha + alpha_init_std * torch.randn_like(alpha)
        self.alpha = nn.Parameter(alpha)

    @property
    def weight(self) -> torch.Tensor:  # some HF code paths read `.weight` of projections for dtype/device
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * (self.base(x) + self.beta)


def add_scale_shift(blocks: nn.Module, alpha_init_std: float) -> int:
    """Wrap every nn.Linear under `blocks` (the decoder layers) in ScaleShiftLinear. Returns count."""
    targets = [(parent, name, child) for parent in blocks.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Linear)]
    for parent, name, child in targets:
        setattr(parent, name, ScaleShiftLinear(child, alpha_init_std))
    return len(targets)


@dataclass(frozen=True)
class TrainablePolicy:
    """Which parameters train, as full-match regular expressions over `named_parameters()` names."""

    name: str
    patterns: tuple[str, ...]

    def matches(self, param_name: str) -> bool:
        return any(re.fullmatch(p, param_name) for p in self.patterns)

    def apply(self, model: nn.Module) -> list[str]:
        """Set requires_grad accordingly; return the trainable names (sorted)."""
        names = []
        for name, param in model.named_parameters():
            param.requires_grad_(self.matches(name))
            if param.requires_grad:
                names.append(name)
        return sorted(names)


STAGE2 = TrainablePolicy("stage2_alignment", (
    r"vision\.projector\..*",
    r"llm\.model\.layers\.\d+\.self_attn\.[qkv]_proj\.(base\.)?(weight|bias)",
    r"llm\.model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight",
    r"llm\.model\.norm\.weight",
))
STAGE3 = TrainablePolicy("stage3_instruction", (r"llm\.model\.layers\.\d+\..*\.(alpha|beta)",))
# Not a stage of the paper, which starts from a pretrained LLaMA-2: the tiny preset's random-init LLM gets
# a stand-in for that pretraining (causal LM on the MMRS training text, every LLM weight, no image).
TEXT_PRETRAINING = TrainablePolicy("text_pretraining_stand_in", (r"llm\..*",))
POLICIES = {"text": TEXT_PRETRAINING, "stage2": STAGE2, "stage3": STAGE3}


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """What the optimiser receives: exactly the parameters with requires_grad."""
    return [p for p in model.parameters() if p.requires_grad]
