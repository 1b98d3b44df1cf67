"""EdgeTAM's 2D spatial perceiver: a frame's memory map compressed into a few latent tokens.

    memory map (N, C_mem, h, w) + its position encoding
      --global latents attend to every position (with the position encoding)--> (N, L1, C_mem)
      --one latent per window of a k x k grid attends to its window--> (N, k*k, C_mem)
    → tokens (N, L1 + k*k, C_mem), position encodings: zeros for the global latents, the sine
      encoding of the k x k grid for the windowed ones

The memory attention then attends to L1 + k*k tokens per remembered frame instead of h*w (4096
for a 1024 px input), which is what makes EdgeTAM's memory cheap.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config.edgetam import EdgeTamVideoConfig
from ..layers import MLP, Attention, sine_position_encoding_2d

__all__ = ["SpatialPerceiver"]


class PerceiverAttention(Attention):
    """Attention without biases; a position encoding, when given, is added to the projected keys AND
    values (not to the inputs, as elsewhere)."""

    def __init__(self, hidden: int, heads: int, head_dim: int):
        super().__init__(hidden, heads, internal_size=heads * head_dim, bias=False)

    def forward(self, query: Tensor, key_value: Tensor, pos: Tensor | None = None) -> Tensor:
        """query (B, Lq, C), key_value (B, Lk, C), pos (B, Lk, heads*head_dim) → (B, Lq, C)."""
        q, k, v = self._project(query, key_value, key_value)  # (B, nh, L, hd)
        if pos is not None:
            p = self._heads(pos, q.shape[0])
            k, v = k + p, v + p
        return self._attend(q, k, v, None, query.shape[:-1])


def _perceiver_mlp(hidden: int, intermediate: int) -> MLP:
    """Pre-norm GELU MLP without biases (`layer_norm`, `up_proj`, `down_proj`)."""
    return MLP([hidden, intermediate, hidden], "gelu", names="proj", bias=False, pre_norm=True)


class PerceiverLayer(nn.Module):
    """Latents cross-attend to the inputs, then an MLP, self-attention and another MLP."""

    def __init__(self, config: EdgeTamVideoConfig):
        super().__init__()
        hidden = config.perceiver_resampler_hidden_size
        heads, head_dim = (
            config.perceiver_resampler_num_attention_heads,
            config.perceiver_resampler_attention_head_dim,
        )
        intermediate = config.perceiver_resampler_mlp_intermediate_size
        self.cross_attention = PerceiverAttention(hidden, heads, head_dim)
        self.mlp = _perceiver_mlp(hidden, intermediate)
        self.self_attention = PerceiverAttention(hidden, heads, head_dim)
        self.self_mlp = _perceiver_mlp(hidden, intermediate)
        self.layer_norm_input = nn.LayerNorm(hidden)
        self.layer_norm_latents = nn.LayerNorm(hidden)
        self.layer_norm_self = nn.LayerNorm(hidden)

    def forward(self, latents: Tensor, inputs: Tensor, pos: Tensor | None = None) -> Tensor:
        """latents (B, L, C), inputs (B, M, C), pos (B, M, C) or None → (B, L, C)."""
        x = self.layer_norm_input(inputs)
        latents = latents + self.cross_attention(self.layer_norm_latents(latents), x, pos)
        latents = latents + self.mlp(latents)
        h = self.layer_norm_self(latents)
        latents = latents + self.self_attention(h, h)
        return latents + self.self_mlp(latents)


class SpatialPerceiver(nn.Module):
    """memory map (N, C, h, w), pos (N, C, h, w) → tokens (N, L, C), pos (N, L, C)."""

    def __init__(self, config: EdgeTamVideoConfig):
        super().__init__()
        hidden = config.perceiver_resampler_hidden_size
        self.hidden_size = hidden
        self.num_latents_1d = config.perceiver_resampler_num_latents
        self.num_latents_2d = config.perceiver_resampler_num_latents_2d
        if self.num_latents_1d > 0:
            self.latents_1d = nn.Parameter(torch.zeros(self.num_latents_1d, hidden))
        if self.num_latents_2d > 0:
            self.latents_2d = nn.Parameter(torch.zeros(self.num_latents_2d, hidden))
        self.grid_2d = math.isqrt(self.num_latents_2d)  # windows per side
        self.layers = nn.ModuleList(
            PerceiverLayer(config) for _ in range(config.perceiver_resampler_num_layers)
        )
        self.layer_norm = nn.LayerNorm(hidden)

    @property
    def tokens_per_frame(self) -> int:
        return self.num_latents_1d + self.num_latents_2d

    def forward(self, memory: Tensor, memory_pos: Tensor) -> tuple[Tensor, Tensor]:
        tokens, pos = [], []
        if self.num_latents_1d > 0:
            t = self._global(memory, memory_pos)
            tokens.append(t)
            pos.append(torch.zeros_like(t))
        if self.num_latents_2d > 0:
            t, p = self._windowed(memory)
            tokens.append(t)
            pos.append(p)
        return torch.cat(tokens, dim=1), torch.cat(pos, dim=1)

    def _global(self, memory: Tensor, memory_pos: Tensor) -> Tensor:
        """Global latents over every position: (N, L1, C)."""
        n = memory.shape[0]
        latents = self.latents_1d.unsqueeze(0).expand(n, -1, -1)
        inputs = memory.flatten(2).transpose(1, 2)  # (N, h*w, C)
        pos = memory_pos.flatten(2).transpose(1, 2)
        for layer in self.layers:
            latents = layer(latents, inputs, pos)
        return self.layer_norm(latents)

    def _windowed(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """One latent per window of a k x k grid over the map: (N, k*k, C) and their encodings."""
        n, c, h, w = memory.shape
        k = self.grid_2d
        window = h // k
        x = memory.permute(0, 2, 3, 1)  # (N, h, w, C)
        pad_h, pad_w = (-h) % window, (-w) % window
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        nh, nw = (h + pad_h) // window, (w + pad_w) // window
        windows = x.reshape(n, nh, window, nw, window, c).transpose(2, 3).reshape(-1, window * window, c)
        latents = self.latents_2d.unsqueeze(0).expand(n, -1, -1).reshape(-1, 1, c)  # (N*k*k, 1, C)
        for layer in self.layers:
            latents = layer(latents, windows, None)
        grid = latents.reshape(n, k, k, c)
        pos = sine_position_encoding_2d(n, k, k, c // 2, device=memory.device, dtype=memory.dtype)
        pos = pos.flatten(2).transpose(1, 2)  # (N, k*k, C)
        return self.layer_norm(grid.reshape(n, k * k, c)), pos
