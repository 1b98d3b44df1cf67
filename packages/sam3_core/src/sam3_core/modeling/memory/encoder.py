"""The memory encoder: a frame's image features plus its predicted mask -> a compact memory map
(`memory_encoder_output_channels` wide, 64 in SAM 3) and its sine position encoding.

Parameter names follow the hub checkpoint (`memory_encoder.memory_fuser.layers.0.scale`, ...).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...config import Sam3TrackerVideoConfig
from ..layers import LayerNorm2d, activation, feed_forward, sine_position_encoding_2d


class _DownSampleLayer(nn.Module):
    """Strided conv -> channel LayerNorm -> activation."""

    def __init__(self, config: Sam3TrackerVideoConfig, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=config.mask_downsampler_kernel_size,
            stride=config.mask_downsampler_stride,
            padding=config.mask_downsampler_padding,
        )
        self.layer_norm = LayerNorm2d(out_channels, eps=1e-6)
        self.act = activation(config.mask_downsampler_hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.layer_norm(self.conv(x)))


class MaskDownSampler(nn.Module):
    """(N, 1, H, W) mask -> (N, embed_dim, H / total_stride, W / total_stride).

    Each layer divides the side by `stride` and multiplies the channels by stride², then a 1x1
    conv projects to `mask_downsampler_embed_dim`.
    """

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        stride, total = config.mask_downsampler_stride, config.mask_downsampler_total_stride
        num_layers = int(math.log2(total) // math.log2(stride))
        channels = [stride ** (2 * i) for i in range(num_layers + 1)]  # 1, s², s⁴, ...
        self.layers = nn.ModuleList(
            _DownSampleLayer(config, channels[i], channels[i + 1]) for i in range(num_layers)
        )
        self.final_conv = nn.Conv2d(channels[-1], config.mask_downsampler_embed_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.final_conv(x)


class _FuserBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        dim = config.memory_fuser_embed_dim
        self.depthwise_conv = nn.Conv2d(
            dim,
            dim,
            kernel_size=config.memory_fuser_kernel_size,
            padding=config.memory_fuser_padding,
            groups=dim,
        )
        self.layer_norm = LayerNorm2d(dim, eps=1e-6)
        self.act = activation(config.memory_fuser_hidden_act)
        self.pointwise_conv1 = nn.Linear(dim, config.memory_fuser_intermediate_dim)
        self.pointwise_conv2 = nn.Linear(config.memory_fuser_intermediate_dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), config.memory_fuser_layer_scale_init_value))

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, H, W)
        h = self.layer_norm(self.depthwise_conv(x)).permute(0, 2, 3, 1)  # (N, H, W, C)
        h = self.scale * feed_forward(h, [self.pointwise_conv1, self.pointwise_conv2], self.act)
        return x + h.permute(0, 3, 1, 2)


class MemoryFuser(nn.Module):
    """A stack of ConvNeXt blocks mixing image features with the downsampled mask."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_FuserBlock(config) for _ in range(config.memory_fuser_num_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Image features + mask -> memory features and their sine position encoding."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        hidden = config.memory_encoder_hidden_size
        self.output_channels = config.memory_encoder_output_channels
        self.mask_downsampler = MaskDownSampler(config)
        self.feature_projection = nn.Conv2d(hidden, hidden, kernel_size=1)
        self.memory_fuser = MemoryFuser(config)
        self.projection = nn.Conv2d(hidden, self.output_channels, kernel_size=1)

    def forward(self, vision_features: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """vision_features (N, C, h, w), masks (N, 1, 16h, 16w) already scaled for the encoder.

        Returns (features, position encoding), both (N, output_channels, h, w).
        """
        fused = self.feature_projection(vision_features) + self.mask_downsampler(masks)
        features = self.projection(self.memory_fuser(fused))
        n, _, h, w = features.shape
        pos = sine_position_encoding_2d(
            n, h, w, self.output_channels // 2, device=features.device, dtype=features.dtype
        )
        return features, pos
