"""The SAM 3 image backbone: a ViT with windowed and global attention and 2D axial RoPE.

Parameter names follow the hub checkpoint (`layers.0.attention.q_proj.weight`, ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import Sam3ViTConfig, as_pair
from ..layers import MLP, AxialRoPE, RoPEAttention


class PatchEmbeddings(nn.Module):
    """Non-overlapping patch projection plus learnt position embeddings tiled to the input grid."""

    def __init__(self, config: Sam3ViTConfig):
        super().__init__()
        patch = as_pair(config.patch_size)
        pre_h, pre_w = as_pair(config.pretrain_image_size)
        self.patch_size = patch
        self.pretrain_grid = (pre_h // patch[0], pre_w // patch[1])
        self.patch_embeddings = nn.Module()
        self.patch_embeddings.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=patch, stride=patch, bias=False
        )
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, self.pretrain_grid[0] * self.pretrain_grid[1], config.hidden_size)
        )

    def tiled_position_embeddings(self, height: int, width: int) -> torch.Tensor:
        """(1, height, width, C): the pretraining grid repeated (not interpolated) to cover the input."""
        ph, pw = self.pretrain_grid
        grid = self.position_embeddings.view(1, ph, pw, -1)
        reps_h, reps_w = -(-height // ph), -(-width // pw)
        return grid.repeat(1, reps_h, reps_w, 1)[:, :height, :width]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        proj = self.patch_embeddings.projection
        pixel_values = pixel_values.to(proj.weight.dtype)
        b, c, height, width = pixel_values.shape
        (ph, pw), (h, w) = self.patch_size, (height // self.patch_size[0], width // self.patch_size[1])
        if height % ph or width % pw:  # the convolution drops the remainder
            x = proj(pixel_values).permute(0, 2, 3, 1)  # (B, h, w, C)
        else:
            # Non-overlapping patches: the convolution is one matmul over flattened patches, which
            # is ~3x faster than the CPU's bf16 convolution and lands in (B, h, w, C) directly.
            patches = pixel_values.view(b, c, h, ph, w, pw).permute(0, 2, 4, 1, 3, 5).reshape(b, h, w, -1)
            x = F.linear(patches, proj.weight.reshape(proj.out_channels, -1))  # (B, h, w, C)
        return x + self.tiled_position_embeddings(h, w)


def _to_windows(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) → (B * nWindows, size, size, C), zero-padding H and W up to multiples of size."""
    b, h, w, c = x.shape
    pad_h, pad_w = (-h) % size, (-w) % size
    if pad_h or pad_w:  # F.pad copies even when it adds nothing (1008 px: 72 = 3 windows of 24)
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // size, size, wp // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size, size, c), (hp, wp)


def _from_windows(
    windows: torch.Tensor, size: int, padded: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of `_to_windows`, dropping the padding."""
    hp, wp = padded
    c = windows.shape[-1]
    b = windows.shape[0] // ((hp // size) * (wp // size))
    x = windows.view(b, hp // size, wp // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, c)[:, : hw[0], : hw[1]]


class ViTLayer(nn.Module):
    """Pre-norm transformer layer; attention is windowed when `window_size` > 0, else global."""

    def __init__(self, config: Sam3ViTConfig, window_size: int):
        super().__init__()
        self.window_size = window_size
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = RoPEAttention(config.hidden_size, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(
            [config.hidden_size, config.intermediate_size, config.hidden_size], config.hidden_act, names="fc"
        )
        # The RoPE grid: a window, or the whole image at the configured size. Global layers scale
        # their coordinates so that the grid spans the same range as one window.
        if window_size > 0:
            self.rope_grid = (window_size, window_size)
        else:
            self.rope_grid = config.grid_size
        self.rope = AxialRoPE(
            self.rope_grid[1],
            self.rope_grid[0],
            config.hidden_size // config.num_attention_heads,
            float(config.rope_parameters.get("rope_theta", 10000.0)),
            scale=config.window_size / self.rope_grid[1],
        )

    def _self_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B', h, w, C) grid (windows or the image) → (B', h, w, C)."""
        tokens = x.flatten(1, 2)  # (B', h*w, C), a view
        out = self.attention(tokens, tokens, tokens, self.rope(x.device))
        return out.view(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, H, W, C)
        shortcut = x
        x = self.layer_norm1(x)
        if self.window_size > 0:
            hw = (x.shape[1], x.shape[2])
            # Windows fold into the batch dim, so one SDPA call attends within all of them.
            x, padded = _to_windows(x, self.window_size)
            x = self._self_attention(x)
            x = _from_windows(x, self.window_size, padded, hw)
        else:
            if (x.shape[1], x.shape[2]) != self.rope_grid:
                raise ValueError(
                    f"the backbone was configured for a {self.rope_grid} patch grid "
                    f"(image_size / patch_size) but got {tuple(x.shape[1:3])}; resize images to the model size"
                )
            x = self._self_attention(x)
        x = shortcut + x
        return x + self.mlp(self.layer_norm2(x))


class Sam3ViTModel(nn.Module):
    """The ViT backbone: pixels (B, 3, S, S) → tokens (B, (S/patch)², hidden_size)."""

    def __init__(self, config: Sam3ViTConfig):
        super().__init__()
        self.config = config
        self.embeddings = PatchEmbeddings(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(
            ViTLayer(config, 0 if i in config.global_attn_indexes else config.window_size)
            for i in range(config.num_hidden_layers)
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(self.embeddings(pixel_values))  # (B, H, W, C)
        for layer in self.layers:
            x = layer(x)
        return x.flatten(1, 2)
