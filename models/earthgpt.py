"""EarthGPT: visual tokens placed before the text tokens (paper Eq. 8) of a LLaMA decoder.

    X = [V_p^1 .. V_p^Nv, L_p^1 .. L_p^Nl]      visual tokens (B, Nv, D) then text embeddings (B, T, D)

Labels of visual positions are -100, so the loss (Eq. 14) covers text only (and, through the template,
only assistant tokens). Stage 2 / stage 3 structure and trainable tensors come from `adapters.py`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from models.adapters import POLICIES, ScaleShiftLinear, add_qkv_bias, add_scale_shift
from models.config import EarthGPTConfig, LLMConfig
from models.vision import VisualPerception
from models.weights import localize

IGNORE_INDEX = -100


def build_llm(config: LLMConfig) -> LlamaForCausalLM:
    """LLaMA from an HF folder (config + safetensors), or randomly initialised from the fields."""
    if config.path:
        return LlamaForCausalLM.from_pretrained(localize(config.path, "LLaMA"), dtype=torch.float32)
    return LlamaForCausalLM(llama_config(config))


def llama_config(config: LLMConfig) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads, max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=config.rms_norm_eps, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False,
    )


class EarthGPT(nn.Module):
    def __init__(self, config: EarthGPTConfig, llm: LlamaForCausalLM | None = None,
                 vision: VisualPerception | None = None):
        super().__init__()
        self.config = config
        self.llm = llm if llm is not None else build_llm(config.llm)
        add_qkv_bias(self.llm)
        self.vision = vision if vision is not None else VisualPerception(config, self.llm.config.hidden_size)

    # --- structure and trainable policy ---------------------------------------------------------------
    @property
    def stage(self) -> str:
        """"stage3" once the bias + shift adapters are in place, else "stage2"."""
        return "stage3" if any(isinstance(m, ScaleShiftLinear) for m in self.llm.modules()) else "stage2"

    def set_stage(self, stage: str) -> list[str]:
        """Shape the model for `stage` and make exactly its policy's tensors trainable. Returns their names."""
        if stage not in POLICIES:
            raise ValueError(f"unknown stage {stage!r} (have {', '.join(POLICIES)})")
        if stage == "stage3" and self.stage != "stage3":
            add_scale_shift(self.llm.model.layers, self.config.adapter.alpha_init_std)
        if stage != "stage3" and self.stage == "stage3":
            raise ValueError(f"a stage-3 model cannot go back to {stage}")
        return POLICIES[stage].apply(self)

    # --- forward -------------------------------------------------------------------------------------------
    def embed(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """pixels (B, C, S, S), input_ids / attention_mask (B, T) -> embeds (B, Nv+T, D), mask (B, Nv+T)."""
        visual = self.vision(pixels)
        text = self.llm.get_input_embeddings()(input_ids)
        visual = visual.to(text.dtype)
        mask = torch.cat([attention_mask.new_ones(visual.shape[:2]), attention_mask], dim=1)
        return torch.cat([visual, text], dim=1), mask

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> CausalLMOutputWithPast:
        """labels (B, T) with IGNORE_INDEX on non-assistant tokens; loss = mean CE over labelled tokens."""
        embeds, mask = self.embed(pixels, input_ids, attention_mask)
        if labels is not None:
            labels = torch.cat([labels.new_full((labels.shape[0], self.vision.num_tokens), IGNORE_INDEX), labels],
                               dim=1)
        return self.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels, use_cache=False)

    def text_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """No image: mean next-token loss over every real token of (B, T) ids (the text pretraining stand-in)."""
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        return self.llm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, use_cache=False).loss

    @torch.no_grad()
    def generate(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 max_new_tokens: int = 64, do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                 use_cache: bool = True, eos_token_id: int | None = None, pad_token_id: int | None = None
                 ) -> torch.Tensor:
        """Continue left-padded prompts (B, T) -> new tokens (B, <= max_new_tokens), stopping at end of turn.

        With the KV cache this is transformers' `generate` on `inputs_embeds`; without it, every step
        re-runs the whole sequence (the baseline the cache is measured against; HF would cache anyway).
        """
        embeds, mask = self.embed(pixels, input_ids, attention_mask)
        eos = self.llm.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = self.llm.config.pad_token_id if pad_token_id is None else pad_token_id
        if not use_cache:
            return self._generate_without_cache(embeds, mask, max_new_tokens, do_sample, temperature, top_p, eos,
                                                pad)
        sampling = {"temperature": temperature, "top_p": top_p} if do_sample else {}
        return self.llm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=do_sample, use_cache=True, eos_token_id=eos, pad_token_id=pad,
                                 **sampling)

    def _generate_without_cache(self, embeds: torch.Tensor, mask: torch.Tensor, max_new_tokens: int,
                                do_sample: bool, temperature: float, top_p: float, eos: int, pad: int
                                ) -> torch.Tensor:
        finished = torch.zeros(embeds.shape[0], dtype=torch.bool, device=embeds.device)
        new_tokens = []
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
            logits = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                              use_cache=False).logits[:, -1].float()
            token = _pick(logits, do_sample, temperature, top_p)
            token = torch.where(finished, torch.full_like(token, pad), token)
            new_tokens.append(token)
            finished |= token == eos
            if finished.all():
                break
            embeds = torch.cat([embeds, self.llm.get_input_embeddings()(token)[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        return torch.stack(new_tokens, dim=1)


def _pick(logits: torch.Tensor, do_sample: bool, temperature: float, top_p: float) -> torch.Tensor:
    """(B, V) logits -> (B,) next tokens: argmax, or temperature + nucleus (top-p) sampling."""
    if not do_sample:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < top_p  # always keeps the most likely token
    sorted_probs = sorted_probs * keep
    choice = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1)
    return order.gather(-1, choice)[:, 0]
