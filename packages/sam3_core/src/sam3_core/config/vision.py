"""Configs of the image backbone (ViT) and its FPN neck."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import BaseConfig, ConfigError, as_pair


@dataclass
class Sam3ViTConfig(BaseConfig):
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
            if min(as_pair(getattr(self, size_name))) <= 0:
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
        (ih, iw), (ph, pw) = as_pair(self.image_size), as_pair(self.patch_size)
        return ih // ph, iw // pw


@dataclass
class Sam3VisionConfig(BaseConfig):
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
