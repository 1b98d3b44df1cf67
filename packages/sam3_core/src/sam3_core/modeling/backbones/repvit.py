"""RepViT: the convolutional backbone of EdgeTAM, in plain PyTorch.

    pixel_values (B, 3, S, S) --stem (two stride-2 3x3 convs)--> (B, C0, S/4, S/4)
        --stage 0--> C0 at S/4 --stage 1--> C1 at S/8 --stage 2--> C2 at S/16 --stage 3--> C3 at S/32

Each stage after the first starts with a downsampling block; every block is a depthwise "token
mixer" (3x3 + 1x1 + identity branches, re-parameterisable into one 3x3 conv), an optional
squeeze-excite (every other block), and a 1x1 conv MLP ("channel mixer"). All convolutions carry
a BatchNorm (inference statistics from the checkpoint).

Parameter names are those of the hub checkpoint (timm's module names, with its feature wrapper's
`stages_<i>`), so a checkpoint loads as stored; the branches run unfused, as stored.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...config.edgetam import EdgeTamBackboneConfig

__all__ = ["RepViT"]


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of `divisor` (at least `divisor`)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class ConvNorm(nn.Sequential):
    """Conv (no bias) then BatchNorm; checkpoint names `c` and `bn`."""

    def __init__(
        self, in_dim: int, out_dim: int, kernel: int = 1, stride: int = 1, pad: int = 0, groups: int = 1
    ):
        super().__init__()
        self.add_module("c", nn.Conv2d(in_dim, out_dim, kernel, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_dim))


class SqueezeExcite(nn.Module):
    """Channel gating by the sigmoid of a 2-layer MLP (1x1 convs) on the global average."""

    def __init__(self, channels: int, ratio: float = 0.25):
        super().__init__()
        reduced = _make_divisible(channels * ratio)
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))  # (B, C, 1, 1)
        return x * gate.sigmoid()


class TokenMixer(nn.Module):
    """Depthwise k x k conv + depthwise 1x1 conv + identity (the RepVGG form).

    legacy: the 1x1 branch has its own BatchNorm and the sum has none; otherwise the 1x1 branch is a
    plain conv and one BatchNorm (`bn`) follows the sum.
    """

    def __init__(self, dim: int, kernel: int, legacy: bool):
        super().__init__()
        self.conv = ConvNorm(dim, dim, kernel, 1, (kernel - 1) // 2, groups=dim)
        self.legacy = legacy
        if legacy:
            self.conv1 = ConvNorm(dim, dim, 1, 1, 0, groups=dim)
        else:
            self.conv1 = nn.Conv2d(dim, dim, 1, 1, 0, groups=dim)
            self.bn = nn.BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x) + self.conv1(x) + x
        return out if self.legacy else self.bn(out)


class ConvMLP(nn.Module):
    """1x1 conv up, activation, 1x1 conv down (each with BatchNorm)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.conv1 = ConvNorm(dim, hidden)
        self.conv2 = ConvNorm(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


class RepViTBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: int, kernel: int, use_se: bool, legacy: bool):
        super().__init__()
        self.token_mixer = TokenMixer(dim, kernel, legacy)
        self.se = SqueezeExcite(dim) if use_se else nn.Identity()
        self.channel_mixer = ConvMLP(dim, dim * mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = self.se(self.token_mixer(x))
        return x + self.channel_mixer(x)


class Downsample(nn.Module):
    """A block, a stride-2 depthwise conv, a 1x1 conv to the new width, and a residual MLP."""

    def __init__(self, in_dim: int, out_dim: int, mlp_ratio: int, kernel: int, legacy: bool):
        super().__init__()
        self.pre_block = RepViTBlock(in_dim, mlp_ratio, kernel, use_se=False, legacy=legacy)
        self.spatial_downsample = ConvNorm(in_dim, in_dim, kernel, 2, (kernel - 1) // 2, groups=in_dim)
        self.channel_downsample = ConvNorm(in_dim, out_dim)
        self.ffn = ConvMLP(out_dim, out_dim * mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = self.channel_downsample(self.spatial_downsample(self.pre_block(x)))
        return x + self.ffn(x)


class RepViTStage(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        depth: int,
        mlp_ratio: int,
        kernel: int,
        downsample: bool,
        legacy: bool,
    ):
        super().__init__()
        if not downsample and in_dim != out_dim:
            raise ValueError(f"a stage without downsampling keeps its width; got {in_dim} -> {out_dim}")
        self.downsample = (
            Downsample(in_dim, out_dim, mlp_ratio, kernel, legacy) if downsample else nn.Identity()
        )
        # squeeze-excite on the 1st, 3rd, ... block of each stage
        self.blocks = nn.Sequential(
            *(RepViTBlock(out_dim, mlp_ratio, kernel, use_se=i % 2 == 0, legacy=legacy) for i in range(depth))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class RepViTStem(nn.Module):
    def __init__(self, in_chans: int, out_dim: int):
        super().__init__()
        self.conv1 = ConvNorm(in_chans, out_dim // 2, 3, 2, 1)
        self.conv2 = ConvNorm(out_dim // 2, out_dim, 3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


class RepViT(nn.Module):
    """pixel_values (B, 3, S, S) → one (B, C_i, S/2^(i+2), S/2^(i+2)) map per stage, finest first."""

    def __init__(self, config: EdgeTamBackboneConfig):
        super().__init__()
        widths, depths = config.embed_dim, config.depth
        self.in_chans = config.in_chans
        self.stem = RepViTStem(config.in_chans, widths[0])
        self.num_stages = len(widths)
        in_dim = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths)):
            stage = RepViTStage(
                in_dim,
                width,
                depth,
                config.mlp_ratio,
                config.kernel_size,
                downsample=i > 0,
                legacy=config.legacy,
            )
            self.add_module(f"stages_{i}", stage)
            in_dim = width

    def forward(self, pixel_values: Tensor) -> list[Tensor]:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.in_chans:
            raise ValueError(
                f"pixel_values must be (batch, {self.in_chans}, height, width), got shape {tuple(pixel_values.shape)}"
            )
        x = self.stem(pixel_values)
        maps = []
        for i in range(self.num_stages):
            x = self.get_submodule(f"stages_{i}")(x)
            maps.append(x)
        return maps
