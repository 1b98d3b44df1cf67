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

from torch import nn

from ..checkpoint_keys import EDGETAM_VIDEO
from ..config import BaseConfig
from ..config.edgetam import EdgeTamVideoConfig
from ..modeling.edgetam_vision import EdgeTamVisionModel
from ..modeling.memory.edgetam_attention import EdgeTamMemoryAttention
from ..modeling.memory.perceiver import SpatialPerceiver
from ..video.edgetam_session import EdgeTamVideoInferenceSession
from .sam3_tracker_video import Sam3TrackerVideoModel

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
        # The SAM 3 video tracker's parts, without its ViT: EdgeTAM brings its own backbone and neck,
        # memory attention (`build_memory_attention`) and the perceiver, under the checkpoint's names.
        super().__init__(config, remove_vision_encoder=True)
        self.vision_encoder = EdgeTamVisionModel(config.vision_config)
        self.spatial_perceiver = SpatialPerceiver(config)

    @staticmethod
    def build_memory_attention(config: BaseConfig) -> nn.Module:
        """Attention over the perceiver's latents instead of whole memory maps."""
        return EdgeTamMemoryAttention(config)

    @classmethod
    def _accepts_model_type(cls, model_type: str) -> bool:
        return model_type == "edgetam_video"

    # Memories stay in the model's dtype, and each object's mask is binarised on its own.
    memory_dtype = None
    binarise_per_object = True

    def memory_compressor(self) -> nn.Module:
        """The spatial perceiver: a frame's memory map -> a few latent tokens."""
        return self.spatial_perceiver
