"""The DETR encoder: image tokens of one FPN level fused with the prompt tokens."""

from __future__ import annotations

import torch
from torch import nn

from ...config import (
    Sam3DETREncoderConfig,
)
from ..layers import MLP, Attention
from .sequences import key_padding_mask


class Sam3DetrEncoderLayer(nn.Module):
    """Pre-norm layer on image tokens: self-attention (with positions), cross-attention to the prompt, MLP."""

    def __init__(self, config: Sam3DETREncoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.self_attn = Attention(hidden, config.num_attention_heads)
        self.cross_attn = Attention(hidden, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.mlp = MLP([hidden, config.intermediate_size, hidden], config.hidden_act, names="fc")
        self.layer_norm3 = nn.LayerNorm(hidden)

    def forward(
        self,
        image: torch.Tensor,
        prompt: torch.Tensor,
        image_pos: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.layer_norm1(image)
        with_pos = x + image_pos
        image = image + self.self_attn(with_pos, with_pos, x)
        x = self.layer_norm2(image)
        image = image + self.cross_attn(x, prompt, prompt, prompt_mask)
        return image + self.mlp(self.layer_norm3(image))


class Sam3DetrEncoder(nn.Module):
    """Fuses the image tokens of one FPN level with the prompt tokens."""

    def __init__(self, config: Sam3DETREncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(Sam3DetrEncoderLayer(config) for _ in range(config.num_layers))

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image, image_pos (B, C, H, W); prompt (B, L, C); prompt_mask (B, L) → tokens and positions (B, HW, C)."""
        tokens = image.flatten(2).transpose(1, 2)
        pos = image_pos.flatten(2).transpose(1, 2)
        attn_mask = key_padding_mask(prompt_mask)
        for layer in self.layers:
            tokens = layer(tokens, prompt, pos, attn_mask)
        return tokens, pos
