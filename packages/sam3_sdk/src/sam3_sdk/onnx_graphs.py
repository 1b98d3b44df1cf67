"""The modules that `onnx_export` traces: thin wrappers over our PyTorch models with plain tensor
inputs and outputs, one per ONNX graph. They add no maths of their own: each calls the same model
parts the SDK calls, so a graph's numbers are the model's.

Image encoder: pixel_values (1, 3, S, S) -> the tracker's image_embeddings_0/1/2 (as the SDK's
`FeatureStore`: one backbone pass, the tracker's neck, the decoder's two projections) and, for SAM 3,
the detector neck's detector_fpn_0/1/2 (what the concept heads read). EdgeTAM's level 2 includes its
`no_memory_embedding`, as its tracker adds it on a first prompt (SAM 2's image predictor does too).

Text encoder: input_ids, attention_mask (P, L) -> text_features (P, L, D) (`get_text_features(...)
.pooler_output`, what the detector takes) and text_embeds (P, D_proj); P phrases, dynamic.

Concept heads: detector_fpn_0/1/2 of one image, text_features + attention_mask of P phrases ->
per phrase pred_masks (P, Q, h, w), pred_boxes (P, Q, 4) xyxy in [0, 1], pred_logits (P, Q),
presence_logits (P, 1), semantic_seg (P, 1, h, w): `Sam3Model.forward` with the image's features
repeated for each phrase (the model's batch), so each phrase's result is its own forward's.
The pixel decoder's GroupNorms are traced as `StagedGroupNorm` (the same maths, the statistics
reduced in stages; see there): onnxruntime's InstanceNormalization sums a whole group in one float32
accumulator, which at the real widths put the masks 1.3e-3 from PyTorch.

Click decoder (any tracker built on `TrackerBase`: SAM 3's image tracker, EdgeTAM):

    image_embeddings_0/1/2  the three maps of `get_image_embeddings`, finest first, batch 1
    point_coords (1, N, 2)  x, y in model-input pixels; N >= 1 is dynamic
    point_labels (1, N)     1 positive, 0 negative, 2 / 3 box top-left / bottom-right, -1 not a point,
                            -10 ignored padding (the prompt encoder's labels, as float32)
    mask_input (1, 1, Hm, Wm) low-resolution logits, used where has_mask_input (1,) is 1
        -> low_res_masks (1, M, Hm, Wm), iou_scores (1, M), object_score_logits (1, 1)

A box is two points labelled 2 and 3: our prompt encoder embeds a box `(x1, y1, x2, y2)` as exactly
those two corner tokens (Fourier features + the corner embeddings `point_embed[2:4]`) followed by one
"not a point" token, and the points path appends that same token when no box is given. The graph
always appends it, so points + corners give the same tokens as `input_points` + `input_boxes`.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

__all__ = [
    "CLICK_INPUTS",
    "CLICK_OUTPUTS",
    "CONCEPT_INPUTS",
    "CONCEPT_OUTPUTS",
    "ClickDecoder",
    "ConceptHeads",
    "ImageEncoder",
    "StagedGroupNorm",
    "TextEncoder",
]

CLICK_INPUTS = (
    "image_embeddings_0",
    "image_embeddings_1",
    "image_embeddings_2",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
)
CLICK_OUTPUTS = ("low_res_masks", "iou_scores", "object_score_logits")
CONCEPT_INPUTS = ("detector_fpn_0", "detector_fpn_1", "detector_fpn_2", "text_features", "attention_mask")
CONCEPT_OUTPUTS = ("pred_masks", "pred_boxes", "pred_logits", "presence_logits", "semantic_seg")


class ClickDecoder(nn.Module):
    """Prompt encoder + mask decoder of a tracker for one object on one image (batch 1).

    Args:
        tracker: a `TrackerBase` model (`Sam3TrackerModel`, `EdgeTamVideoModel`, ...).
        multimask: True returns the 3 candidate masks (`multimask_output=True`), False the one mask
            the model gives with `multimask_output=False` (with its stability fallback).
    """

    def __init__(self, tracker: nn.Module, multimask: bool) -> None:
        super().__init__()
        self.prompt_encoder = tracker.prompt_encoder
        self.mask_decoder = tracker.mask_decoder
        self.multimask = multimask
        # A constant of the model (the Fourier encoding of the embedding grid): folded into the graph.
        self.register_buffer("image_pe", tracker.get_image_wide_positional_embeddings().detach().clone())

    def forward(
        self,
        image_embeddings_0: Tensor,
        image_embeddings_1: Tensor,
        image_embeddings_2: Tensor,
        point_coords: Tensor,
        point_labels: Tensor,
        mask_input: Tensor,
        has_mask_input: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        encoder = self.prompt_encoder
        dtype = encoder.point_embed.weight.dtype
        labels = point_labels.round().to(torch.int64)[:, None]  # (1, 1, N): one object
        sparse = encoder.embed_points(point_coords[:, None], labels, pad=True).to(dtype)  # (1, 1, N+1, C)
        has_mask = has_mask_input.to(dtype).reshape(-1, 1, 1, 1)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        # 1 * x + 0 * y is x exactly (and 0 * x + 1 * y is y), so either branch matches the model's.
        dense = has_mask * encoder.mask_embed(mask_input.to(dtype)) + (1 - has_mask) * no_mask
        out = self.mask_decoder(
            image_embeddings=image_embeddings_2,
            image_positional_embeddings=self.image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask,
            high_resolution_features=[image_embeddings_0, image_embeddings_1],
        )
        return out.masks[:, 0], out.iou_scores[:, 0], out.object_score_logits[:, 0]


class ImageEncoder(nn.Module):
    """Backbone + FPN neck(s): pixel_values -> the tracker's three maps (+ the detector's FPN levels).

    Args:
        tracker: a `TrackerBase` model with its vision encoder.
        detector_vision: the detector's `Sam3VisionModel` sharing the tracker's backbone (SAM 3), or None.
        add_no_memory: add the tracker's `no_memory_embedding` to the last map (EdgeTAM's image path).
    """

    def __init__(self, tracker: nn.Module, detector_vision: nn.Module | None, add_no_memory: bool) -> None:
        super().__init__()
        self.tracker = tracker
        self.detector_vision = detector_vision
        self.add_no_memory = add_no_memory

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, ...]:
        vision = self.tracker.vision_encoder
        if hasattr(vision, "backbone_map"):  # SAM 3: one backbone pass shared by the necks
            backbone_map = vision.backbone_map(pixel_values)
            maps = self.tracker.image_embeddings_from_vision(vision.from_backbone_map(backbone_map))
        else:
            backbone_map = None
            maps = self.tracker._image_features(pixel_values).maps  # the trackers' one feature path
        maps = list(maps)
        if self.add_no_memory:
            maps[-1] = maps[-1] + self.tracker.no_memory_embedding.reshape(1, -1, 1, 1)
        if self.detector_vision is None:
            return tuple(maps)
        fpn = self.detector_vision.from_backbone_map(backbone_map).fpn_hidden_states[:3]
        return (*maps, *fpn)


class TextEncoder(nn.Module):
    """The detector's phrase encoder: (P, L) token ids and mask -> text_features, text_embeds."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        out = self.detector.get_text_features(input_ids, attention_mask)
        return out.pooler_output, out.text_embeds


class StagedGroupNorm(nn.Module):
    """`nn.GroupNorm` (sharing its weight and bias) whose mean and variance are reduced over the width,
    then the height, then the group's channels: no float32 sum runs over more than max(W, H, C/G) values.

    Traced as is, a GroupNorm becomes InstanceNormalization (or one ReduceMean), which onnxruntime's
    CPU kernels sum in one float32 accumulator: at 288x288 a group of SAM 3's pixel decoder has
    32 * 288 * 288 = 2.65M values, and the normalised map came out 6.9e-4 from float64 where PyTorch's
    GroupNorm is 1.6e-6 from it (random map of std 2 around 3; the masks then deviated 1.3e-3). Staged,
    onnxruntime is 1.8e-6 from float64 on the same map. The maths is GroupNorm's: biased variance of
    the centred values (two passes), eps inside the square root, then the per-channel affine.
    """

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        if not norm.affine:
            raise ValueError(f"StagedGroupNorm expects an affine GroupNorm, got {norm}")
        self.num_groups, self.eps = norm.num_groups, norm.eps
        self.weight, self.bias = norm.weight, norm.bias

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = x.reshape(b, self.num_groups, c // self.num_groups, h, w)
        mean = y.mean(-1, keepdim=True).mean(-2, keepdim=True).mean(-3, keepdim=True)
        centred = y - mean
        var = (centred * centred).mean(-1, keepdim=True).mean(-2, keepdim=True).mean(-3, keepdim=True)
        normed = (centred * torch.rsqrt(var + self.eps)).reshape(b, c, h, w)
        return normed * self.weight.reshape(1, c, 1, 1) + self.bias.reshape(1, c, 1, 1)


def _replacing(module: nn.Module, **children: nn.Module) -> nn.Module:
    """A shallow copy of `module` with some child modules replaced (the original is left as it is;
    parameters and the other children are shared)."""
    clone = copy.copy(module)
    clone._modules = {**module._modules, **children}
    return clone


class ConceptHeads(nn.Module):
    """The detector's heads (DETR encoder, decoder, scoring, mask head) on one image's cached FPN
    features and P phrases.

    Args:
        detector: a `Sam3Model`.
        position_encodings: the detector neck's position encodings of levels 0-2 for this input size
            (constants: they depend only on the feature-map shapes).
    """

    def __init__(self, detector: nn.Module, position_encodings: list[Tensor]) -> None:
        super().__init__()
        mask_decoder = detector.mask_decoder
        pixel_decoder = _replacing(
            mask_decoder.pixel_decoder,
            norms=nn.ModuleList(StagedGroupNorm(n) for n in mask_decoder.pixel_decoder.norms),
        )
        mask_decoder = _replacing(mask_decoder, pixel_decoder=pixel_decoder)
        self.detector = _replacing(detector, mask_decoder=mask_decoder)
        for i, pos in enumerate(position_encodings):
            self.register_buffer(f"pos_{i}", pos.detach().clone())

    def forward(
        self,
        detector_fpn_0: Tensor,
        detector_fpn_1: Tensor,
        detector_fpn_2: Tensor,
        text_features: Tensor,
        attention_mask: Tensor,
    ) -> tuple[Tensor, ...]:
        from sam3_core.outputs import Sam3VisionOutput

        phrases = text_features.shape[0]
        maps = [f.expand(phrases, -1, -1, -1) for f in (detector_fpn_0, detector_fpn_1, detector_fpn_2)]
        pos = [p.expand(phrases, -1, -1, -1) for p in (self.pos_0, self.pos_1, self.pos_2)]
        # the model reads levels 0-2 (`[:-1]` of its four): the fourth is never used
        vision = Sam3VisionOutput(fpn_hidden_states=[*maps, None], fpn_position_encoding=[*pos, None])
        out = self.detector(vision_embeds=vision, text_embeds=text_features, attention_mask=attention_mask)
        return out.pred_masks, out.pred_boxes, out.pred_logits, out.presence_logits, out.semantic_seg
