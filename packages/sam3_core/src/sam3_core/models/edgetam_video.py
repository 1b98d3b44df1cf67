"""`EdgeTamVideoModel`: EdgeTAM, the light tracker of the family, on the same tracking engine.

EdgeTAM is a SAM 2-style video tracker with three parts of its own, each handed to the engine
(`video/engine.py`) in place of the SAM 3 tracker's:

- the vision encoder: a RepViT backbone with a top-down FPN (`EdgeTamVisionModel`), giving the
  same three feature maps the shared tracker heads read;
- the spatial perceiver (`SpatialPerceiver`), which compresses each frame's memory map into a
  few latent tokens (`TrackerModules.memory_compressor`);
- a memory attention whose keys are those latents (`EdgeTamMemoryAttention`).

Everything else is the SAM 3 video tracker's: the prompt encoder and mask decoder
(`TrackerBase`), the memory encoder, the memory policy, the session, and the model's `forward` /
`propagate_in_video_iterator`, inherited from `Sam3TrackerVideoModel`.

Two behaviours differ from SAM 3's reference and follow EdgeTAM's: memories are kept in the
model's dtype (not bf16), and a frame's memory is binarised per object (an object with prompts on
the frame), not for the whole frame.

Loading: the hub layout of `yonigozlan/edgetam-video-1` (`config.json` + `model.safetensors`),
keys as the reference stores them (`checkpoint_keys.EDGETAM_VIDEO`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..checkpoint_keys import EDGETAM_VIDEO
from ..config import BaseConfig
from ..config.edgetam import EdgeTamVideoConfig
from ..modeling.edgetam_vision import EdgeTamVisionModel
from ..modeling.layers import MLP
from ..modeling.memory.edgetam_attention import EdgeTamMemoryAttention
from ..modeling.memory.encoder import MemoryEncoder
from ..modeling.memory.perceiver import SpatialPerceiver
from ..video.edgetam_session import EdgeTamVideoInferenceSession
from ..video.memory_policy import MemoryPolicy
from .sam3_tracker_video import Sam3TrackerVideoModel
from .tracker_base import TrackerBase

__all__ = ["EdgeTamVideoModel", "EdgeTamVideoInferenceSession"]


class EdgeTamVideoModel(Sam3TrackerVideoModel):
    """EdgeTAM video tracker: segment and track objects prompted with points, boxes or masks.

    Args:
        config: an `EdgeTamVideoConfig`.
    """

    config_class = EdgeTamVideoConfig
    config_key = None
    checkpoint_layout = EDGETAM_VIDEO

    def __init__(self, config: EdgeTamVideoConfig | BaseConfig) -> None:
        if not isinstance(config, EdgeTamVideoConfig):
            raise TypeError(f"EdgeTamVideoModel needs an EdgeTamVideoConfig, got {type(config).__name__}")
        # The shared heads only; the SAM 3 tracker's own memory modules are not built (EdgeTAM's
        # replace them below under the checkpoint's names).
        TrackerBase.__init__(self, config, build_vision_encoder=False)
        self.vision_encoder = EdgeTamVisionModel(config.vision_config)
        hidden = config.vision_config.fpn_hidden_size
        mem_dim = config.memory_encoder_output_channels
        self.hidden_dim, self.mem_dim = hidden, mem_dim
        self.num_maskmem = config.num_maskmem
        self.image_size = config.image_size

        self.memory_attention = EdgeTamMemoryAttention(config)
        self.memory_encoder = MemoryEncoder(config)
        self.spatial_perceiver = SpatialPerceiver(config)
        self.no_memory_positional_encoding = nn.Parameter(torch.zeros(1, 1, hidden))  # stored, never read
        self.memory_temporal_positional_encoding = nn.Parameter(torch.zeros(self.num_maskmem, 1, 1, mem_dim))
        self.no_object_pointer = nn.Parameter(torch.zeros(1, hidden))
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.object_pointer_proj = MLP([hidden] * 4, names="sam")
        self.temporal_positional_encoding_projection_layer = (
            nn.Linear(hidden, mem_dim) if config.enable_temporal_pos_encoding_for_object_pointers else None
        )
        self.occlusion_spatial_embedding_parameter = (
            nn.Parameter(torch.zeros(1, mem_dim)) if config.enable_occlusion_spatial_embedding else None
        )
        self.memory_policy = MemoryPolicy(
            config.num_maskmem, config.max_cond_frame_num, config.max_object_pointers_in_encoder
        )

    @classmethod
    def _accepts_model_type(cls, model_type: str) -> bool:
        return model_type == "edgetam_video"

    # Memories stay in the model's dtype, and each object's mask is binarised on its own.
    memory_dtype = None
    binarise_per_object = True

    def memory_compressor(self) -> nn.Module:
        """The spatial perceiver: a frame's memory map -> a few latent tokens."""
        return self.spatial_perceiver
