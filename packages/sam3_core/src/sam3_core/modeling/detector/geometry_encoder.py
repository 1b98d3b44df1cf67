"""The geometry encoder: exemplar boxes -> prompt tokens."""

from __future__ import annotations

import torch
from torch import nn

from ...config import (
    Sam3DETREncoderConfig,
    Sam3GeometryEncoderConfig,
)
from ..layers import MLP, Attention, sine_features
from .boxes import box_cxcywh_to_xyxy
from .roi_align import roi_align
from .sequences import concat_right_padded, key_padding_mask


class Sam3GeometryEncoderLayer(nn.Module):
    """Pre-norm layer: prompt self-attention, cross-attention to the image, MLP."""

    def __init__(self, config: Sam3GeometryEncoderConfig | Sam3DETREncoderConfig):
        super().__init__()
        hidden = config.hidden_size
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.self_attn = Attention(hidden, config.num_attention_heads)
        self.cross_attn = Attention(hidden, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.mlp = MLP([hidden, config.intermediate_size, hidden], config.hidden_act, names="fc")
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
            (sine_features(cy, half), sine_features(cx, half), bh[..., None], bw[..., None]), dim=-1
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
        tokens, mask = concat_right_padded(tokens, box_mask, cls, cls_mask)
        tokens = self.prompt_layer_norm(self.final_proj(tokens))

        image_flat = image.flatten(2).transpose(1, 2)  # (B, HW, C)
        pos_flat = image_pos.flatten(2).transpose(1, 2)
        attn_mask = key_padding_mask(mask)
        for layer in self.layers:
            tokens = layer(tokens, image_flat, pos_flat, attn_mask)
        return self.output_layer_norm(tokens), mask
