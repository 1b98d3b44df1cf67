"""Configs of the concept detector (`Sam3Model`) and its parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import BaseConfig
from .vision import Sam3VisionConfig


@dataclass
class CLIPTextConfig(BaseConfig):
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
class Sam3GeometryEncoderConfig(BaseConfig):
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
class Sam3DETREncoderConfig(BaseConfig):
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
class Sam3DETRDecoderConfig(BaseConfig):
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
class Sam3MaskDecoderConfig(BaseConfig):
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
class Sam3Config(BaseConfig):
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
