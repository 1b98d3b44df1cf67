"""The trackers' mask decoder: a two-way transformer between the prompt tokens (plus learnt output
tokens) and the image embedding, then the image side upsampled with the high-resolution FPN
features, masks from per-token hypernetworks, an IoU estimate per mask and an "is there an
object" logit.

Nothing here is specific to still images: the caller passes the image embeddings (plain or
memory-conditioned), so the image and video trackers share it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Sam3TrackerMaskDecoderConfig
from .layers import MLP, ConvTranspose2x2, LayerNorm2d
from .two_way_transformer import TwoWayTransformer


class MaskDecoderOutput(NamedTuple):
    """What the mask decoder returns (a tuple: unpacks as masks, iou, tokens, object logits)."""

    masks: Tensor  # (B, P, M, 4h, 4w) mask logits; M = num_multimask_outputs or 1
    iou_scores: Tensor  # (B, P, M) predicted IoU of each mask
    mask_tokens: Tensor  # (B, P, M, C) decoder output tokens of the returned masks (object pointers)
    object_score_logits: Tensor  # (B, P, 1) logit that the object is present


class MaskDecoder(nn.Module):
    """Two-way transformer mask decoder with multimask output, IoU head and object-score head."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.hidden_size = hidden
        self.num_multimask_outputs = config.num_multimask_outputs
        self.num_mask_tokens = config.num_multimask_outputs + 1  # token 0: the single-mask output

        self.iou_token = nn.Embedding(1, hidden)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, hidden)
        self.obj_score_token = nn.Embedding(1, hidden)
        self.transformer = TwoWayTransformer(config)

        self.upscale_conv1 = ConvTranspose2x2(hidden, hidden // 4)
        self.upscale_conv2 = ConvTranspose2x2(hidden // 4, hidden // 8)
        self.upscale_layer_norm = LayerNorm2d(hidden // 4, eps=1e-6)
        # 1x1 projections of the two high-resolution FPN levels; the models apply them once per
        # image (in get_image_features) rather than on every click.
        self.conv_s0 = nn.Conv2d(hidden, hidden // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(hidden, hidden // 4, kernel_size=1)

        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP([hidden, hidden, hidden, hidden // 8], names="sam") for _ in range(self.num_mask_tokens)
        )
        iou_hidden = [config.iou_head_hidden_dim] * (config.iou_head_depth - 1)
        self.iou_prediction_head = MLP(
            [hidden, *iou_hidden, self.num_mask_tokens], sigmoid_output=True, names="sam"
        )
        self.pred_obj_score_head = MLP([hidden, hidden, hidden, 1], names="sam")

        self.dynamic_multimask_via_stability = config.dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = config.dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = config.dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: Tensor,
        image_positional_embeddings: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
        high_resolution_features: list[Tensor] | tuple[Tensor, Tensor],
        attention_similarity: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> MaskDecoderOutput:
        """Predict masks for P prompts on each of B images.

        Args:
            image_embeddings: (B, C, h, w) lowest-resolution image features.
            image_positional_embeddings: (B or 1, C, h, w) their positional encoding.
            sparse_prompt_embeddings: (B, P, T, C) prompt tokens.
            dense_prompt_embeddings: (B, C, h, w) or (B*P, C, h, w) dense prompt.
            multimask_output: return the 3 multimask outputs, else one mask (the single-mask token,
                or, when it is unstable and `dynamic_multimask_via_stability`, the best multimask).
            high_resolution_features: [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)] already projected by
                `conv_s0` / `conv_s1`.
            attention_similarity: optional additive bias of the token->image attention (PerSAM).
            target_embedding: optional (.., C) embedding added to the tokens (PerSAM).
        """
        batch_size, channels, height, width = image_embeddings.shape
        points_per_image = sparse_prompt_embeddings.shape[1]
        dtype = self.iou_token.weight.dtype
        output_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight]
        )
        output_tokens = output_tokens.expand(batch_size, points_per_image, -1, -1)
        tokens = torch.cat([output_tokens, sparse_prompt_embeddings.to(dtype)], dim=2)  # (B, P, T', C)

        # Image-side data is per image; one copy per prompt (none when there is one prompt). The
        # positional encoding is the same for every prompt and broadcasts instead (saves a copy of
        # the (h*w, C) map per prompt).
        if dense_prompt_embeddings.shape[0] == batch_size:
            image = _per_prompt(image_embeddings + dense_prompt_embeddings, points_per_image)
        else:
            image = _per_prompt(image_embeddings, points_per_image) + dense_prompt_embeddings
        image_pe = image_positional_embeddings
        if image_pe.shape[0] != 1:
            image_pe = _per_prompt(image_pe.expand(batch_size, -1, -1, -1), points_per_image)

        tokens, keys = self.transformer(tokens, image, image_pe, attention_similarity, target_embedding)
        iou_token_out = tokens[:, :, 1]
        mask_tokens_out = tokens[:, :, 2 : 2 + self.num_mask_tokens]  # (B, P, 4, C)

        # Upscale the image side 4x, adding the high-resolution features on the way.
        image = keys.transpose(2, 3).reshape(batch_size * points_per_image, channels, height, width)
        feat_s0, feat_s1 = (_per_prompt(f, points_per_image) for f in high_resolution_features)
        upscaled = F.gelu(self.upscale_layer_norm(self.upscale_conv1(image, residual=feat_s1)))
        upscaled = F.gelu(self.upscale_conv2(upscaled, residual=feat_s0))  # (B*P, C/8, 4h, 4w)

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, :, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=2
        )  # (B, P, 4, C/8)
        up_h, up_w = upscaled.shape[-2:]
        upscaled = upscaled.reshape(batch_size, points_per_image, -1, up_h * up_w)
        masks = (hyper_in @ upscaled).reshape(batch_size, points_per_image, -1, up_h, up_w)

        iou_pred = self.iou_prediction_head(iou_token_out)  # (B, P, 4)
        object_score_logits = self.pred_obj_score_head(tokens[:, :, 0])  # (B, P, 1)

        if multimask_output:
            return MaskDecoderOutput(
                masks[:, :, 1:], iou_pred[:, :, 1:], mask_tokens_out[:, :, 1:], object_score_logits
            )
        if self.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self._dynamic_single_mask(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, :, :1], iou_pred[:, :, :1]
        return MaskDecoderOutput(masks, iou_pred, mask_tokens_out[:, :, :1], object_score_logits)

    def stability_scores(self, mask_logits: Tensor) -> Tensor:
        """IoU of the masks thresholded at +delta and -delta: (..., H, W) -> (...)."""
        flat = mask_logits.flatten(-2)
        delta = self.dynamic_multimask_stability_delta
        inter = (flat > delta).sum(-1).float()
        union = (flat > -delta).sum(-1).float()
        return torch.where(union > 0, inter / union, torch.ones_like(inter))

    def _dynamic_single_mask(self, masks: Tensor, iou_pred: Tensor) -> tuple[Tensor, Tensor]:
        """Keep the single-mask output where it is stable, else the multimask output of best IoU.

        masks (B, P, 4, H, W), iou_pred (B, P, 4) -> (B, P, 1, H, W), (B, P, 1).
        """
        best = iou_pred[:, :, 1:].argmax(dim=-1, keepdim=True) + 1  # (B, P, 1), index into all 4
        best_masks = torch.take_along_dim(masks, best[..., None, None], dim=2)
        best_iou = torch.take_along_dim(iou_pred, best, dim=2)
        single_masks, single_iou = masks[:, :, :1], iou_pred[:, :, :1]
        stable = self.stability_scores(single_masks) >= self.dynamic_multimask_stability_thresh  # (B, P, 1)
        return (
            torch.where(stable[..., None, None], single_masks, best_masks),
            torch.where(stable, single_iou, best_iou),
        )


def _per_prompt(x: Tensor, points_per_image: int) -> Tensor:
    """(B, ...) -> (B*P, ...), each image repeated for its P prompts; no copy when P is 1."""
    return x if points_per_image == 1 else x.repeat_interleave(points_per_image, dim=0)
