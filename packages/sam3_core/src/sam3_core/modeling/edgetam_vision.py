"""`EdgeTamVisionModel`: the RepViT backbone with the top-down FPN neck.

pixel_values (B, 3, S, S) → `Sam3VisionOutput` with three FPN levels at S/4, S/8, S/16 (finest
first) and their sine position encodings: the same shape of features as the SAM 3 trackers see,
so the shared tracker heads and the tracking engine run on them unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config.edgetam import EdgeTamVisionConfig
from ..outputs import Sam3VisionOutput
from .backbones.repvit import RepViT
from .backbones.topdown_fpn import TopDownFPN

__all__ = ["EdgeTamVisionModel"]


class EdgeTamVisionModel(nn.Module):
    """Backbone (`backbone.stem`, `backbone.stages_<i>`) plus neck (`neck.convs.<i>`)."""

    def __init__(self, config: EdgeTamVisionConfig):
        super().__init__()
        self.config = config
        self.backbone = RepViT(config.backbone_config)
        self.neck = TopDownFPN(config)

    def forward(self, pixel_values: torch.Tensor) -> Sam3VisionOutput:
        maps = self.backbone(pixel_values)
        levels, encodings = self.neck(maps)
        return Sam3VisionOutput(
            last_hidden_state=maps[-1].flatten(2).transpose(1, 2),  # (B, h*w, C_3)
            fpn_hidden_states=levels,
            fpn_position_encoding=encodings,
        )
