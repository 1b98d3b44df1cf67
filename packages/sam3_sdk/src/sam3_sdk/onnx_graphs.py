"""The modules that `onnx_export` traces: thin wrappers over our PyTorch models with plain tensor
inputs and outputs, one per ONNX graph. They add no maths of their own: each calls the same model
parts the SDK calls, so a graph's numbers are the model's.

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

import torch
from torch import Tensor, nn

__all__ = ["CLICK_INPUTS", "CLICK_OUTPUTS", "ClickDecoder"]

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
