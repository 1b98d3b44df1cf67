"""`TrackerBase`: the parts every SAM 3 tracker shares, image or video.

A tracker is the backbone with the trackers' FPN neck (`Sam3VisionModel`), the prompt encoder and
the mask decoder. The image tracker (`Sam3TrackerModel`) and the video tracker
(`Sam3TrackerVideoModel`) both derive from this class, so they build those parts one way, under
the same parameter names, and compute image features along one path:

    pixel_values (B, 3, S, S) --backbone + neck--> 4 FPN levels (4x, 2x, 1x, 0.5x of h x w)
        levels 0, 1 --mask_decoder.conv_s0 / conv_s1--> (B, C/8, 4h, 4w), (B, C/4, 2h, 2w)
        level 2                                        (B, C, h, w) and its sine encoding

The two high-resolution projections belong to the mask decoder but depend only on the image, so
they run once per image here rather than on every prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..checkpoint import PreTrainedModel
from ..config import Sam3TrackerConfig, Sam3TrackerVideoConfig
from ..modeling.backbones.vit import Sam3ViTModel
from ..modeling.mask_decoder import MaskDecoder, MaskDecoderOutput
from ..modeling.prompt_encoder import FourierPositionEmbedding, PromptEncoder
from ..modeling.vision import Sam3VisionModel
from ..outputs import Sam3VisionOutput


class TrackerImageFeatures(NamedTuple):
    """One image's features as the trackers use them."""

    maps: list[Tensor]  # the decoder's [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w), (B, C, h, w)], finest first
    pos: Tensor  # (B, C, h, w) sine position encoding of the lowest-resolution map
    vision: Sam3VisionOutput  # the vision model's own output (all FPN levels, unprojected)


@dataclass(frozen=True)
class PromptDecoder:
    """A tracker's prompt encoder and mask decoder as one call (what the video engine is given:
    the parts, not the model)."""

    prompt_encoder: PromptEncoder
    mask_decoder: MaskDecoder
    image_embedding: FourierPositionEmbedding  # Fourier encoding of the image-embedding grid

    def image_positional_embeddings(self) -> Tensor:
        """(1, C, h, w) Fourier encoding of the image-embedding grid."""
        return self.image_embedding.dense_grid(*self.prompt_encoder.image_embedding_size)

    def decode_masks(
        self,
        image_embeddings: list[Tensor],
        points: Tensor | None = None,
        labels: Tensor | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
        multimask_output: bool = True,
        batch_size: int | None = None,
        attention_similarity: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> MaskDecoderOutput:
        """Prompt encoder + mask decoder on B images (or frames) with P objects each.

        Args:
            image_embeddings: [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w), (B, C, h, w)]; the last one
                plain or memory-conditioned.
            points: (B, P, N, 2) coordinates in model-input pixels; labels (B, P, N).
            boxes: (B, P, 4) xyxy boxes in model-input pixels.
            masks: (B, P, 4h, 4w) mask-input logits (or (B, H, W), one per image).
            multimask_output: 3 candidate masks per object, else 1.
            batch_size: B when no prompt tells it.
            attention_similarity, target_embedding: PerSAM-style target guidance (optional).
        """
        sparse, dense = self.prompt_encoder(points, labels, boxes, masks, batch_size=batch_size)
        return self.mask_decoder(
            image_embeddings=image_embeddings[-1],
            image_positional_embeddings=self.image_positional_embeddings(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            high_resolution_features=image_embeddings[:-1],
            attention_similarity=attention_similarity,
            target_embedding=target_embedding,
        )


class TrackerBase(PreTrainedModel):
    """Vision encoder, prompt encoder and mask decoder of a SAM 3 tracker.

    Args:
        config: the tracker's config (image or video; only the shared sub-configs are read).
        backbone: an existing ViT to share with other models (one trunk, a neck each).
        build_vision_encoder: False builds no backbone or neck (features then come from elsewhere).
    """

    def __init__(
        self,
        config: Sam3TrackerConfig | Sam3TrackerVideoConfig,
        backbone: Sam3ViTModel | None = None,
        build_vision_encoder: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        pe_config = config.prompt_encoder_config
        self.shared_image_embedding = FourierPositionEmbedding(pe_config.hidden_size, pe_config.scale)
        self.vision_encoder = (
            Sam3VisionModel(config.vision_config, backbone=backbone) if build_vision_encoder else None
        )
        self.prompt_encoder = PromptEncoder(pe_config)
        self.mask_decoder = MaskDecoder(config.mask_decoder_config)
        # Added to a frame's features when it has no memory to attend to (a video's first prompt).
        self.no_memory_embedding = nn.Parameter(torch.zeros(1, 1, config.vision_config.fpn_hidden_size))

    # ------------------------------------------------------------------------------------------
    # Image features
    # ------------------------------------------------------------------------------------------

    @property
    def prompt_decoder(self) -> PromptDecoder:
        """The prompt encoder and mask decoder as one call (`PromptDecoder`)."""
        return PromptDecoder(self.prompt_encoder, self.mask_decoder, self.shared_image_embedding)

    def get_image_wide_positional_embeddings(self) -> Tensor:
        """(1, C, h, w) Fourier encoding of the image-embedding grid."""
        return self.prompt_decoder.image_positional_embeddings()

    def _image_features(self, pixel_values: Tensor) -> TrackerImageFeatures:
        """pixel_values (B, 3, S, S) from the processor -> the tracker's features of those images."""
        if self.vision_encoder is None:
            raise ValueError(
                f"this {type(self).__name__} was built without a vision encoder; it cannot encode images "
                "(pass features computed elsewhere)"
            )
        vision = self.vision_encoder(pixel_values.to(device=self.device, dtype=self.dtype))
        return self._image_features_from_vision(vision)

    def _image_features_from_vision(self, vision: Sam3VisionOutput) -> TrackerImageFeatures:
        """The tracker's features from a vision output of this model's neck (e.g. the neck run on a
        backbone map shared with another model)."""
        maps = list(vision.fpn_hidden_states[:3])
        maps[0] = self.mask_decoder.conv_s0(maps[0])
        maps[1] = self.mask_decoder.conv_s1(maps[1])
        return TrackerImageFeatures(maps, vision.fpn_position_encoding[2], vision)

    # ------------------------------------------------------------------------------------------
    # Prompted decoding
    # ------------------------------------------------------------------------------------------

    def decode_masks(
        self,
        image_embeddings: list[Tensor],
        points: Tensor | None = None,
        labels: Tensor | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
        multimask_output: bool = True,
        batch_size: int | None = None,
        attention_similarity: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> MaskDecoderOutput:
        """Prompt encoder + mask decoder on B images (or frames) with P objects each (see
        `PromptDecoder.decode_masks`)."""
        return self.prompt_decoder.decode_masks(
            image_embeddings, points, labels, boxes, masks, multimask_output, batch_size,
            attention_similarity, target_embedding,
        )  # fmt: skip
