"""The SAM 3 family in pure PyTorch: concept segmentation, visual prompting, video tracking.

The public names follow the reference library's documentation, so its examples run with
`from sam3_core import ...`.
"""

from .checkpoint import CheckpointError, PreTrainedModel
from .config import (
    CLIPTextConfig,
    ConfigError,
    Sam3Config,
    Sam3DETRDecoderConfig,
    Sam3DETREncoderConfig,
    Sam3GeometryEncoderConfig,
    Sam3MaskDecoderConfig,
    Sam3TrackerConfig,
    Sam3TrackerMaskDecoderConfig,
    Sam3TrackerPromptEncoderConfig,
    Sam3TrackerVideoConfig,
    Sam3VideoConfig,
    Sam3VisionConfig,
    Sam3ViTConfig,
)
from .image_processing import post_process_masks, preprocess_images
from .outputs import ModelOutput, Sam3VisionOutput
from .vision import Sam3VisionModel, Sam3ViTModel

__version__ = "0.1.0"

__all__ = [
    "CLIPTextConfig",
    "CheckpointError",
    "ConfigError",
    "ModelOutput",
    "PreTrainedModel",
    "Sam3Config",
    "Sam3DETRDecoderConfig",
    "Sam3DETREncoderConfig",
    "Sam3GeometryEncoderConfig",
    "Sam3MaskDecoderConfig",
    "Sam3TrackerConfig",
    "Sam3TrackerMaskDecoderConfig",
    "Sam3TrackerPromptEncoderConfig",
    "Sam3TrackerVideoConfig",
    "Sam3VideoConfig",
    "Sam3ViTConfig",
    "Sam3ViTModel",
    "Sam3VisionConfig",
    "Sam3VisionModel",
    "Sam3VisionOutput",
    "post_process_masks",
    "preprocess_images",
]
# Model exports of each area are appended below.
from .detector import Sam3Model  # noqa: E402
from .detector_processing import Sam3Processor  # noqa: E402

__all__ += ["Sam3Model", "Sam3Processor"]

from .mask_generation import Sam3TrackerMaskGenerator  # noqa: E402
from .tracker import Sam3TrackerImageSegmentationOutput, Sam3TrackerModel  # noqa: E402
from .tracker_processing import Sam3TrackerProcessor  # noqa: E402

__all__ += [
    "Sam3TrackerImageSegmentationOutput",
    "Sam3TrackerMaskGenerator",
    "Sam3TrackerModel",
    "Sam3TrackerProcessor",
]

from .outputs import Sam3TrackerVideoSegmentationOutput  # noqa: E402
from .video import Sam3TrackerVideoModel  # noqa: E402
from .video_processing import Sam3TrackerVideoProcessor  # noqa: E402
from .video_session import Sam3TrackerVideoInferenceSession  # noqa: E402

__all__ += [
    "Sam3TrackerVideoInferenceSession",
    "Sam3TrackerVideoModel",
    "Sam3TrackerVideoProcessor",
    "Sam3TrackerVideoSegmentationOutput",
]
