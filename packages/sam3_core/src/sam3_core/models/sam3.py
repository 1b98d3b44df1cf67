"""`Sam3Model`: SAM 3 promptable concept segmentation (text and exemplar-box prompts -> instance masks).

Pipeline (one image backbone pass, shared by every prompt):

    pixels → vision encoder (ViT + FPN)      text → CLIP encoder → text_projection
    boxes + labels → geometry encoder (ROI-align pooled exemplars, cross-attending the image)
    [text tokens | box tokens] → DETR encoder (image tokens cross-attend the prompt)
    → DETR decoder (queries + presence token, iterative box refinement, box-relative attention bias)
    → dot-product scoring (query · pooled prompt) and mask head (instance + semantic masks)

Module and parameter names follow the reference checkpoint (`geometry_encoder.*`, `detr_encoder.*`,
`detr_decoder.*`, `mask_decoder.*`, `dot_product_scoring.*`, `text_encoder.*`, `text_projection.*`,
`vision_encoder.*`), so `detector_model.*` hub keys load after stripping the prefix.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..checkpoint import PreTrainedModel
from ..checkpoint_keys import DETECTOR
from ..config import Sam3Config
from ..modeling.backbones.vit import Sam3ViTModel
from ..modeling.detector.boxes import box_cxcywh_to_xyxy
from ..modeling.detector.detr_decoder import Sam3DetrDecoder
from ..modeling.detector.detr_encoder import Sam3DetrEncoder
from ..modeling.detector.geometry_encoder import Sam3GeometryEncoder
from ..modeling.detector.mask_head import Sam3MaskDecoder
from ..modeling.detector.scoring import Sam3DotProductScoring
from ..modeling.text import CLIPTextModelWithProjection
from ..modeling.vision import Sam3VisionModel
from ..outputs import Sam3ImageSegmentationOutput, Sam3TextOutput, Sam3VisionOutput

BOX_PAD_LABEL = -10  # label of padded (absent) boxes in `input_boxes_labels`


class Sam3Model(PreTrainedModel):
    """SAM 3 promptable concept segmentation on images.

    Prompts are a noun phrase (`input_ids`/`attention_mask` or precomputed `text_embeds`) and/or
    exemplar boxes (`input_boxes`, `input_boxes_labels`); the output has, per image, `num_queries`
    candidate instances with mask logits, boxes (xyxy, normalised) and logits, plus a presence logit
    and a semantic segmentation map.
    """

    config_class = Sam3Config
    config_key = "detector_config"
    checkpoint_layout = DETECTOR

    def __init__(
        self, config: Sam3Config, backbone: Sam3ViTModel | None = None, text_encoder: nn.Module | None = None
    ):
        """backbone: a ViT trunk to share (see `from_pretrained`). text_encoder: the phrase encoder;
        default SAM 3's CLIP encoder (a subclass with another one overrides `get_text_features`)."""
        super().__init__()
        if getattr(config, "detector_config", None) is not None:  # a combined sam3_video config
            config = config.detector_config
        self.config = config
        self.vision_encoder = Sam3VisionModel(config.vision_config, backbone=backbone)
        self.text_encoder = (
            CLIPTextModelWithProjection(config.text_config) if text_encoder is None else text_encoder
        )
        self.text_projection = nn.Linear(
            config.text_config.hidden_size, config.detr_encoder_config.hidden_size
        )
        self.geometry_encoder = Sam3GeometryEncoder(config.geometry_encoder_config)
        self.detr_encoder = Sam3DetrEncoder(config.detr_encoder_config)
        self.detr_decoder = Sam3DetrDecoder(config.detr_decoder_config)
        self.mask_decoder = Sam3MaskDecoder(config.mask_decoder_config)
        self.dot_product_scoring = Sam3DotProductScoring(config)

    # -- features -------------------------------------------------------------------------------

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **unused: Any
    ) -> Sam3TextOutput:
        """Encode phrases once to reuse them with several images.

        Args:
            input_ids: (B, L) token ids; attention_mask: (B, L), 1 for tokens, 0 for padding.

        Returns:
            `Sam3TextOutput` with `text_embeds` (B, projection_dim): CLIP's projected phrase embedding,
            `last_hidden_state` (B, L, text hidden) and `pooler_output` (B, L, detector hidden): the
            per-token prompt features `forward(text_embeds=...)` takes (the whole output works too).
        """
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        hidden = self.text_encoder(input_ids, attention_mask)  # (B, L, text hidden)
        # CLIP pools each phrase at its end-of-text token (the first one; position 0 when absent)
        eos = self.config.text_config.eos_token_id
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        ends = input_ids.to(torch.int).argmax(-1) if eos == 2 else (input_ids == eos).int().argmax(-1)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), ends]  # (B, text hidden)
        return Sam3TextOutput(
            text_embeds=self.text_encoder.text_projection(pooled),
            last_hidden_state=hidden,
            pooler_output=self.text_projection(hidden),
        )

    def get_vision_features(self, pixel_values: torch.Tensor, **unused: Any) -> Sam3VisionOutput:
        """Run the image backbone once: pixel_values (B, 3, S, S) → `Sam3VisionOutput` to pass as
        `vision_embeds`."""
        return self.vision_encoder(pixel_values.to(device=self.device, dtype=self.dtype))

    # -- forward --------------------------------------------------------------------------------

    def _prompt(
        self,
        text_features: torch.Tensor,
        text_mask: torch.Tensor | None,
        input_boxes: torch.Tensor | None,
        input_boxes_labels: torch.Tensor | None,
        image: torch.Tensor,
        image_pos: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Concatenate text tokens and (when boxes are given) geometry tokens, with their mask."""
        b = image.shape[0]
        if text_features.shape[0] == 1 and b > 1:
            text_features = text_features.expand(b, -1, -1)
            text_mask = None if text_mask is None else text_mask.expand(b, -1)
        if text_features.shape[0] != b:
            raise ValueError(f"got text prompts for {text_features.shape[0]} images but {b} images")
        if input_boxes is None or input_boxes.numel() == 0:
            return text_features, text_mask

        boxes = input_boxes.to(device=image.device, dtype=image.dtype)
        if boxes.ndim != 3 or boxes.shape[-1] != 4:
            raise ValueError(f"input_boxes must be (batch, boxes, 4) cxcywh, got shape {tuple(boxes.shape)}")
        if boxes.shape[0] == 1 and b > 1:
            boxes = boxes.expand(b, -1, -1)
        if input_boxes_labels is None:
            labels = torch.ones(boxes.shape[:2], dtype=torch.long, device=image.device)
        else:
            labels = input_boxes_labels.to(image.device).long()
            if labels.shape[0] == 1 and b > 1:
                labels = labels.expand(b, -1)
            if labels.shape != boxes.shape[:2]:
                raise ValueError(
                    f"input_boxes_labels has shape {tuple(labels.shape)}; expected {tuple(boxes.shape[:2])} "
                    "(one label per box)"
                )
        if boxes.shape[0] != b:
            raise ValueError(f"got boxes for {boxes.shape[0]} images but {b} images")
        box_mask = labels != BOX_PAD_LABEL
        labels = torch.where(box_mask, labels, torch.zeros_like(labels))
        geo, geo_mask = self.geometry_encoder(boxes, box_mask, labels, image, image_pos)

        if text_mask is None:
            text_mask = torch.ones(text_features.shape[:2], dtype=torch.bool, device=image.device)
        prompt = torch.cat([text_features, geo], dim=1)
        return prompt, torch.cat([text_mask.bool(), geo_mask], dim=1)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: Sam3VisionOutput | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        text_embeds: Sam3TextOutput | torch.Tensor | None = None,
        input_boxes: torch.Tensor | None = None,
        input_boxes_labels: torch.Tensor | None = None,
        original_sizes: Any = None,
    ) -> Sam3ImageSegmentationOutput:
        """Segment every instance of the prompted concept.

        Args:
            pixel_values: (B, 3, S, S) preprocessed images; or `vision_embeds` from
                `get_vision_features` (exactly one of the two).
            input_ids: (B, L) token ids, with `attention_mask` (B, L); or `text_embeds` from
                `get_text_features` (exactly one of the two). A batch of one phrase is shared by all images.
            input_boxes: (B, N, 4) exemplar boxes, normalised (cx, cy, w, h) as the processor makes them.
            input_boxes_labels: (B, N) 1 positive, 0 negative, -10 padding.
            original_sizes: accepted (and unused) so that `model(**processor(...))` works.

        Returns:
            `Sam3ImageSegmentationOutput`: pred_masks (B, Q, h, w) logits at 4x the backbone grid,
            pred_boxes (B, Q, 4) xyxy in [0, 1], pred_logits (B, Q), presence_logits (B, 1),
            semantic_seg (B, 1, h, w), decoder_reference_boxes (num_layers, B, Q, 4).
        """
        if (pixel_values is None) == (vision_embeds is None):
            raise ValueError("pass exactly one of pixel_values or vision_embeds")
        if (input_ids is None) == (text_embeds is None):
            raise ValueError(
                "pass exactly one of input_ids or text_embeds (for box-only prompts the processor "
                "supplies the text 'visual')"
            )
        vision = self.get_vision_features(pixel_values) if vision_embeds is None else vision_embeds
        fpn = [f.to(self.dtype) for f in vision.fpn_hidden_states[:-1]]
        fpn_pos = [p.to(self.dtype) for p in vision.fpn_position_encoding[:-1]]

        if text_embeds is None:
            text_embeds = self.get_text_features(input_ids, attention_mask)
        text_features = text_embeds if isinstance(text_embeds, torch.Tensor) else text_embeds.pooler_output
        text_features = text_features.to(device=self.device, dtype=self.dtype)
        text_mask = None if attention_mask is None else attention_mask.to(self.device).bool()

        image, image_pos = fpn[-1], fpn_pos[-1]
        prompt, prompt_mask = self._prompt(
            text_features, text_mask, input_boxes, input_boxes_labels, image, image_pos
        )
        encoded, encoded_pos = self.detr_encoder(image, image_pos, prompt, prompt_mask)
        queries, boxes, presence, reference_boxes = self.detr_decoder(
            encoded, encoded_pos, tuple(image.shape[-2:]), prompt, prompt_mask
        )
        logits = self.dot_product_scoring(queries, prompt, prompt_mask)
        masks, semantic = self.mask_decoder(queries, fpn, encoded, prompt, prompt_mask)
        return Sam3ImageSegmentationOutput(
            pred_masks=masks,
            pred_boxes=box_cxcywh_to_xyxy(boxes),
            pred_logits=logits,
            presence_logits=presence,
            semantic_seg=semantic,
            decoder_reference_boxes=reference_boxes,
        )
