"""How a video session stores its frames: uint8 when they are exactly a normalised uint8 image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..processing.image import SAM_MEAN, SAM_STD, normalize_images

__all__ = ["FrameNormalization", "SAM_FRAME_NORMALIZATION", "as_frame_storage"]

# (mean, std, rescale_factor) of the frames' normalisation (the video processor's settings)
FrameNormalization = tuple[Sequence[float], Sequence[float], float]
SAM_FRAME_NORMALIZATION: FrameNormalization = (SAM_MEAN, SAM_STD, 1 / 255)


def as_frame_storage(
    pixel_values: Tensor, normalization: FrameNormalization = SAM_FRAME_NORMALIZATION
) -> Tensor:
    """How a frame is stored: (3, S, S) uint8 when the pixel values are exactly a uint8 image
    normalised with `normalization` (what the processors produce), else the values themselves."""
    if pixel_values.dtype == torch.uint8 or pixel_values.device.type == "meta":
        return pixel_values  # (meta: shapes only, nothing to compare)
    mean, std, rescale = normalization
    device = pixel_values.device
    shift = torch.tensor(list(mean), dtype=torch.float32, device=device)[:, None, None] / rescale
    scale = torch.tensor(list(std), dtype=torch.float32, device=device)[:, None, None] / rescale
    u = (pixel_values.float() * scale + shift).round().clamp(0, 255).to(torch.uint8)
    if torch.equal(normalize_images(u, *normalization), pixel_values.float()):
        return u
    return pixel_values
