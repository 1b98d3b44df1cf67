"""Configs of SAM3-LiteText: SAM 3's concept detector with a small MobileCLIP text encoder.

The vision encoder and the detector heads are SAM 3's; only the text encoder differs. The part
configs are SAM 3's under the LiteText `model_type`s, so a LiteText `config.json` round-trips with
the names the reference writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import BaseConfig, ConfigError
from .detector import (
    Sam3Config,
    Sam3DETRDecoderConfig,
    Sam3DETREncoderConfig,
    Sam3GeometryEncoderConfig,
    Sam3MaskDecoderConfig,
)
from .vision import Sam3VisionConfig


@dataclass
class Sam3LiteTextTextConfig(BaseConfig):
    """The MobileCLIP text encoder. Defaults are the reference's (the S0 width, 12 layers); the hub
    checkpoints set their own depth (S0: 6 layers with RepMixer ends; S1: 12 plain layers; L: 12
    layers at width 768, 12 heads)."""

    model_type: ClassVar[str] = "sam3_lite_text_text_model"
    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    projection_dim: int = 512  # width of the pooled phrase embedding (unused by the detector)
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77  # learnt positions, resampled to the phrase length
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    attention_dropout: float = 0.0
    # True: the first and last layers are RepMixer blocks (depthwise convolutions), not attention
    use_repmixer_blocks: bool = True
    layer_scale_init_value: float = 1e-5
    repmixer_kernel_size: int = 11  # taps of the RepMixer's depthwise convolutions along the tokens

    def validate(self) -> None:
        self._check_heads()
        self._check_positive(
            "vocab_size",
            "intermediate_size",
            "num_hidden_layers",
            "max_position_embeddings",
            "projection_dim",
        )
        if self.repmixer_kernel_size % 2 == 0 or self.repmixer_kernel_size <= 0:
            raise ConfigError(
                f"Sam3LiteTextTextConfig.repmixer_kernel_size must be odd and positive (the convolution "
                f"keeps the phrase length), got {self.repmixer_kernel_size}"
            )
        if self.use_repmixer_blocks and self.num_hidden_layers < 2:
            raise ConfigError(
                "Sam3LiteTextTextConfig with use_repmixer_blocks needs num_hidden_layers >= 2 (a RepMixer "
                f"block at each end), got {self.num_hidden_layers}"
            )


@dataclass
class Sam3LiteTextGeometryEncoderConfig(Sam3GeometryEncoderConfig):
    model_type: ClassVar[str] = "sam3_lite_text_geometry_encoder"


@dataclass
class Sam3LiteTextDETREncoderConfig(Sam3DETREncoderConfig):
    model_type: ClassVar[str] = "sam3_lite_text_detr_encoder"


@dataclass
class Sam3LiteTextDETRDecoderConfig(Sam3DETRDecoderConfig):
    model_type: ClassVar[str] = "sam3_lite_text_detr_decoder"


@dataclass
class Sam3LiteTextMaskDecoderConfig(Sam3MaskDecoderConfig):
    model_type: ClassVar[str] = "sam3_lite_text_mask_decoder"


@dataclass
class Sam3LiteTextConfig(Sam3Config):
    """SAM3-LiteText (`Sam3LiteTextModel`): SAM 3's detector fields with the LiteText text encoder."""

    model_type: ClassVar[str] = "sam3_lite_text"
    sub_configs: ClassVar[dict] = {
        "vision_config": Sam3VisionConfig,
        "text_config": Sam3LiteTextTextConfig,
        "geometry_encoder_config": Sam3LiteTextGeometryEncoderConfig,
        "detr_encoder_config": Sam3LiteTextDETREncoderConfig,
        "detr_decoder_config": Sam3LiteTextDETRDecoderConfig,
        "mask_decoder_config": Sam3LiteTextMaskDecoderConfig,
    }
    text_config: Sam3LiteTextTextConfig | dict | None = None
