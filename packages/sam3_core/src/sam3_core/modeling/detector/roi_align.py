"""ROI align (torchvision.ops.roi_align semantics, aligned=False, adaptive sampling ratio)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    # at least fp32 (bf16 would misplace the samples); float64 stays float64, as the reference's
    compute = torch.promote_types(features.dtype, torch.float32)
    flat = boxes.reshape(b * n, 4).to(compute)
    x1, y1, x2, y2 = flat.unbind(-1)
    wy = _roi_axis_weights(y1, (y2 - y1).clamp(min=1.0), h, output_size).view(b, n, output_size, h)
    wx = _roi_axis_weights(x1, (x2 - x1).clamp(min=1.0), w, output_size).view(b, n, output_size, w)
    rows = torch.einsum("bnph,bchw->bncpw", wy, features.to(compute))  # pool rows first: (B, N, C, P, W)
    out = torch.einsum("bncpw,bnqw->bncpq", rows, wx)
    return out.reshape(b * n, c, output_size, output_size).to(features.dtype)
