"""`Sam3VisionModel`: the ViT backbone with one FPN neck.

The detector and the trackers share one backbone; each has its own FPN neck (`Sam3VisionNeck`).
Parameter names follow the hub checkpoint (`backbone.layers.0.attention.q_proj.weight`, ...).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..checkpoint import CheckpointError, build_from_checkpoint, read_config, resolve_checkpoint_dir
from ..checkpoint_keys import VISION_LAYOUTS
from ..config import Sam3VisionConfig, as_pair
from ..outputs import Sam3VisionOutput
from .backbones.fpn import Sam3VisionNeck
from .backbones.vit import Sam3ViTModel


class Sam3VisionModel(nn.Module):
    """Backbone plus FPN neck: pixel_values (B, 3, S, S) → `Sam3VisionOutput`."""

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        neck: str = "detector",
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        backbone: Sam3ViTModel | None = None,
        **hub_kwargs,
    ) -> Sam3VisionModel:
        """The shared backbone with the detector's (`neck="detector"`) or the trackers' (`"tracker"`)
        FPN neck, from a combined `facebook/sam3`-style checkpoint. With a loaded `backbone` (on
        `device` in `dtype`), only the neck is read and the trunk is shared."""
        if neck not in VISION_LAYOUTS:
            raise ValueError(f"neck must be one of {sorted(VISION_LAYOUTS)}, got {neck!r}")
        folder = resolve_checkpoint_dir(name_or_path, **hub_kwargs)
        data = read_config(folder)
        if data.get("model_type") != "sam3_video":
            raise CheckpointError(
                f"Sam3VisionModel.from_pretrained needs a combined 'sam3_video' checkpoint, got {data.get('model_type')!r}"
            )
        config = Sam3VisionConfig.from_dict(data[f"{neck}_config"]["vision_config"])
        return build_from_checkpoint(
            lambda: cls(config, backbone=backbone),
            folder,
            VISION_LAYOUTS[neck].to_model,
            device=device,
            dtype=dtype,
            backbone=backbone,
        )

    def __init__(self, config: Sam3VisionConfig, backbone: Sam3ViTModel | None = None):
        """`backbone`: an existing ViT to share (the detector and the trackers use one trunk with
        a neck each); a new one is built from the config when None."""
        super().__init__()
        self.config = config
        self.backbone = Sam3ViTModel(config.backbone_config) if backbone is None else backbone
        self.neck = Sam3VisionNeck(config)

    def backbone_map(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The backbone's output as a (B, C, H, W) map (what the FPN necks take)."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.backbone_config.num_channels:
            raise ValueError(
                f"pixel_values must be (batch, {self.config.backbone_config.num_channels}, height, width), "
                f"got shape {tuple(pixel_values.shape)}"
            )
        tokens = self.backbone(pixel_values)
        ph, pw = as_pair(self.config.backbone_config.patch_size)
        h, w = pixel_values.shape[-2] // ph, pixel_values.shape[-1] // pw
        return tokens.view(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2)

    def forward(self, pixel_values: torch.Tensor) -> Sam3VisionOutput:
        return self.from_backbone_map(self.backbone_map(pixel_values))

    def from_backbone_map(self, spatial: torch.Tensor) -> Sam3VisionOutput:
        """Run only the neck on a (B, C, H, W) backbone map, e.g. one computed by a model that
        shares this backbone: the detector and the trackers then pay for one backbone pass."""
        maps, encodings = self.neck(spatial.to(self.neck.fpn_layers[0].proj1.weight.dtype))
        return Sam3VisionOutput(
            last_hidden_state=spatial.flatten(2).transpose(1, 2),
            fpn_hidden_states=maps,
            fpn_position_encoding=encodings,
        )
