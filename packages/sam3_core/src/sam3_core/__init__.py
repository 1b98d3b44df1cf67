"""The SAM 3 family in pure PyTorch: concept segmentation, visual prompting, video tracking.

The public names follow the reference library's documentation, so its examples run with
`from sam3_core import ...`.
"""

from .auto import AutoConfig, AutoModel, AutoProcessor
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
    Sam3TrackerVideoMaskDecoderConfig,
    Sam3TrackerVideoPromptEncoderConfig,
    Sam3TrackerVideoVisionConfig,
    Sam3TrackerVisionConfig,
    Sam3VideoConfig,
    Sam3VisionConfig,
    Sam3ViTConfig,
)
from .config.edgetam import (
    EdgeTamVideoConfig,
    EdgeTamVideoMaskDecoderConfig,
    EdgeTamVideoPromptEncoderConfig,
    EdgeTamVisionConfig,
)
from .config.lite_text import (
    Sam3LiteTextConfig,
    Sam3LiteTextDETRDecoderConfig,
    Sam3LiteTextDETREncoderConfig,
    Sam3LiteTextGeometryEncoderConfig,
    Sam3LiteTextMaskDecoderConfig,
    Sam3LiteTextTextConfig,
)
from .devices import infer_device
from .mask_generation import Sam3TrackerMaskGenerator
from .modeling.backbones.vit import Sam3ViTModel
from .modeling.vision import Sam3VisionModel
from .models.edgetam_video import EdgeTamVideoModel
from .models.sam3 import Sam3Model
from .models.sam3_lite_text import Sam3LiteTextModel, Sam3LiteTextTextModel
from .models.sam3_tracker import Sam3TrackerImageSegmentationOutput, Sam3TrackerModel
from .models.sam3_tracker_video import Sam3TrackerVideoModel
from .models.sam3_video import Sam3VideoModel, Sam3VideoSegmentationOutput
from .outputs import ModelOutput, Sam3TrackerVideoSegmentationOutput, Sam3VisionOutput
from .pipelines import MaskGenerationPipeline, pipeline
from .processing.detector import Sam3Processor
from .processing.image import post_process_masks, preprocess_images
from .processing.sam2_video import Sam2VideoProcessor
from .processing.sam3_video import Sam3VideoProcessor
from .processing.tracker import Sam3TrackerProcessor
from .processing.video import Sam3TrackerVideoProcessor
from .video.concept_session import Sam3VideoInferenceSession
from .video.edgetam_session import EdgeTamVideoInferenceSession
from .video.session import Sam3TrackerVideoInferenceSession
from .video_utils import VideoMetadata, load_video

__version__ = "0.1.0"

__all__ = [
    "AutoConfig",
    "AutoModel",
    "AutoProcessor",
    "MaskGenerationPipeline",
    "Sam3TrackerVideoMaskDecoderConfig",
    "Sam3TrackerVideoPromptEncoderConfig",
    "Sam3TrackerVideoVisionConfig",
    "Sam3TrackerVisionConfig",
    "VideoMetadata",
    "infer_device",
    "load_video",
    "pipeline",
    "CLIPTextConfig",
    "CheckpointError",
    "ConfigError",
    "EdgeTamVideoConfig",
    "EdgeTamVideoInferenceSession",
    "EdgeTamVideoMaskDecoderConfig",
    "EdgeTamVideoModel",
    "EdgeTamVideoPromptEncoderConfig",
    "EdgeTamVisionConfig",
    "ModelOutput",
    "PreTrainedModel",
    "Sam2VideoProcessor",
    "Sam3Config",
    "Sam3DETRDecoderConfig",
    "Sam3DETREncoderConfig",
    "Sam3GeometryEncoderConfig",
    "Sam3MaskDecoderConfig",
    "Sam3Model",
    "Sam3LiteTextConfig",
    "Sam3LiteTextDETRDecoderConfig",
    "Sam3LiteTextDETREncoderConfig",
    "Sam3LiteTextGeometryEncoderConfig",
    "Sam3LiteTextMaskDecoderConfig",
    "Sam3LiteTextModel",
    "Sam3LiteTextTextConfig",
    "Sam3LiteTextTextModel",
    "Sam3Processor",
    "Sam3TrackerConfig",
    "Sam3TrackerImageSegmentationOutput",
    "Sam3TrackerMaskDecoderConfig",
    "Sam3TrackerMaskGenerator",
    "Sam3TrackerModel",
    "Sam3TrackerProcessor",
    "Sam3TrackerPromptEncoderConfig",
    "Sam3TrackerVideoConfig",
    "Sam3TrackerVideoInferenceSession",
    "Sam3TrackerVideoModel",
    "Sam3TrackerVideoProcessor",
    "Sam3VideoInferenceSession",
    "Sam3VideoModel",
    "Sam3VideoProcessor",
    "Sam3VideoSegmentationOutput",
    "Sam3TrackerVideoSegmentationOutput",
    "Sam3VideoConfig",
    "Sam3ViTConfig",
    "Sam3ViTModel",
    "Sam3VisionConfig",
    "Sam3VisionModel",
    "Sam3VisionOutput",
    "post_process_masks",
    "preprocess_images",
]
