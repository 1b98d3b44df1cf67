"""The concept detector's mask head: a pixel decoder, instance masks and a semantic map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import (
    Sam3MaskDecoderConfig,
)
from ..layers import MLP, Attention, channels_last_conv
from .sequences import key_padding_mask


class Sam3PixelDecoder(nn.Module):
    """Top-down FPN: upsample (nearest), add the finer level, conv 3x3 → GroupNorm(8) → ReLU."""

    def __init__(self, config: Sam3MaskDecoderConfig):
        super().__init__()
        hidden = config.hidden_size
        stages = config.num_upsampling_stages
        self.conv_layers = nn.ModuleList(nn.Conv2d(hidden, hidden, 3, padding=1) for _ in range(stages))
        self.norms = nn.ModuleList(nn.GroupNorm(8, hidden) for _ in range(stages))

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """levels: (B, C, H_i, W_i) finest first → (B, C, H_0, W_0)."""
        x = levels[-1]
        for i, finer in enumerate(reversed(levels[:-1])):
            # in place where possible: at 288x288 each new map is 85 MB of fresh pages to fault in
            x = F.interpolate(x.contiguous(memory_format=torch.channels_last), size=finer.shape[-2:])
            x += finer
            # channels-last convolution (no oneDNN reorders; see `channels_last_conv`)
            x = F.relu(self.norms[i](channels_last_conv(self.conv_layers[i], x)), inplace=True)
        return x


class Sam3MaskDecoder(nn.Module):
    """Instance masks (mask embedding · pixel embedding) and a one-channel semantic map.

    The encoded image tokens first cross-attend the prompt once more, then replace the coarsest
    FPN level fed to the pixel decoder.
    """

    def __init__(self, config: Sam3MaskDecoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.pixel_decoder = Sam3PixelDecoder(config)
        self.mask_embedder = MLP([hidden] * 4)  # 3 ReLU layers: layers.0..2
        self.instance_projection = nn.Conv2d(hidden, hidden, 1)
        self.semantic_projection = nn.Conv2d(hidden, 1, 1)
        self.prompt_cross_attn = Attention(hidden, config.num_attention_heads)
        self.prompt_cross_attn_norm = nn.LayerNorm(hidden)

    def forward(
        self,
        queries: torch.Tensor,
        fpn_levels: list[torch.Tensor],
        encoded_image: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            queries: (B, Q, C) decoder queries.
            fpn_levels: FPN maps (B, C, H_i, W_i) finest first; the last has the encoder's resolution.
            encoded_image: (B, H*W, C) DETR encoder output.
            prompt, prompt_mask: (B, L, C) and (B, L).

        Returns:
            instance mask logits (B, Q, H_0, W_0) and semantic logits (B, 1, H_0, W_0).
        """
        x = self.prompt_cross_attn_norm(encoded_image)
        encoded_image = encoded_image + self.prompt_cross_attn(
            x, prompt, prompt, key_padding_mask(prompt_mask)
        )
        b, _, c = encoded_image.shape
        h, w = fpn_levels[-1].shape[-2:]
        levels = list(fpn_levels[:-1]) + [encoded_image[:, : h * w].transpose(1, 2).reshape(b, c, h, w)]
        pixels = self.pixel_decoder(levels)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embedder(queries), self.instance_projection(pixels))
        return masks, self.semantic_projection(pixels)
