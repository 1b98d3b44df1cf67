"""The SAM 3 concept detector (`Sam3Model`): text and exemplar-box prompts → instance masks.

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

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import PreTrainedModel
from .config import (
    Sam3Config,
    Sam3DETRDecoderConfig,
    Sam3DETREncoderConfig,
    Sam3GeometryEncoderConfig,
    Sam3MaskDecoderConfig,
)
from .layers import FeedForward, sdpa
from .outputs import Sam3ImageSegmentationOutput, Sam3TextOutput, Sam3VisionOutput
from .text import CLIPTextModelWithProjection
from .vision import Sam3VisionModel

__all__ = ["Sam3Model", "roi_align", "box_cxcywh_to_xyxy", "BOX_PAD_LABEL"]

BOX_PAD_LABEL = -10  # label of padded (absent) boxes in `input_boxes_labels`


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """logit(x) with x clamped to [0, 1] and both x and 1 - x floored at `eps`."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) boxes (cx, cy, w, h) → (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def _sine_features(coords: torch.Tensor, num_features: int, scale: float = 2 * math.pi) -> torch.Tensor:
    """(...,) coordinates in [0, 1] → (..., num_features) interleaved sin/cos DETR features."""
    dim_t = torch.arange(num_features, dtype=torch.int64, device=coords.device).to(coords.dtype)
    dim_t = 10000.0 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_features)
    pos = coords[..., None] * scale / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


def _concat_right_padded(
    seq1: torch.Tensor, mask1: torch.Tensor, seq2: torch.Tensor, mask2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Join two right-padded sequences so the valid items of `seq2` directly follow those of `seq1`.

    seq1 (B, L1, C), mask1 (B, L1) True = valid; seq2 (B, L2, C), mask2 (B, L2).
    Returns (B, L1 + L2, C) and its (B, L1 + L2) validity mask (still right-padded).
    """
    b, l1, c = seq1.shape
    l2 = seq2.shape[1]
    len1 = mask1.sum(-1)  # (B,)
    total = len1 + mask2.sum(-1)
    mask = torch.arange(l1 + l2, device=seq2.device)[None] < total[:, None]
    out = torch.zeros(b, l1 + l2, c, device=seq2.device, dtype=seq2.dtype)
    out[:, :l1] = seq1
    index = torch.arange(l2, device=seq2.device)[None] + len1[:, None]  # (B, L2)
    return out.scatter(1, index[..., None].expand(-1, -1, c), seq2), mask


def _key_padding_mask(valid: torch.Tensor | None) -> torch.Tensor | None:
    """(B, Lk) True = valid → boolean SDPA mask (B, 1, 1, Lk)."""
    return None if valid is None else valid.bool()[:, None, None, :]


# ---------------------------------------------------------------------------------------------
# ROI align (torchvision.ops.roi_align semantics, aligned=False, adaptive sampling ratio)
# ---------------------------------------------------------------------------------------------


def _roi_axis_weights(start: torch.Tensor, length: torch.Tensor, size: int, bins: int) -> torch.Tensor:
    """Interpolation weights (N, bins, size) that average the samples of each bin along one axis.

    Each bin of a box spanning [start, start + length] is sampled at ceil(length / bins) evenly
    spaced points; a sample outside [-1, size] contributes zero; samples are linearly interpolated
    between the two nearest grid cells (clamped at the border) and averaged.
    """
    grid = torch.ceil(length / bins).clamp(min=1)  # (N,) samples per bin
    max_grid = int(grid.max().item()) if grid.numel() else 1
    bin_size = length / bins
    steps = torch.arange(max_grid, device=start.device, dtype=start.dtype)  # (G,)
    bins_idx = torch.arange(bins, device=start.device, dtype=start.dtype)  # (P,)
    pos = (
        start[:, None, None]
        + bins_idx[None, :, None] * bin_size[:, None, None]
        + (steps[None, None, :] + 0.5) * (bin_size / grid)[:, None, None]
    )  # (N, P, G)
    used = (steps[None, None, :] < grid[:, None, None]) & (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(pos), pos - low.to(pos.dtype))
    weight = used.to(pos.dtype) / grid[:, None, None]
    out = F.one_hot(low, size).to(pos.dtype) * ((1 - frac) * weight)[..., None]
    out = out + F.one_hot(high, size).to(pos.dtype) * (frac * weight)[..., None]
    return out.sum(2)  # (N, P, size)


def roi_align(features: torch.Tensor, boxes: torch.Tensor, output_size: int) -> torch.Tensor:
    """Average-pool each box into an `output_size` square grid of bilinear samples.

    Matches `torchvision.ops.roi_align(features, list(boxes), output_size)` (spatial_scale 1,
    sampling_ratio -1 i.e. ceil(box side / output_size) samples per bin and axis, aligned=False
    i.e. boxes narrower than one cell are widened to one cell). Bilinear sampling is separable and
    so is the per-bin average, so the pooling is two small interpolation matrices per box.

    Args:
        features: (B, C, H, W) feature maps.
        boxes: (B, N, 4) boxes (x1, y1, x2, y2) in feature-map cells.

    Returns:
        (B * N, C, output_size, output_size), boxes of image 0 first.
    """
    b, c, h, w = features.shape
    n = boxes.shape[1]
    flat = boxes.reshape(b * n, 4).float()
    x1, y1, x2, y2 = flat.unbind(-1)
    wy = _roi_axis_weights(y1, (y2 - y1).clamp(min=1.0), h, output_size).view(b, n, output_size, h)
    wx = _roi_axis_weights(x1, (x2 - x1).clamp(min=1.0), w, output_size).view(b, n, output_size, w)
    rows = torch.einsum("bnph,bchw->bncpw", wy, features.float())  # pool rows first: (B, N, C, P, W)
    out = torch.einsum("bncpw,bnqw->bncpq", rows, wx)
    return out.reshape(b * n, c, output_size, output_size).to(features.dtype)


# ---------------------------------------------------------------------------------------------
# Attention and MLPs with the reference's parameter names
# ---------------------------------------------------------------------------------------------


class Sam3Attention(nn.Module):
    """Multi-head attention (SDPA) with separate query/key/value inputs: q_proj, k_proj, v_proj, o_proj."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """query (B, Lq, C), key/value (B, Lk, C); mask bool (True = attend) or additive, → (B, Lq, C)."""
        b, lq, c = query.shape
        lk = key.shape[1]
        hd = c // self.num_heads
        q = self.q_proj(query).view(b, lq, self.num_heads, hd).transpose(1, 2)
        k = self.k_proj(key).view(b, lk, self.num_heads, hd).transpose(1, 2)
        v = self.v_proj(value).view(b, lk, self.num_heads, hd).transpose(1, 2)
        out = sdpa(q, k, v, mask).transpose(1, 2).reshape(b, lq, c)
        return self.o_proj(out)


class Sam3DecoderMLP(nn.Module):
    """2- or 3-layer ReLU MLP with parameters `layer1`, `layer2`[, `layer3`]."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int = 2):
        super().__init__()
        if num_layers not in (2, 3):
            raise ValueError(f"Sam3DecoderMLP supports 2 or 3 layers, got {num_layers}")
        self.layer1 = nn.Linear(input_dim, hidden_dim)
        if num_layers == 2:
            self.layer2 = nn.Linear(hidden_dim, output_dim)
            self.layer3 = None
        else:
            self.layer2 = nn.Linear(hidden_dim, hidden_dim)
            self.layer3 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.layer1(x))
        if self.layer3 is None:
            return self.layer2(x)
        return self.layer3(F.relu(self.layer2(x)))


# ---------------------------------------------------------------------------------------------
# Geometry (exemplar box) encoder
# ---------------------------------------------------------------------------------------------


class Sam3GeometryEncoderLayer(nn.Module):
    """Pre-norm layer: prompt self-attention, cross-attention to the image, MLP."""

    def __init__(self, config: Sam3GeometryEncoderConfig | Sam3DETREncoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.self_attn = Sam3Attention(hidden, config.num_attention_heads)
        self.cross_attn = Sam3Attention(hidden, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.mlp = FeedForward(hidden, config.intermediate_size, config.hidden_act)
        self.layer_norm3 = nn.LayerNorm(hidden)

    def forward(
        self,
        prompt: torch.Tensor,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.layer_norm1(prompt)
        prompt = prompt + self.self_attn(x, x, x, prompt_mask)
        x = self.layer_norm2(prompt)
        prompt = prompt + self.cross_attn(x, image + image_pos, image)
        return prompt + self.mlp(self.layer_norm3(prompt))


class Sam3GeometryEncoder(nn.Module):
    """Exemplar boxes → prompt tokens.

    Each box token is the sum of a linear projection of its (cx, cy, w, h), the ROI-aligned image
    features inside it (projected by a roi_size convolution), a projection of its sine-encoded
    centre plus raw size, and a positive/negative label embedding. A CLS token is appended after
    the valid boxes, then transformer layers let the tokens attend to each other and to the image.
    """

    def __init__(self, config: Sam3GeometryEncoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.hidden_size = hidden
        self.roi_size = config.roi_size
        self.label_embed = nn.Embedding(2, hidden)
        self.cls_embed = nn.Embedding(1, hidden)
        self.boxes_direct_project = nn.Linear(4, hidden)
        self.boxes_pool_project = nn.Conv2d(hidden, hidden, self.roi_size)
        self.boxes_pos_enc_project = nn.Linear(hidden + 2, hidden)
        self.vision_layer_norm = nn.LayerNorm(hidden)
        self.final_proj = nn.Linear(hidden, hidden)
        self.prompt_layer_norm = nn.LayerNorm(hidden)
        self.layers = nn.ModuleList(Sam3GeometryEncoderLayer(config) for _ in range(config.num_layers))
        self.output_layer_norm = nn.LayerNorm(hidden)

    def _embed_boxes(self, boxes: torch.Tensor, labels: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """boxes (B, N, 4) normalised cxcywh, labels (B, N) in {0, 1}, image (B, C, H, W) → (B, N, C)."""
        b, n = boxes.shape[:2]
        h, w = image.shape[-2:]
        embed = self.boxes_direct_project(boxes)

        scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        pooled = roi_align(image, box_cxcywh_to_xyxy(boxes) * scale, self.roi_size)  # (BN, C, r, r)
        embed = embed + self.boxes_pool_project(pooled).view(b, n, self.hidden_size)

        cx, cy, bw, bh = boxes.unbind(-1)
        half = self.hidden_size // 2
        pos = torch.cat(
            (_sine_features(cy, half), _sine_features(cx, half), bh[..., None], bw[..., None]), dim=-1
        )  # (B, N, C + 2)
        embed = embed + self.boxes_pos_enc_project(pos)
        return embed + self.label_embed(labels.long())

    def forward(
        self,
        boxes: torch.Tensor,
        box_mask: torch.Tensor,
        box_labels: torch.Tensor,
        image: torch.Tensor,
        image_pos: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            boxes: (B, N, 4) normalised (cx, cy, w, h).
            box_mask: (B, N) True for real boxes, False for padding.
            box_labels: (B, N) 1 positive, 0 negative.
            image: (B, C, H, W) the coarsest FPN level used by the detector.
            image_pos: (B, C, H, W) its position encoding.

        Returns:
            prompt tokens (B, N + 1, C) and their validity mask (B, N + 1).
        """
        b = boxes.shape[0]
        normed = self.vision_layer_norm(image.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        tokens = self._embed_boxes(boxes, box_labels, normed)
        cls = self.cls_embed.weight.view(1, 1, -1).expand(b, 1, -1)
        cls_mask = torch.ones(b, 1, dtype=box_mask.dtype, device=box_mask.device)
        tokens, mask = _concat_right_padded(tokens, box_mask, cls, cls_mask)
        tokens = self.prompt_layer_norm(self.final_proj(tokens))

        image_flat = image.flatten(2).transpose(1, 2)  # (B, HW, C)
        pos_flat = image_pos.flatten(2).transpose(1, 2)
        attn_mask = _key_padding_mask(mask)
        for layer in self.layers:
            tokens = layer(tokens, image_flat, pos_flat, attn_mask)
        return self.output_layer_norm(tokens), mask


# ---------------------------------------------------------------------------------------------
# DETR encoder
# ---------------------------------------------------------------------------------------------


class Sam3DetrEncoderLayer(nn.Module):
    """Pre-norm layer on image tokens: self-attention (with positions), cross-attention to the prompt, MLP."""

    def __init__(self, config: Sam3DETREncoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.self_attn = Sam3Attention(hidden, config.num_attention_heads)
        self.cross_attn = Sam3Attention(hidden, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.mlp = FeedForward(hidden, config.intermediate_size, config.hidden_act)
        self.layer_norm3 = nn.LayerNorm(hidden)

    def forward(
        self,
        image: torch.Tensor,
        prompt: torch.Tensor,
        image_pos: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.layer_norm1(image)
        with_pos = x + image_pos
        image = image + self.self_attn(with_pos, with_pos, x)
        x = self.layer_norm2(image)
        image = image + self.cross_attn(x, prompt, prompt, prompt_mask)
        return image + self.mlp(self.layer_norm3(image))


class Sam3DetrEncoder(nn.Module):
    """Fuses the image tokens of one FPN level with the prompt tokens."""

    def __init__(self, config: Sam3DETREncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(Sam3DetrEncoderLayer(config) for _ in range(config.num_layers))

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image, image_pos (B, C, H, W); prompt (B, L, C); prompt_mask (B, L) → tokens and positions (B, HW, C)."""
        tokens = image.flatten(2).transpose(1, 2)
        pos = image_pos.flatten(2).transpose(1, 2)
        attn_mask = _key_padding_mask(prompt_mask)
        for layer in self.layers:
            tokens = layer(tokens, prompt, pos, attn_mask)
        return tokens, pos


# ---------------------------------------------------------------------------------------------
# DETR decoder
# ---------------------------------------------------------------------------------------------


class Sam3DetrDecoderLayer(nn.Module):
    """Post-norm layer: query self-attention, prompt cross-attention, image cross-attention, MLP."""

    def __init__(self, config: Sam3DETRDecoderConfig):
        super().__init__()
        hidden, heads = config.hidden_size, config.num_attention_heads
        self.self_attn = Sam3Attention(hidden, heads)
        self.self_attn_layer_norm = nn.LayerNorm(hidden)
        self.text_cross_attn = Sam3Attention(hidden, heads)
        self.text_cross_attn_layer_norm = nn.LayerNorm(hidden)
        self.vision_cross_attn = Sam3Attention(hidden, heads)
        self.vision_cross_attn_layer_norm = nn.LayerNorm(hidden)
        self.mlp = FeedForward(hidden, config.intermediate_size, config.hidden_act)
        self.mlp_layer_norm = nn.LayerNorm(hidden)

    def forward(
        self,
        hidden: torch.Tensor,
        query_pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        image_bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """hidden (B, 1 + Q, C) with the presence token first; query_pos (B, Q, C)."""
        query_pos = F.pad(query_pos, (0, 0, 1, 0))  # the presence token has no position
        q = hidden + query_pos
        hidden = self.self_attn_layer_norm(hidden + self.self_attn(q, q, hidden))
        hidden = self.text_cross_attn_layer_norm(
            hidden + self.text_cross_attn(hidden + query_pos, prompt, prompt, prompt_mask)
        )
        hidden = self.vision_cross_attn_layer_norm(
            hidden + self.vision_cross_attn(hidden + query_pos, image + image_pos, image, image_bias)
        )
        return self.mlp_layer_norm(hidden + self.mlp(hidden))


class Sam3DetrDecoder(nn.Module):
    """Object queries plus a presence token, refined layer by layer.

    Each layer conditions the queries on their current reference boxes (sine-encoded box → MLP
    position) and biases image attention by each query's box (log-scaled distances of every image
    row/column to the box edges, embedded per head). After each layer the box head predicts a
    delta in logit space; the presence head scores whether the concept is in the image at all.
    """

    presence_clamp = 10.0

    def __init__(self, config: Sam3DETRDecoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.hidden_size = hidden
        self.num_heads = config.num_attention_heads
        self.layers = nn.ModuleList(Sam3DetrDecoderLayer(config) for _ in range(config.num_layers))
        self.output_layer_norm = nn.LayerNorm(hidden)
        self.box_head = Sam3DecoderMLP(hidden, hidden, 4, 3)
        self.query_embed = nn.Embedding(config.num_queries, hidden)
        self.reference_points = nn.Embedding(config.num_queries, 4)
        self.presence_token = nn.Embedding(1, hidden)
        self.presence_head = Sam3DecoderMLP(hidden, hidden, 1, 3)
        self.presence_layer_norm = nn.LayerNorm(hidden)
        self.ref_point_head = Sam3DecoderMLP(2 * hidden, hidden, hidden, 2)
        self.box_rpb_embed_x = Sam3DecoderMLP(2, hidden, config.num_attention_heads, 2)
        self.box_rpb_embed_y = Sam3DecoderMLP(2, hidden, config.num_attention_heads, 2)

    def _box_position(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, Q, 4) cxcywh in [0, 1] → (B, Q, C) query positions."""
        half = self.hidden_size // 2
        cx, cy, w, h = boxes.unbind(-1)
        sine = torch.cat([_sine_features(v, half) for v in (cy, cx, w, h)], dim=-1)  # (B, Q, 2C)
        return self.ref_point_head(sine)

    def _box_attention_bias(self, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, Q, 4) cxcywh → additive attention bias (B, heads, Q, H*W) from box-relative positions."""
        b, q, _ = boxes.shape
        xyxy = box_cxcywh_to_xyxy(boxes)
        rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype) / height
        cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype) / width
        dy = rows.view(1, 1, -1, 1) - xyxy[..., None, 1::2]  # (B, Q, H, 2): to top and bottom edges
        dx = cols.view(1, 1, -1, 1) - xyxy[..., None, 0::2]  # (B, Q, W, 2): to left and right edges

        def log_scale(d: torch.Tensor) -> torch.Tensor:
            d = d * 8
            return torch.sign(d) * torch.log2(torch.abs(d) + 1.0) / math.log2(8)

        by = self.box_rpb_embed_y(log_scale(dy))  # (B, Q, H, heads)
        bx = self.box_rpb_embed_x(log_scale(dx))  # (B, Q, W, heads)
        bias = (by[:, :, :, None] + bx[:, :, None]).flatten(2, 3)  # (B, Q, HW, heads)
        return bias.permute(0, 3, 1, 2)

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        spatial_shape: tuple[int, int],
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            image, image_pos: (B, H*W, C) encoded image tokens and their positions.
            spatial_shape: (H, W) of the image tokens.
            prompt: (B, L, C) prompt tokens; prompt_mask (B, L) True = valid.

        Returns:
            queries (B, Q, C) after the last layer (output-normalised), boxes (B, Q, 4) cxcywh in
            [0, 1] after the last refinement, presence logits (B, 1).
        """
        b = image.shape[0]
        boxes = self.reference_points.weight.unsqueeze(0).expand(b, -1, -1).sigmoid()
        hidden = torch.cat(
            [
                self.presence_token.weight.unsqueeze(0).expand(b, -1, -1),
                self.query_embed.weight.unsqueeze(0).expand(b, -1, -1),
            ],
            dim=1,
        )  # (B, 1 + Q, C)
        text_mask = _key_padding_mask(prompt_mask)
        queries = presence = None
        for layer in self.layers:
            query_pos = self._box_position(boxes)
            bias = self._box_attention_bias(boxes, *spatial_shape)
            bias = F.pad(bias, (0, 0, 1, 0))  # the presence token attends without a box bias
            hidden = layer(hidden, query_pos, prompt, text_mask, image, image_pos, bias)
            queries = self.output_layer_norm(hidden[:, 1:])
            boxes = (self.box_head(queries) + inverse_sigmoid(boxes)).sigmoid()
            presence = self.presence_head(self.presence_layer_norm(hidden[:, :1])).squeeze(-1)
        presence = presence.clamp(-self.presence_clamp, self.presence_clamp)
        return queries, boxes, presence


class Sam3DotProductScoring(nn.Module):
    """Query logits: projected queries · projected mean-pooled prompt tokens, scaled and clamped."""

    logit_clamp = 12.0

    def __init__(self, config: Sam3Config):
        super().__init__()
        hidden = config.detr_decoder_config.hidden_size
        self.text_mlp = Sam3DecoderMLP(hidden, config.detr_decoder_config.intermediate_size, hidden, 2)
        self.text_mlp_out_norm = nn.LayerNorm(hidden)
        self.text_proj = nn.Linear(hidden, hidden)
        self.query_proj = nn.Linear(hidden, hidden)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(
        self, queries: torch.Tensor, prompt: torch.Tensor, prompt_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """queries (B, Q, C), prompt (B, L, C), prompt_mask (B, L) → logits (B, Q)."""
        prompt = self.text_mlp_out_norm(self.text_mlp(prompt) + prompt)
        if prompt_mask is None:
            pooled = prompt.mean(1)
        else:
            valid = prompt_mask.to(prompt.dtype)[..., None]
            pooled = (prompt * valid).sum(1) / valid.sum(1).clamp(min=1.0)  # (B, C)
        text = self.text_proj(pooled)
        logits = (self.query_proj(queries) @ text[..., None]).squeeze(-1) * self.scale
        return logits.clamp(-self.logit_clamp, self.logit_clamp)


# ---------------------------------------------------------------------------------------------
# Mask head
# ---------------------------------------------------------------------------------------------


class Sam3MaskEmbedder(nn.Module):
    """3-layer ReLU MLP turning queries into mask embeddings (parameters `layers.0..2`)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Sam3PixelDecoder(nn.Module):
    """Top-down FPN: upsample (nearest), add the finer level, conv 3x3 → GroupNorm(8) → ReLU."""

    def __init__(self, config: Sam3MaskDecoderConfig):
        super().__init__()
        hidden = config.hidden_size
        stages = config.num_upsampling_stages
        self.conv_layers = nn.ModuleList(nn.Conv2d(hidden, hidden, 3, padding=1) for _ in range(stages))
        self.norms = nn.ModuleList(nn.GroupNorm(8, hidden) for _ in range(stages))

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """levels: (B, C, H_i, W_i) finest first → (B, C, H_0, W_0)."""
        x = levels[-1]
        for i, finer in enumerate(reversed(levels[:-1])):
            x = F.interpolate(x, size=finer.shape[-2:], mode="nearest") + finer
            x = F.relu(self.norms[i](self.conv_layers[i](x)))
        return x


class Sam3MaskDecoder(nn.Module):
    """Instance masks (mask embedding · pixel embedding) and a one-channel semantic map.

    The encoded image tokens first cross-attend the prompt once more, then replace the coarsest
    FPN level fed to the pixel decoder.
    """

    def __init__(self, config: Sam3MaskDecoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.pixel_decoder = Sam3PixelDecoder(config)
        self.mask_embedder = Sam3MaskEmbedder(hidden)
        self.instance_projection = nn.Conv2d(hidden, hidden, 1)
        self.semantic_projection = nn.Conv2d(hidden, 1, 1)
        self.prompt_cross_attn = Sam3Attention(hidden, config.num_attention_heads)
        self.prompt_cross_attn_norm = nn.LayerNorm(hidden)

    def forward(
        self,
        queries: torch.Tensor,
        fpn_levels: list[torch.Tensor],
        encoded_image: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            queries: (B, Q, C) decoder queries.
            fpn_levels: FPN maps (B, C, H_i, W_i) finest first; the last has the encoder's resolution.
            encoded_image: (B, H*W, C) DETR encoder output.
            prompt, prompt_mask: (B, L, C) and (B, L).

        Returns:
            instance mask logits (B, Q, H_0, W_0) and semantic logits (B, 1, H_0, W_0).
        """
        x = self.prompt_cross_attn_norm(encoded_image)
        encoded_image = encoded_image + self.prompt_cross_attn(
            x, prompt, prompt, _key_padding_mask(prompt_mask)
        )
        b, _, c = encoded_image.shape
        h, w = fpn_levels[-1].shape[-2:]
        levels = list(fpn_levels[:-1]) + [encoded_image[:, : h * w].transpose(1, 2).reshape(b, c, h, w)]
        pixels = self.pixel_decoder(levels)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embedder(queries), self.instance_projection(pixels))
        return masks, self.semantic_projection(pixels)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class Sam3Model(PreTrainedModel):
    """SAM 3 promptable concept segmentation on images.

    Prompts are a noun phrase (`input_ids`/`attention_mask` or precomputed `text_embeds`) and/or
    exemplar boxes (`input_boxes`, `input_boxes_labels`); the output has, per image, `num_queries`
    candidate instances with mask logits, boxes (xyxy, normalised) and logits, plus a presence logit
    and a semantic segmentation map.
    """

    config_class = Sam3Config
    config_key = "detector_config"

    def __init__(self, config: Sam3Config):
        super().__init__()
        if getattr(config, "detector_config", None) is not None:  # a combined sam3_video config
            config = config.detector_config
        self.config = config
        self.vision_encoder = Sam3VisionModel(config.vision_config)
        self.text_encoder = CLIPTextModelWithProjection(config.text_config)
        self.text_projection = nn.Linear(
            config.text_config.hidden_size, config.detr_encoder_config.hidden_size
        )
        self.geometry_encoder = Sam3GeometryEncoder(config.geometry_encoder_config)
        self.detr_encoder = Sam3DetrEncoder(config.detr_encoder_config)
        self.detr_decoder = Sam3DetrDecoder(config.detr_decoder_config)
        self.mask_decoder = Sam3MaskDecoder(config.mask_decoder_config)
        self.dot_product_scoring = Sam3DotProductScoring(config)

    @classmethod
    def map_checkpoint_key(cls, key: str) -> str | None:
        """Combined hub layout: `detector_model.X` → `X`; tracker tensors are not this model's."""
        if key.startswith(("tracker_model.", "tracker_neck.")):
            return None
        if key.startswith("detector_model."):
            return key[len("detector_model.") :]
        return key  # a single-model (Sam3Model) checkpoint

    # -- features -------------------------------------------------------------------------------

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **unused: Any
    ) -> Sam3TextOutput:
        """Encode phrases once to reuse them with several images.

        Args:
            input_ids: (B, L) token ids; attention_mask: (B, L), 1 for tokens, 0 for padding.

        Returns:
            `Sam3TextOutput` with `last_hidden_state` (B, L, text hidden) and `pooler_output`
            (B, L, detector hidden): the per-token prompt features `forward(text_embeds=...)` takes.
        """
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        hidden = self.text_encoder(input_ids, attention_mask)
        return Sam3TextOutput(last_hidden_state=hidden, pooler_output=self.text_projection(hidden))

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
            semantic_seg (B, 1, h, w).
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
        queries, boxes, presence = self.detr_decoder(
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
        )
