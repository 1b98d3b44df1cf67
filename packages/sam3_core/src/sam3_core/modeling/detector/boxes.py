"""Box helpers of the concept detector: (cx, cy, w, h) <-> corners, logit space, sine features."""

from __future__ import annotations

import math

import torch


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """logit(x) with x clamped to [0, 1] and both x and 1 - x floored at `eps`."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) boxes (cx, cy, w, h) → (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def sine_features(coords: torch.Tensor, num_features: int, scale: float = 2 * math.pi) -> torch.Tensor:
    """(...,) coordinates in [0, 1] → (..., num_features) interleaved sin/cos DETR features."""
    dim_t = torch.arange(num_features, dtype=torch.int64, device=coords.device).to(coords.dtype)
    dim_t = 10000.0 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_features)
    pos = coords[..., None] * scale / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)
