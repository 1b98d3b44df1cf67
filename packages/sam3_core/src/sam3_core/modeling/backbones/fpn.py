"""The FPN neck that turns the ViT's single feature map into a pyramid (4x, 2x, 1x, 0.5x)."""

from __future__ import annotations

import torch
from torch import nn

from ...config import Sam3VisionConfig
from ..layers import ConvTranspose2x2, channels_last_conv, sine_position_encoding_2d


class FPNLevel(nn.Module):
    """Resample the backbone map by a factor of 4, 2, 1 or 0.5, then 1x1 and 3x3 convolutions."""

    def __init__(self, in_channels: int, out_channels: int, scale: float):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        if scale == 4.0:
            layers = [
                ConvTranspose2x2(channels, channels // 2),
                nn.GELU(),
                ConvTranspose2x2(channels // 2, channels // 4),
            ]
            channels //= 4
        elif scale == 2.0:
            layers = [ConvTranspose2x2(channels, channels // 2)]
            channels //= 2
        elif scale == 0.5:
            layers = [nn.MaxPool2d(kernel_size=2, stride=2)]
        elif scale != 1.0:
            raise ValueError(f"FPN scale factor {scale} is not supported; expected 4.0, 2.0, 1.0 or 0.5")
        self.scale_layers = nn.ModuleList(layers)
        self.proj1 = nn.Conv2d(channels, out_channels, kernel_size=1)
        self.proj2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.proj1.weight.dtype)
        layers = list(self.scale_layers)
        # proj1 folded into the last upsampling's matmul: no 1x1 pass over the 288x288 map (fp32 only;
        # bf16 keeps the reference's rounding order); backbone + FPN 3.67 -> 3.61 s, alternating runs
        fold = (
            bool(layers)
            and isinstance(layers[-1], ConvTranspose2x2)
            and x.dtype in (torch.float32, torch.float64)
        )
        for layer in layers[:-1] if fold else layers:
            x = layer(x)
        if fold:
            x = layers[-1](x, then=self.proj1)
        else:
            x = channels_last_conv(self.proj1, x.contiguous(memory_format=torch.channels_last))
        # channels-last data and weights: oneDNN convolves without reordering either (measured on
        # a 2-core CPU, the 3x3 at 288x288: fp32 447 -> 311 ms, bf16 157 -> 57 ms)
        return channels_last_conv(self.proj2, x.contiguous(memory_format=torch.channels_last))


class Sam3VisionNeck(nn.Module):
    """The FPN neck: one feature map (and its sine position encoding) per scale factor."""

    def __init__(self, config: Sam3VisionConfig):
        super().__init__()
        self.fpn_hidden_size = config.fpn_hidden_size
        self.fpn_layers = nn.ModuleList(
            FPNLevel(config.backbone_config.hidden_size, config.fpn_hidden_size, s)
            for s in config.scale_factors
        )

    def forward(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """x: (B, C, H, W) backbone map → (feature maps, position encodings), finest level first."""
        maps = tuple(level(x) for level in self.fpn_layers)
        encodings = tuple(
            sine_position_encoding_2d(
                m.shape[0], m.shape[2], m.shape[3], self.fpn_hidden_size // 2, device=m.device, dtype=m.dtype
            )
            for m in maps
        )
        return maps, encodings
