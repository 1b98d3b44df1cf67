"""Configs of the trackers (`Sam3TrackerModel`, `Sam3TrackerVideoModel`) and of the combined
`facebook/sam3` checkpoint (`Sam3VideoConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import BaseConfig, ConfigError, as_pair
from .detector import Sam3Config
from .vision import Sam3VisionConfig


@dataclass
class Sam3TrackerPromptEncoderConfig(BaseConfig):
    """Points, boxes and masks → sparse and dense prompt embeddings."""

    model_type: ClassVar[str] = "sam3_tracker_prompt_encoder"
    hidden_size: int = 256
    image_size: int | list[int] = 1008
    patch_size: int | list[int] = 14
    mask_input_channels: int = 16
    num_point_embeddings: int = 4
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    scale: float = 1

    def validate(self) -> None:
        self._check_positive("hidden_size", "mask_input_channels", "num_point_embeddings")


@dataclass
class Sam3TrackerMaskDecoderConfig(BaseConfig):
    """The two-way transformer mask decoder of the trackers."""

    model_type: ClassVar[str] = "sam3_tracker_mask_decoder"
    hidden_size: int = 256
    hidden_act: str = "gelu"
    mlp_dim: int = 2048
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98

    def validate(self) -> None:
        self._check_heads()
        self._check_positive(
            "mlp_dim", "num_hidden_layers", "attention_downsample_rate", "num_multimask_outputs"
        )
        if (self.hidden_size // self.attention_downsample_rate) % self.num_attention_heads:
            raise ConfigError(
                "Sam3TrackerMaskDecoderConfig: hidden_size / attention_downsample_rate "
                f"({self.hidden_size}/{self.attention_downsample_rate}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )


@dataclass
class Sam3TrackerVideoPromptEncoderConfig(Sam3TrackerPromptEncoderConfig):
    """The video tracker's prompt encoder: the same fields as the image tracker's."""

    model_type: ClassVar[str] = "sam3_tracker_video_prompt_encoder"


@dataclass
class Sam3TrackerVideoMaskDecoderConfig(Sam3TrackerMaskDecoderConfig):
    """The video tracker's mask decoder: the same fields as the image tracker's."""

    model_type: ClassVar[str] = "sam3_tracker_video_mask_decoder"


# The tracker documents' config examples call the tracker's vision config by these names (the
# reference has no such classes): it is SAM 3's vision config, whose defaults are the tracker's.
Sam3TrackerVisionConfig = Sam3VisionConfig
Sam3TrackerVideoVisionConfig = Sam3VisionConfig


def _tracker_vision_default() -> Sam3VisionConfig:
    return Sam3VisionConfig(backbone_feature_sizes=[[288, 288], [144, 144], [72, 72]])


@dataclass
class Sam3TrackerConfig(BaseConfig):
    """Point/box/mask prompting on images (`Sam3TrackerModel`)."""

    model_type: ClassVar[str] = "sam3_tracker"
    sub_configs: ClassVar[dict] = {
        "vision_config": Sam3VisionConfig,
        "prompt_encoder_config": Sam3TrackerPromptEncoderConfig,
        "mask_decoder_config": Sam3TrackerMaskDecoderConfig,
    }
    vision_config: Sam3VisionConfig | dict | None = field(default_factory=_tracker_vision_default)
    prompt_encoder_config: Sam3TrackerPromptEncoderConfig | dict | None = None
    mask_decoder_config: Sam3TrackerMaskDecoderConfig | dict | None = None
    initializer_range: float = 0.02

    @property
    def image_size(self) -> int | list[int]:
        return self.vision_config.image_size


@dataclass
class TrackerVideoConfigBase(BaseConfig):
    """What every video tracker's config has (`Sam3TrackerVideoConfig`, `EdgeTamVideoConfig`): an
    image encoder, the SAM prompt encoder and mask decoder, a memory encoder and a memory attention.

    The fields and defaults are the SAM 3 tracker's; a subclass names its sub-config classes in
    `sub_configs`, overrides the defaults that differ, and says where its memory attention's MLP
    width and activation are (`memory_attention_mlp`: the hub configs name those fields differently).
    """

    vision_config: BaseConfig | dict | None = None
    prompt_encoder_config: BaseConfig | dict | None = None
    mask_decoder_config: BaseConfig | dict | None = None
    initializer_range: float = 0.02
    num_maskmem: int = 7  # memory slots: the conditioning frame plus 6 previous frames
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    enable_occlusion_spatial_embedding: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    max_object_pointers_in_encoder: int = 16
    max_cond_frame_num: int = 4
    enable_temporal_pos_encoding_for_object_pointers: bool = True
    memory_attention_hidden_size: int = 256
    memory_attention_num_layers: int = 4
    memory_attention_num_attention_heads: int = 1
    memory_attention_downsample_rate: int = 1
    memory_attention_dropout: float = 0.1
    memory_attention_rope_feat_sizes: list | None = None  # [w, h] of the current frame's grid
    memory_attention_rope_dropout: float = 0.1
    memory_encoder_hidden_size: int = 256
    memory_encoder_output_channels: int = 64
    rope_parameters: dict | None = None
    mask_downsampler_embed_dim: int = 256
    mask_downsampler_kernel_size: int = 3
    mask_downsampler_stride: int = 2
    mask_downsampler_padding: int = 1
    mask_downsampler_total_stride: int = 16
    mask_downsampler_hidden_act: str = "gelu"
    memory_fuser_num_layers: int = 2
    memory_fuser_embed_dim: int = 256
    memory_fuser_intermediate_dim: int = 1024
    memory_fuser_kernel_size: int = 7
    memory_fuser_padding: int = 3
    memory_fuser_layer_scale_init_value: float = 1e-6
    memory_fuser_hidden_act: str = "gelu"
    # Like the reference, the SAM 3 tracker sets the image size on the whole tracker at once: it also
    # fixes the prompt encoder's size, the FPN feature sizes and the memory RoPE grid.
    image_size: int = 1008

    def __post_init__(self) -> None:
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "axial", "rope_theta": 10000.0}
        super().__post_init__()

    @property
    def memory_attention_mlp(self) -> tuple[int, str]:
        """The hidden width and the activation of the memory attention's MLP."""
        raise NotImplementedError(f"{type(self).__name__} does not say where its memory attention MLP is")

    def validate(self) -> None:
        self._check_positive("memory_attention_num_layers")
        if self.memory_attention_hidden_size % self.memory_attention_num_attention_heads:
            raise ConfigError(
                f"{type(self).__name__}.memory_attention_hidden_size must be divisible by "
                "memory_attention_num_attention_heads"
            )


@dataclass
class Sam3TrackerVideoConfig(TrackerVideoConfigBase):
    """The video tracker (`Sam3TrackerVideoModel`): the image tracker plus memory."""

    model_type: ClassVar[str] = "sam3_tracker_video"
    sub_configs: ClassVar[dict] = {
        "vision_config": Sam3VisionConfig,
        "prompt_encoder_config": Sam3TrackerVideoPromptEncoderConfig,
        "mask_decoder_config": Sam3TrackerVideoMaskDecoderConfig,
    }
    vision_config: Sam3VisionConfig | dict | None = field(default_factory=_tracker_vision_default)
    memory_attention_feed_forward_hidden_size: int = 2048
    memory_attention_feed_forward_hidden_act: str = "relu"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.apply_image_size(self.image_size)

    @property
    def memory_attention_mlp(self) -> tuple[int, str]:
        return self.memory_attention_feed_forward_hidden_size, self.memory_attention_feed_forward_hidden_act

    def apply_image_size(self, value: int) -> None:
        patch = as_pair(self.vision_config.backbone_config.patch_size)[0]
        grid = value // patch
        self.image_size = value
        self.prompt_encoder_config.image_size = value
        self.vision_config.backbone_config.image_size = value
        self.vision_config.backbone_feature_sizes = [[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]]
        self.memory_attention_rope_feat_sizes = [grid, grid]

    def validate(self) -> None:
        self._check_positive("num_maskmem", "max_cond_frame_num")
        super().validate()


@dataclass
class Sam3VideoConfig(BaseConfig):
    """The combined `facebook/sam3` checkpoint (`Sam3VideoModel`): detector plus video tracker,
    and the thresholds of text-prompted tracking (`video/concept_tracker.py` says what each does).

    low_res_mask_size: side of the low-resolution masks (4x the backbone grid; 288 at 1008 px).
    score_threshold_detection / det_nms_thresh: detections kept per phrase and their mask NMS IoU.
    assoc_iou_thresh / trk_assoc_iou_thresh: mask IoU for a detection to match a track / for a
        track to count as matched; new_det_thresh: score for an unmatched detection to become an object.
    hotstart_delay / hotstart_unmatch_thresh / hotstart_dup_thresh: frames within which a new
        object can still be removed, and the unmatched / duplicate frame counts that remove it.
    init/max/min_trk_keep_alive, suppress_unmatched_only_within_hotstart,
        decrease_trk_keep_alive_for_empty_masklets: the keep-alive counter of each object.
    suppress_overlapping_based_on_recent_occlusion_threshold: mask IoU above which the more
        recently occluded of two objects is hidden.
    fill_hole_area: holes and sprinkles up to this many low-resolution pixels are cleaned.
    max_num_objects: cap on tracked objects.
    recondition_every_nth_frame / high_conf_thresh / high_iou_thresh / recondition_on_trk_masks:
        periodic re-conditioning of confirmed objects' memories.
    """

    model_type: ClassVar[str] = "sam3_video"
    sub_configs: ClassVar[dict] = {"detector_config": Sam3Config, "tracker_config": Sam3TrackerVideoConfig}
    detector_config: Sam3Config | dict | None = None
    tracker_config: Sam3TrackerVideoConfig | dict | None = None
    initializer_range: float = 0.02
    low_res_mask_size: int = 288
    score_threshold_detection: float = 0.5
    det_nms_thresh: float = 0.1
    assoc_iou_thresh: float = 0.1
    trk_assoc_iou_thresh: float = 0.5
    new_det_thresh: float = 0.7
    recondition_on_trk_masks: bool = True
    hotstart_delay: int = 15
    hotstart_unmatch_thresh: int = 8
    hotstart_dup_thresh: int = 8
    suppress_unmatched_only_within_hotstart: bool = True
    init_trk_keep_alive: int = 30
    max_trk_keep_alive: int = 30
    min_trk_keep_alive: int = -1
    suppress_overlapping_based_on_recent_occlusion_threshold: float = 0.7
    decrease_trk_keep_alive_for_empty_masklets: bool = False
    fill_hole_area: int = 16
    max_num_objects: int = 10000
    recondition_every_nth_frame: int = 16
    high_conf_thresh: float = 0.8
    high_iou_thresh: float = 0.8

    def validate(self) -> None:
        self._check_positive("low_res_mask_size", "max_num_objects")
        if self.hotstart_delay > 0:
            for name in ("hotstart_unmatch_thresh", "hotstart_dup_thresh"):
                if getattr(self, name) > self.hotstart_delay:
                    raise ConfigError(
                        f"Sam3VideoConfig.{name} ({getattr(self, name)}) must be <= hotstart_delay "
                        f"({self.hotstart_delay}): an object is only removed within its hot-start frames"
                    )

    @property
    def image_size(self) -> int | list[int]:
        """The model-input side (the detector's and the tracker's)."""
        return self.detector_config.image_size
