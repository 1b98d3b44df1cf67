"""Boxes of binary masks, in the one convention the project uses for them."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["masks_to_boxes"]


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight boxes around (..., H, W) bool masks → (..., 4) float32 xyxy.

    Coordinates are pixel edges, exclusive at the far side: x1 is the first mask column and
    x2 = last mask column + 1 (likewise y), so a one-pixel mask at (x, y) is (x, y, x + 1, y + 1)
    with width 1, as COCO's `bbox` counts it. Empty masks give (0, 0, 0, 0).
    """
    h, w = masks.shape[-2:]
    if masks.numel() == 0:
        return torch.zeros((*masks.shape[:-2], 4), dtype=torch.float32, device=masks.device)
    masks = masks.bool()
    rows, cols = masks.any(dim=-1), masks.any(dim=-2)  # (..., H), (..., W)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ys, h).amin(-1)
    y2 = torch.where(rows, ys + 1, 0).amax(-1)
    x1 = torch.where(cols, xs, w).amin(-1)
    x2 = torch.where(cols, xs + 1, 0).amax(-1)
    boxes = torch.stack([x1, y1, x2, y2], dim=-1).float()  # (..., 4)
    return torch.where(rows.any(-1, keepdim=True), boxes, torch.zeros_like(boxes))
