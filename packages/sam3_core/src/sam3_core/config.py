"""Configuration dataclasses of the SAM 3 family.

Field names and defaults are those of the reference `config.json` files, so a hub config loads
with `XConfig.from_dict(json.load(...))`. Unknown keys (bookkeeping such as `id2label` or
`transformers_version`) are ignored; a value of the wrong type or an impossible value raises a
`ValueError` that names the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "Sam3ViTConfig",
    "Sam3VisionConfig",
    "CLIPTextConfig",
    "Sam3GeometryEncoderConfig",
    "Sam3DETREncoderConfig",
    "Sam3DETRDecoderConfig",
    "Sam3MaskDecoderConfig",
    "Sam3Config",
    "Sam3TrackerPromptEncoderConfig",
    "Sam3TrackerMaskDecoderConfig",
    "Sam3TrackerConfig",
    "Sam3TrackerVideoConfig",
    "Sam3VideoConfig",
    "load_config_dict",
]


class ConfigError(ValueError):
    """A config value has the wrong type or an impossible value."""


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether `value` fits a (simple) type annotation: int, float, bool, str, list, dict, unions."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is typing.Any:
        return True
    if origin is not None:
        annotation = origin
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation in (list, tuple):
        return isinstance(value, (list, tuple))
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


@dataclass
class _Config:
    """Base: dict round trip, type checks, nested sub-configs."""

    model_type: ClassVar[str] = ""
    # field name -> config class, for fields holding a nested config
    sub_configs: ClassVar[dict[str, type[_Config]]] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None = None, **overrides: Any):
        """Build from a `config.json` dict; unknown keys are ignored, sub-configs are built too."""
        data = dict(data or {})
        data.update(overrides)
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs = {}
        for key, value in data.items():
            if key not in names:
                continue
            sub = cls.sub_configs.get(key)
            if sub is not None:
                if isinstance(value, sub):
                    kwargs[key] = value
                elif isinstance(value, dict) or value is None:
                    kwargs[key] = sub.from_dict(value)
                else:
                    raise ConfigError(
                        f"{cls.__name__}.{key}: expected a dict or {sub.__name__}, got {type(value).__name__}"
                    )
                continue
            if not _type_ok(value, hints[key]):
                raise ConfigError(
                    f"{cls.__name__}.{key}: expected {hints[key]}, got {value!r} ({type(value).__name__})"
                )
            kwargs[key] = value
        return cls(**kwargs)

    def __post_init__(self) -> None:
        for name, sub in self.sub_configs.items():
            value = getattr(self, name)
            if value is None:
                setattr(self, name, sub())
            elif isinstance(value, dict):
                setattr(self, name, sub.from_dict(value))
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` for impossible values. Subclasses extend this."""

    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"{type(self).__name__}.{name} must be positive, got {value!r}")

    def _check_heads(self, hidden: str = "hidden_size", heads: str = "num_attention_heads") -> None:
        self._check_positive(hidden, heads)
        if getattr(self, hidden) % getattr(self, heads):
            raise ConfigError(
                f"{type(self).__name__}.{hidden}={getattr(self, hidden)} is not divisible by "
                f"{heads}={getattr(self, heads)}"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_type": self.model_type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, _Config) else value
        return out


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


# ---------------------------------------------------------------------------------------------
# Vision
# ---------------------------------------------------------------------------------------------


@dataclass
class Sam3ViTConfig(_Config):
    """The ViT image backbone shared by the detector and the trackers."""

    model_type: ClassVar[str] = "sam3_vit_model"
    hidden_size: int = 1024
    intermediate_size: int = 4736
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int | list[int] = 1008  # input side in pixels (square unless a pair)
    patch_size: int | list[int] = 14
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0
    window_size: int = 24  # side of the attention windows, in patches
    global_attn_indexes: list[int] | None = None  # layers with full (not windowed) attention
    layer_scale_init_value: float | None = None
    pretrain_image_size: int | list[int] = 336  # position embeddings are learnt at this size, then tiled
    hidden_dropout: float = 0.0
    initializer_range: float = 0.02
    rope_parameters: dict | None = None  # {"rope_type": "axial", "rope_theta": 10000.0}

    def __post_init__(self) -> None:
        if self.global_attn_indexes is None:
            self.global_attn_indexes = [7, 15, 23, 31]
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "axial", "rope_theta": 10000.0}
        super().__post_init__()

    def validate(self) -> None:
        self._check_heads()
        self._check_positive("intermediate_size", "num_hidden_layers", "window_size", "num_channels")
        if self.rope_parameters.get("rope_type", "axial") != "axial":
            raise ConfigError(
                f"Sam3ViTConfig.rope_parameters: only 'axial' RoPE exists, got {self.rope_parameters}"
            )
        head_dim = self.hidden_size // self.num_attention_heads
        if head_dim % 4:
            raise ConfigError(f"Sam3ViTConfig: the 2D RoPE needs a head dim divisible by 4, got {head_dim}")
        for size_name in ("image_size", "patch_size", "pretrain_image_size"):
            if min(_pair(getattr(self, size_name))) <= 0:
                raise ConfigError(
                    f"Sam3ViTConfig.{size_name} must be positive, got {getattr(self, size_name)!r}"
                )
        bad = [i for i in self.global_attn_indexes if not 0 <= i < self.num_hidden_layers]
        if bad:
            raise ConfigError(
                f"Sam3ViTConfig.global_attn_indexes {bad} are outside 0..{self.num_hidden_layers - 1}"
            )
        if self.layer_scale_init_value is not None:
            raise ConfigError("Sam3ViTConfig.layer_scale_init_value is not used by SAM 3; expected null")

    @property
    def grid_size(self) -> tuple[int, int]:
        """(height, width) of the patch grid at `image_size`."""
        (ih, iw), (ph, pw) = _pair(self.image_size), _pair(self.patch_size)
        return ih // ph, iw // pw


@dataclass
class Sam3VisionConfig(_Config):
    """Backbone plus FPN neck."""

    model_type: ClassVar[str] = "sam3_vision_model"
    sub_configs: ClassVar[dict] = {"backbone_config": Sam3ViTConfig}
    backbone_config: Sam3ViTConfig | dict | None = None
    fpn_hidden_size: int = 256
    backbone_feature_sizes: list | None = None  # [[h, w], ...] of the first three FPN levels
    scale_factors: list[float] | None = None  # one FPN level per factor: 4, 2, 1 or 0.5
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.scale_factors is None:
            self.scale_factors = [4.0, 2.0, 1.0, 0.5]
        if self.backbone_feature_sizes is None:
            self.backbone_feature_sizes = [[288, 288], [144, 144], [72, 72]]
        super().__post_init__()

    def validate(self) -> None:
        self._check_positive("fpn_hidden_size")
        bad = [s for s in self.scale_factors if s not in (4.0, 2.0, 1.0, 0.5)]
        if bad:
            raise ConfigError(
                f"Sam3VisionConfig.scale_factors: {bad} unsupported; expected 4.0, 2.0, 1.0 or 0.5"
            )
        width = self.backbone_config.hidden_size
        if 4.0 in self.scale_factors and width % 4:
            raise ConfigError(
                f"Sam3VisionConfig: a 4x FPN level needs a backbone width divisible by 4, got {width}"
            )

    @property
    def image_size(self) -> int | list[int]:
        return self.backbone_config.image_size


# ---------------------------------------------------------------------------------------------
# Concept detector (Sam3Model)
# ---------------------------------------------------------------------------------------------


@dataclass
class CLIPTextConfig(_Config):
    """The CLIP text encoder of the detector. Defaults are those SAM 3 uses."""

    model_type: ClassVar[str] = "clip_text_model"
    vocab_size: int = 49408
    hidden_size: int = 1024
    intermediate_size: int = 4096
    projection_dim: int | None = 512
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    max_position_embeddings: int = 32  # also the tokenizer's padded length
    hidden_act: str = "gelu"
    layer_norm_eps: float | None = 1e-5
    attention_dropout: float | None = 0.0
    initializer_range: float = 0.02
    initializer_factor: float | None = 1.0
    pad_token_id: int | None = 1
    bos_token_id: int | None = 49406
    eos_token_id: int | list[int] | None = 49407

    def validate(self) -> None:
        self._check_heads()
        self._check_positive(
            "vocab_size", "intermediate_size", "num_hidden_layers", "max_position_embeddings"
        )


@dataclass
class Sam3GeometryEncoderConfig(_Config):
    """Encodes exemplar boxes (and their labels) into prompt tokens."""

    model_type: ClassVar[str] = "sam3_geometry_encoder"
    hidden_size: int = 256
    num_layers: int = 3
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    dropout: float = 0.1
    hidden_act: str = "relu"
    hidden_dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    roi_size: int = 7  # side of the ROI-align window pooled for each box
    initializer_range: float = 0.02

    def validate(self) -> None:
        self._check_heads()
        self._check_positive("roi_size", "intermediate_size")


@dataclass
class Sam3DETREncoderConfig(_Config):
    """The encoder fusing image features with the prompt tokens."""

    model_type: ClassVar[str] = "sam3_detr_encoder"
    hidden_size: int = 256
    num_layers: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    dropout: float = 0.1
    hidden_act: str = "relu"
    hidden_dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def validate(self) -> None:
        self._check_heads()
        self._check_positive("num_layers", "intermediate_size")


@dataclass
class Sam3DETRDecoderConfig(_Config):
    """The query decoder with box refinement and the presence token."""

    model_type: ClassVar[str] = "sam3_detr_decoder"
    hidden_size: int = 256
    num_layers: int = 6
    num_queries: int = 200
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    dropout: float = 0.1
    hidden_act: str = "relu"
    hidden_dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def validate(self) -> None:
        self._check_heads()
        self._check_positive("num_layers", "num_queries", "intermediate_size")


@dataclass
class Sam3MaskDecoderConfig(_Config):
    """The detector's instance and semantic mask head."""

    model_type: ClassVar[str] = "sam3_mask_decoder"
    hidden_size: int = 256
    num_upsampling_stages: int = 3
    layer_norm_eps: float = 1e-6
    dropout: float = 0.0
    num_attention_heads: int = 8
    initializer_range: float = 0.02

    def validate(self) -> None:
        self._check_heads()
        self._check_positive("num_upsampling_stages")


@dataclass
class Sam3Config(_Config):
    """The concept detector (`Sam3Model`)."""

    model_type: ClassVar[str] = "sam3"
    sub_configs: ClassVar[dict] = {
        "vision_config": Sam3VisionConfig,
        "text_config": CLIPTextConfig,
        "geometry_encoder_config": Sam3GeometryEncoderConfig,
        "detr_encoder_config": Sam3DETREncoderConfig,
        "detr_decoder_config": Sam3DETRDecoderConfig,
        "mask_decoder_config": Sam3MaskDecoderConfig,
    }
    vision_config: Sam3VisionConfig | dict | None = None
    text_config: CLIPTextConfig | dict | None = None
    geometry_encoder_config: Sam3GeometryEncoderConfig | dict | None = None
    detr_encoder_config: Sam3DETREncoderConfig | dict | None = None
    detr_decoder_config: Sam3DETRDecoderConfig | dict | None = None
    mask_decoder_config: Sam3MaskDecoderConfig | dict | None = None
    initializer_range: float = 0.02

    @property
    def image_size(self) -> int | list[int]:
        return self.vision_config.image_size


# ---------------------------------------------------------------------------------------------
# Trackers (Sam3TrackerModel, Sam3TrackerVideoModel)
# ---------------------------------------------------------------------------------------------


@dataclass
class Sam3TrackerPromptEncoderConfig(_Config):
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
class Sam3TrackerMaskDecoderConfig(_Config):
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


def _tracker_vision_default() -> Sam3VisionConfig:
    return Sam3VisionConfig(backbone_feature_sizes=[[288, 288], [144, 144], [72, 72]])


@dataclass
class Sam3TrackerConfig(_Config):
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
class Sam3TrackerVideoConfig(_Config):
    """The video tracker (`Sam3TrackerVideoModel`): the image tracker plus memory."""

    model_type: ClassVar[str] = "sam3_tracker_video"
    sub_configs: ClassVar[dict] = {
        "vision_config": Sam3VisionConfig,
        "prompt_encoder_config": Sam3TrackerPromptEncoderConfig,
        "mask_decoder_config": Sam3TrackerMaskDecoderConfig,
    }
    vision_config: Sam3VisionConfig | dict | None = field(default_factory=_tracker_vision_default)
    prompt_encoder_config: Sam3TrackerPromptEncoderConfig | dict | None = None
    mask_decoder_config: Sam3TrackerMaskDecoderConfig | dict | None = None
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
    memory_attention_feed_forward_hidden_size: int = 2048
    memory_attention_feed_forward_hidden_act: str = "relu"
    memory_attention_dropout: float = 0.1
    memory_attention_rope_feat_sizes: list | None = None
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
    # Like the reference, the image size is set on the whole tracker at once: it also fixes the
    # prompt encoder's size, the FPN feature sizes and the memory RoPE grid.
    image_size: int = 1008

    def __post_init__(self) -> None:
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        super().__post_init__()
        self.apply_image_size(self.image_size)

    def apply_image_size(self, value: int) -> None:
        patch = _pair(self.vision_config.backbone_config.patch_size)[0]
        grid = value // patch
        self.image_size = value
        self.prompt_encoder_config.image_size = value
        self.vision_config.backbone_config.image_size = value
        self.vision_config.backbone_feature_sizes = [[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]]
        self.memory_attention_rope_feat_sizes = [grid, grid]

    def validate(self) -> None:
        self._check_positive("num_maskmem", "max_cond_frame_num", "memory_attention_num_layers")
        if self.memory_attention_hidden_size % self.memory_attention_num_attention_heads:
            raise ConfigError(
                "Sam3TrackerVideoConfig.memory_attention_hidden_size must be divisible by "
                "memory_attention_num_attention_heads"
            )


@dataclass
class Sam3VideoConfig(_Config):
    """The combined `facebook/sam3` checkpoint: detector plus video tracker."""

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


_BY_MODEL_TYPE: dict[str, type[_Config]] = {
    c.model_type: c
    for c in (Sam3Config, Sam3TrackerConfig, Sam3TrackerVideoConfig, Sam3VideoConfig, Sam3VisionConfig)
}


def load_config_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Read a `config.json`, with a clear error when it is not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def config_from_dict(data: dict[str, Any]) -> _Config:
    """Build the config class named by `data["model_type"]`."""
    model_type = data.get("model_type")
    cls = _BY_MODEL_TYPE.get(model_type)
    if cls is None:
        raise ConfigError(f"unknown model_type {model_type!r}; expected one of {sorted(_BY_MODEL_TYPE)}")
    return cls.from_dict(data)
