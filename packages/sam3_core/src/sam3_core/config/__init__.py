"""Configuration dataclasses of the SAM 3 family, one module per model family.

`from sam3_core.config import X` works for every config class; `config_from_dict` builds the class
named by a dict's `model_type`.
"""

from __future__ import annotations

from typing import Any

from .base import BaseConfig, ConfigError, as_pair, load_config_dict
from .detector import (
    CLIPTextConfig,
    Sam3Config,
    Sam3DETRDecoderConfig,
    Sam3DETREncoderConfig,
    Sam3GeometryEncoderConfig,
    Sam3MaskDecoderConfig,
)
from .edgetam import (
    EdgeTamBackboneConfig,
    EdgeTamVideoConfig,
    EdgeTamVideoMaskDecoderConfig,
    EdgeTamVideoPromptEncoderConfig,
    EdgeTamVisionConfig,
)
from .lite_text import (
    Sam3LiteTextConfig,
    Sam3LiteTextDETRDecoderConfig,
    Sam3LiteTextDETREncoderConfig,
    Sam3LiteTextGeometryEncoderConfig,
    Sam3LiteTextMaskDecoderConfig,
    Sam3LiteTextTextConfig,
)
from .tracker import (
    Sam3TrackerConfig,
    Sam3TrackerMaskDecoderConfig,
    Sam3TrackerPromptEncoderConfig,
    Sam3TrackerVideoConfig,
    Sam3TrackerVideoMaskDecoderConfig,
    Sam3TrackerVideoPromptEncoderConfig,
    Sam3TrackerVideoVisionConfig,
    Sam3TrackerVisionConfig,
    Sam3VideoConfig,
)
from .vision import Sam3VisionConfig, Sam3ViTConfig

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
    "Sam3TrackerVideoPromptEncoderConfig",
    "Sam3TrackerVideoMaskDecoderConfig",
    "Sam3TrackerVisionConfig",
    "Sam3TrackerVideoVisionConfig",
    "Sam3VideoConfig",
    "EdgeTamBackboneConfig",
    "EdgeTamVisionConfig",
    "EdgeTamVideoPromptEncoderConfig",
    "EdgeTamVideoMaskDecoderConfig",
    "EdgeTamVideoConfig",
    "Sam3LiteTextConfig",
    "Sam3LiteTextTextConfig",
    "Sam3LiteTextGeometryEncoderConfig",
    "Sam3LiteTextDETREncoderConfig",
    "Sam3LiteTextDETRDecoderConfig",
    "Sam3LiteTextMaskDecoderConfig",
    "CONFIG_CLASSES",
    "config_from_dict",
    "load_config_dict",
    "BaseConfig",
    "as_pair",
]


# Every config class, by the `model_type` its config.json names (whole models and their parts).
CONFIG_CLASSES: dict[str, type[BaseConfig]] = {
    c.model_type: c
    for c in (
        Sam3VideoConfig,
        Sam3Config,
        Sam3TrackerConfig,
        Sam3TrackerVideoConfig,
        Sam3VisionConfig,
        Sam3ViTConfig,
        CLIPTextConfig,
        Sam3GeometryEncoderConfig,
        Sam3DETREncoderConfig,
        Sam3DETRDecoderConfig,
        Sam3MaskDecoderConfig,
        Sam3TrackerPromptEncoderConfig,
        Sam3TrackerMaskDecoderConfig,
        Sam3TrackerVideoPromptEncoderConfig,
        Sam3TrackerVideoMaskDecoderConfig,
        EdgeTamVideoConfig,
        EdgeTamVisionConfig,
        EdgeTamBackboneConfig,
        EdgeTamVideoPromptEncoderConfig,
        EdgeTamVideoMaskDecoderConfig,
        Sam3LiteTextConfig,
        Sam3LiteTextTextConfig,
        Sam3LiteTextGeometryEncoderConfig,
        Sam3LiteTextDETREncoderConfig,
        Sam3LiteTextDETRDecoderConfig,
        Sam3LiteTextMaskDecoderConfig,
    )
}
_BY_MODEL_TYPE = CONFIG_CLASSES


def config_from_dict(data: dict[str, Any]) -> BaseConfig:
    """Build the config class named by `data["model_type"]`."""
    model_type = data.get("model_type")
    cls = _BY_MODEL_TYPE.get(model_type)
    if cls is None:
        raise ConfigError(f"unknown model_type {model_type!r}; expected one of {sorted(_BY_MODEL_TYPE)}")
    return cls.from_dict(data)
