"""The SAM 2 family's top-down FPN neck (EdgeTAM's), over a backbone's multi-scale maps.

    stage maps, finest first: (B, C_0, 4h, 4w), (B, C_1, 2h, 2w), (B, C_2, h, w), (B, C_3, h/2, w/2)
      each --lateral conv--> fpn_hidden_size channels; coarsest first, a level in
      `fpn_top_down_levels` adds the nearest-upsampled (2x) level above it
    → the last `num_feature_levels` levels, finest first, each with its sine position encoding

Unlike the SAM 3 neck (one ViT map resampled by 4, 2, 1, 0.5), the pyramid comes from the
backbone itself.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...config.edgetam import EdgeTamVisionConfig
from ..layers import sine_position_encoding_2d

__all__ = ["TopDownFPN"]


class TopDownFPN(nn.Module):
    """Lateral 1x1 convs plus a top-down pathway; `convs.i` takes the i-th coarsest backbone map."""

    def __init__(self, config: EdgeTamVisionConfig):
        super().__init__()
        self.hidden_size = config.fpn_hidden_size
        self.convs = nn.ModuleList(
            nn.Conv2d(
                width,
                config.fpn_hidden_size,
                kernel_size=config.fpn_kernel_size,
                stride=config.fpn_stride,
                padding=config.fpn_padding,
            )
            for width in config.backbone_channel_list
        )
        self.top_down_levels = set(config.fpn_top_down_levels)
        self.num_feature_levels = config.num_feature_levels

    def forward(self, maps: list[Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """maps: the backbone's stage maps, finest first → (levels, position encodings), the last
        `num_feature_levels` levels, finest first."""
        if len(maps) != len(self.convs):
            raise ValueError(f"the FPN takes {len(self.convs)} backbone maps, got {len(maps)}")
        last = len(maps) - 1
        levels: list[Tensor] = []
        previous = None
        for i in range(last, -1, -1):  # coarsest first
            lateral = self.convs[last - i](maps[i].to(self.convs[last - i].weight.dtype))
            if previous is None or i not in self.top_down_levels or i == last:
                previous = lateral
            else:
                # upsampled in float32, as the reference does (nearest: exact in any dtype anyway)
                top_down = F.interpolate(previous.float(), scale_factor=2.0, mode="nearest").to(lateral.dtype)
                previous = lateral + top_down
            levels.append(previous)
        chosen = levels[-self.num_feature_levels :][::-1]  # finest first
        encodings = tuple(
            sine_position_encoding_2d(
                m.shape[0], m.shape[2], m.shape[3], self.hidden_size // 2, device=m.device, dtype=m.dtype
            )
            for m in chosen
        )
        return tuple(chosen), encodings
