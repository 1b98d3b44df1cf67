"""The DETR decoder: object queries plus a presence token, refined layer by layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...config import (
    Sam3DETRDecoderConfig,
)
from ..layers import MLP, Attention, sine_features
from .boxes import box_cxcywh_to_xyxy, inverse_sigmoid
from .sequences import key_padding_mask


class Sam3DetrDecoderLayer(nn.Module):
    """Post-norm layer: query self-attention, prompt cross-attention, image cross-attention, MLP."""

    def __init__(self, config: Sam3DETRDecoderConfig):
        super().__init__()
        hidden, heads = config.hidden_size, config.num_attention_heads
        self.self_attn = Attention(hidden, heads)
        self.self_attn_layer_norm = nn.LayerNorm(hidden)
        self.text_cross_attn = Attention(hidden, heads)
        self.text_cross_attn_layer_norm = nn.LayerNorm(hidden)
        self.vision_cross_attn = Attention(hidden, heads)
        self.vision_cross_attn_layer_norm = nn.LayerNorm(hidden)
        self.mlp = MLP([hidden, config.intermediate_size, hidden], config.hidden_act, names="fc")
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
        self.box_head = MLP([hidden, hidden, hidden, 4], names="layer")
        self.query_embed = nn.Embedding(config.num_queries, hidden)
        self.reference_points = nn.Embedding(config.num_queries, 4)
        self.presence_token = nn.Embedding(1, hidden)
        self.presence_head = MLP([hidden, hidden, hidden, 1], names="layer")
        self.presence_layer_norm = nn.LayerNorm(hidden)
        self.ref_point_head = MLP([2 * hidden, hidden, hidden], names="layer")
        self.box_rpb_embed_x = MLP([2, hidden, config.num_attention_heads], names="layer")
        self.box_rpb_embed_y = MLP([2, hidden, config.num_attention_heads], names="layer")

    def _box_position(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, Q, 4) cxcywh in [0, 1] → (B, Q, C) query positions."""
        half = self.hidden_size // 2
        cx, cy, w, h = boxes.unbind(-1)
        sine = torch.cat([sine_features(v, half) for v in (cy, cx, w, h)], dim=-1)  # (B, Q, 2C)
        return self.ref_point_head(sine)

    def _box_attention_bias(self, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, Q, 4) cxcywh → additive attention bias (B, heads, 1 + Q, H*W) from box-relative
        positions, with a zero first row for the presence token (it attends without a box bias)."""
        b, q, _ = boxes.shape
        xyxy = box_cxcywh_to_xyxy(boxes)
        rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype) / height
        cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype) / width
        dy = rows.view(1, 1, -1, 1) - xyxy[..., None, 1::2]  # (B, Q, H, 2): to top and bottom edges
        dx = cols.view(1, 1, -1, 1) - xyxy[..., None, 0::2]  # (B, Q, W, 2): to left and right edges

        def log_scale(d: torch.Tensor) -> torch.Tensor:
            d = d * 8
            return torch.sign(d) * torch.log2(torch.abs(d) + 1.0) / math.log2(8)

        by = self.box_rpb_embed_y(log_scale(dy)).permute(0, 3, 1, 2)  # (B, heads, Q, H)
        bx = self.box_rpb_embed_x(log_scale(dx)).permute(0, 3, 1, 2)  # (B, heads, Q, W)
        # The (B, heads, 1 + Q, H*W) bias is written in place in SDPA's layout (tens of MB per layer
        # at 1008 px; building it permuted, then padding it, took twice the passes)
        bias = by.new_empty(b, by.shape[1], 1 + q, height * width)
        bias[:, :, 0] = 0
        boxes_part = bias[:, :, 1:].view(b, -1, q, height, width)
        boxes_part.copy_(by[..., None].expand_as(boxes_part)).add_(bx[..., None, :])  # (autograd-safe)
        return bias

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        spatial_shape: tuple[int, int],
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            image, image_pos: (B, H*W, C) encoded image tokens and their positions.
            spatial_shape: (H, W) of the image tokens.
            prompt: (B, L, C) prompt tokens; prompt_mask (B, L) True = valid.

        Returns:
            queries (B, Q, C) after the last layer (output-normalised), boxes (B, Q, 4) cxcywh in
            [0, 1] after the last refinement, presence logits (B, 1), and the reference boxes each
            layer started from (num_layers, B, Q, 4) cxcywh in [0, 1].
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
        text_mask = key_padding_mask(prompt_mask)
        queries = presence = None
        layer_boxes = []
        for layer in self.layers:
            layer_boxes.append(boxes)
            query_pos = self._box_position(boxes)
            bias = self._box_attention_bias(boxes, *spatial_shape)
            hidden = layer(hidden, query_pos, prompt, text_mask, image, image_pos, bias)
            queries = self.output_layer_norm(hidden[:, 1:])
            boxes = (self.box_head(queries) + inverse_sigmoid(boxes)).sigmoid()
            presence = self.presence_head(self.presence_layer_norm(hidden[:, :1])).squeeze(-1)
        presence = presence.clamp(-self.presence_clamp, self.presence_clamp)
        return queries, boxes, presence, torch.stack(layer_boxes)
