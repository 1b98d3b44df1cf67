"""Instance scores of the concept detector: query · pooled prompt."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...config import (
    Sam3Config,
)
from ..layers import MLP


class Sam3DotProductScoring(nn.Module):
    """Query logits: projected queries · projected mean-pooled prompt tokens, scaled and clamped."""

    logit_clamp = 12.0

    def __init__(self, config: Sam3Config):
        super().__init__()
        hidden = config.detr_decoder_config.hidden_size
        self.text_mlp = MLP([hidden, config.detr_decoder_config.intermediate_size, hidden], names="layer")
        self.text_mlp_out_norm = nn.LayerNorm(hidden)
        self.text_proj = nn.Linear(hidden, hidden)
        self.query_proj = nn.Linear(hidden, hidden)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(
        self, queries: torch.Tensor, prompt: torch.Tensor, prompt_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """queries (B, Q, C), prompt (B, L, C), prompt_mask (B, L) → logits (B, Q)."""
        prompt = self.text_mlp_out_norm(self.text_mlp(prompt) + prompt)
        if prompt_mask is None:
            pooled = prompt.mean(1)
        else:
            valid = prompt_mask.to(prompt.dtype)[..., None]
            pooled = (prompt * valid).sum(1) / valid.sum(1).clamp(min=1.0)  # (B, C)
        text = self.text_proj(pooled)
        logits = (self.query_proj(queries) @ text[..., None]).squeeze(-1) * self.scale
        return logits.clamp(-self.logit_clamp, self.logit_clamp)
