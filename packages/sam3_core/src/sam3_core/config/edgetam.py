"""Configs of EdgeTAM video tracking (`EdgeTamVideoModel`): a RepViT backbone with a top-down FPN,
the SAM 2 prompt encoder and mask decoder, and a memory compressed by a spatial perceiver.

Field names and defaults are those of the hub `config.json` (`yonigozlan/edgetam-video-1`). The
backbone is described as the hub describes it, a timm model name plus keyword arguments
(`{"model_type": "timm_wrapper", "architecture": "repvit_m1", "model_args": {...}}`); we read the
RepViT widths and depths from that name and those arguments, and never import timm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .base import BaseConfig, ConfigError
from .tracker import Sam3TrackerMaskDecoderConfig, Sam3TrackerPromptEncoderConfig, TrackerVideoConfigBase

# timm's RepViT variants: stage widths, stage depths, and whether the depthwise 1x1 branch carries
# its own BatchNorm ("legacy", the m1/m2/m3 checkpoints) instead of one BatchNorm after the sum.
REPVIT_ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...], bool]] = {
    "repvit_m1": ((48, 96, 192, 384), (2, 2, 14, 2), True),
    "repvit_m2": ((64, 128, 256, 512), (2, 2, 12, 2), True),
    "repvit_m3": ((64, 128, 256, 512), (4, 4, 18, 2), True),
    "repvit_m0_9": ((48, 96, 192, 384), (2, 2, 14, 2), False),
    "repvit_m1_0": ((56, 112, 224, 448), (2, 2, 14, 2), False),
    "repvit_m1_1": ((64, 128, 256, 512), (2, 2, 12, 2), False),
    "repvit_m1_5": ((64, 128, 256, 512), (4, 4, 24, 4), False),
    "repvit_m2_3": ((80, 160, 320, 640), (6, 6, 34, 2), False),
}

# The pretrained tags timm publishes for each variant (`timm.list_models("repvit*", pretrained=True)`).
# A tag picks weights, never widths, but timm refuses a tag it does not know, and so do we.
REPVIT_PRETRAINED_TAGS: dict[str, tuple[str, ...]] = {
    "repvit_m1": ("dist_in1k",),
    "repvit_m2": ("dist_in1k",),
    "repvit_m3": ("dist_in1k",),
    **{
        name: ("dist_300e_in1k", "dist_450e_in1k")
        for name in ("repvit_m0_9", "repvit_m1_0", "repvit_m1_1", "repvit_m1_5", "repvit_m2_3")
    },
}

# A model source prefix as timm parses one (two or more characters, so a drive letter is not one).
_TIMM_SOURCE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-_]+")


def repvit_variant(name: str) -> str:
    """The RepViT variant (a key of `REPVIT_ARCHITECTURES`) a timm model name builds.

    Accepts what timm's `create_model` accepts for these variants: the registry name
    (`"repvit_m1"`), the name with a pretrained tag (`"repvit_m1.dist_in1k"`, or an empty tag
    `"repvit_m1."`), and a timm hub repository (`"hf-hub:timm/repvit_m1.dist_in1k"`, also spelled
    `hf_hub:`, optionally `@revision`), whose config timm's own repositories name by that same registry
    name. Raises `ConfigError` for anything else: an unknown variant or tag, another hub owner or a
    local folder (their config.json, which we do not read, would name the architecture).
    """
    source, sep, model_id = name.partition(":")
    if sep and _TIMM_SOURCE.fullmatch(source):
        source = {"hf_hub": "hf-hub"}.get(source.lower(), source.lower())
        repo = model_id.split("@", 1)[0]
        owner, _, repo_name = repo.rpartition("/")
        if source not in ("hf-hub", "local-dir"):
            raise ConfigError(
                f"EdgeTamBackboneConfig.architecture: {name!r} has model source {source!r}, which timm does "
                "not know; expected a timm registry name such as 'repvit_m1.dist_in1k'"
            )
        if source != "hf-hub" or owner != "timm":
            raise ConfigError(
                f"EdgeTamBackboneConfig.architecture: {name!r} names a model by its {source!r} source, whose "
                "config.json says which network it is; we read the network from the name, so expected a "
                "timm registry name such as 'repvit_m1.dist_in1k' (or a 'hf-hub:timm/...' repository)"
            )
        name = repo_name
    arch, _, tag = name.partition(".")
    if arch not in REPVIT_ARCHITECTURES:
        raise ConfigError(
            f"EdgeTamBackboneConfig.architecture: {name!r} is not a RepViT we can build; "
            f"expected one of {sorted(REPVIT_ARCHITECTURES)}, optionally with a timm pretrained tag "
            "(e.g. 'repvit_m1.dist_in1k')"
        )
    if tag and tag not in REPVIT_PRETRAINED_TAGS[arch]:
        raise ConfigError(
            f"EdgeTamBackboneConfig.architecture: {name!r} has pretrained tag {tag!r}, which timm does not "
            f"know for {arch}; expected one of {list(REPVIT_PRETRAINED_TAGS[arch])} or no tag"
        )
    return arch


# timm keyword arguments that change the network; anything else in model_args (features_only,
# out_indices, pretrained settings) only says how timm wraps it.
_REPVIT_ARGS = {"embed_dim", "depth", "legacy", "mlp_ratio", "kernel_size", "in_chans"}


@dataclass
class EdgeTamBackboneConfig(BaseConfig):
    """The RepViT backbone, as the hub's timm-wrapper config names it."""

    model_type: ClassVar[str] = "timm_wrapper"
    architecture: str = "repvit_m1"  # a timm model name: "repvit_m1", "repvit_m1.dist_in1k", ...
    model_args: dict | None = None  # timm keyword arguments (embed_dim, depth, in_chans, ...)

    def __post_init__(self) -> None:
        if self.model_args is None:
            self.model_args = {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}
        super().__post_init__()

    def validate(self) -> None:
        repvit_variant(self.architecture)
        unknown = set(self.model_args) - _REPVIT_ARGS - {"features_only", "out_indices", "pretrained"}
        if unknown:
            raise ConfigError(
                f"EdgeTamBackboneConfig.model_args: {sorted(unknown)} are not RepViT arguments we honour; "
                f"expected some of {sorted(_REPVIT_ARGS | {'features_only', 'out_indices'})}"
            )
        if list(self.model_args.get("out_indices", [0, 1, 2, 3])) != list(range(len(self.embed_dim))):
            raise ConfigError(
                "EdgeTamBackboneConfig.model_args.out_indices must list every stage "
                f"({list(range(len(self.embed_dim)))}), got {self.model_args.get('out_indices')}"
            )
        if len(self.embed_dim) != len(self.depth):
            raise ConfigError(
                f"EdgeTamBackboneConfig: {len(self.embed_dim)} stage widths but {len(self.depth)} depths"
            )

    @property
    def variant(self) -> str:
        """The RepViT variant `architecture` names, without timm's pretrained tag or hub source."""
        return repvit_variant(self.architecture)

    def _arch(self, index: int):
        return REPVIT_ARCHITECTURES[self.variant][index]

    @property
    def embed_dim(self) -> list[int]:
        return list(self.model_args.get("embed_dim", self._arch(0)))

    @property
    def depth(self) -> list[int]:
        return list(self.model_args.get("depth", self._arch(1)))

    @property
    def legacy(self) -> bool:
        return bool(self.model_args.get("legacy", self._arch(2)))

    @property
    def mlp_ratio(self) -> int:
        return int(self.model_args.get("mlp_ratio", 2))

    @property
    def kernel_size(self) -> int:
        return int(self.model_args.get("kernel_size", 3))

    @property
    def in_chans(self) -> int:
        return int(self.model_args.get("in_chans", 3))


@dataclass
class EdgeTamVisionConfig(BaseConfig):
    """RepViT backbone plus the SAM 2 top-down FPN neck."""

    model_type: ClassVar[str] = "edgetam_vision_model"
    sub_configs: ClassVar[dict] = {"backbone_config": EdgeTamBackboneConfig}
    backbone_config: EdgeTamBackboneConfig | dict | None = None
    backbone_channel_list: list[int] | None = None  # the backbone's stage widths, coarsest first
    backbone_feature_sizes: list | None = None  # [[h, w], ...] of the three maps the tracker uses
    fpn_hidden_size: int = 256
    fpn_kernel_size: int = 1
    fpn_stride: int = 1
    fpn_padding: int = 0
    fpn_top_down_levels: list[int] | None = None  # levels that add the upsampled coarser level
    num_feature_levels: int = 3
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.backbone_channel_list is None:
            self.backbone_channel_list = [384, 192, 96, 48]
        if self.backbone_feature_sizes is None:
            self.backbone_feature_sizes = [[256, 256], [128, 128], [64, 64]]
        if self.fpn_top_down_levels is None:
            self.fpn_top_down_levels = [2, 3]
        super().__post_init__()

    def validate(self) -> None:
        self._check_positive("fpn_hidden_size", "num_feature_levels")
        widths = list(reversed(self.backbone_config.embed_dim))
        if list(self.backbone_channel_list) != widths:
            raise ConfigError(
                f"EdgeTamVisionConfig.backbone_channel_list {self.backbone_channel_list} does not match "
                f"the backbone's stage widths, coarsest first: {widths}"
            )
        if not 1 <= self.num_feature_levels <= len(widths):
            raise ConfigError(
                f"EdgeTamVisionConfig.num_feature_levels must be in 1..{len(widths)}, got {self.num_feature_levels}"
            )


@dataclass
class EdgeTamVideoPromptEncoderConfig(Sam3TrackerPromptEncoderConfig):
    """Points, boxes and masks → sparse and dense prompt embeddings (SAM 2's prompt encoder)."""

    model_type: ClassVar[str] = "edgetam_video_prompt_encoder"
    image_size: int | list[int] = 1024
    patch_size: int | list[int] = 16


@dataclass
class EdgeTamVideoMaskDecoderConfig(Sam3TrackerMaskDecoderConfig):
    """The two-way transformer mask decoder (SAM 2's)."""

    model_type: ClassVar[str] = "edgetam_video_mask_decoder"


@dataclass
class EdgeTamVideoConfig(TrackerVideoConfigBase):
    """EdgeTAM video tracking (`EdgeTamVideoModel`): the video tracker's fields (`TrackerVideoConfigBase`),
    the defaults that differ, and the spatial perceiver's."""

    model_type: ClassVar[str] = "edgetam_video"
    sub_configs: ClassVar[dict] = {
        "vision_config": EdgeTamVisionConfig,
        "prompt_encoder_config": EdgeTamVideoPromptEncoderConfig,
        "mask_decoder_config": EdgeTamVideoMaskDecoderConfig,
    }
    image_size: int | list[int] = 1024
    max_cond_frame_num: int = -1  # -1: every prompted frame is remembered
    memory_attention_num_layers: int = 2
    memory_attention_mlp_hidden_size: int = 2048
    memory_attention_mlp_hidden_act: str = "relu"
    memory_attention_rope_k_sizes: list | None = None  # [w, h] of the perceiver's 2D latent grid
    perceiver_resampler_num_latents: int = 256  # global latents (no spatial position)
    perceiver_resampler_num_latents_2d: int = 256  # one latent per window of a square grid
    perceiver_resampler_hidden_size: int = 64
    perceiver_resampler_mlp_intermediate_size: int = 256
    perceiver_resampler_num_attention_heads: int = 1
    perceiver_resampler_attention_head_dim: int = 64
    perceiver_resampler_num_layers: int = 2
    perceiver_resampler_hidden_dropout: float = 0.0
    perceiver_resampler_attention_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.memory_attention_rope_feat_sizes is None:
            self.memory_attention_rope_feat_sizes = [64, 64]
        if self.memory_attention_rope_k_sizes is None:
            self.memory_attention_rope_k_sizes = [16, 16]
        super().__post_init__()

    @property
    def memory_attention_mlp(self) -> tuple[int, str]:
        return self.memory_attention_mlp_hidden_size, self.memory_attention_mlp_hidden_act

    def validate(self) -> None:
        super().validate()
        self._check_positive("perceiver_resampler_hidden_size")
        if self.perceiver_resampler_hidden_size != self.memory_encoder_output_channels:
            raise ConfigError(
                f"EdgeTamVideoConfig.perceiver_resampler_hidden_size ({self.perceiver_resampler_hidden_size}) "
                f"must equal memory_encoder_output_channels ({self.memory_encoder_output_channels}): the "
                "perceiver reads the memory encoder's output"
            )
        side = round(self.perceiver_resampler_num_latents_2d**0.5)
        if self.perceiver_resampler_num_latents_2d and side * side != self.perceiver_resampler_num_latents_2d:
            raise ConfigError(
                "EdgeTamVideoConfig.perceiver_resampler_num_latents_2d must be a square number (one latent "
                f"per window of a square grid), got {self.perceiver_resampler_num_latents_2d}"
            )
        kw, kh = self.memory_attention_rope_k_sizes
        if self.perceiver_resampler_num_latents_2d and kw * kh != self.perceiver_resampler_num_latents_2d:
            raise ConfigError(
                f"EdgeTamVideoConfig.memory_attention_rope_k_sizes {self.memory_attention_rope_k_sizes} must "
                f"cover the {self.perceiver_resampler_num_latents_2d} 2D latents of the perceiver"
            )
