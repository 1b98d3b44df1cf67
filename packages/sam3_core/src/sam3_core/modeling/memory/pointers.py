"""Object pointers of earlier frames as memory tokens, with a temporal encoding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers import sine_angles


def temporal_sine_encoding(positions: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """1D sine encoding of (N,) float positions -> (N, dim) as [sin features, cos features]."""
    angles = sine_angles(positions, dim // 2, scale=1.0, temperature=temperature)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def object_pointer_tokens(
    pointers: list[Tensor],
    temporal_offsets: list[int],
    max_offset: int,
    memory_dim: int,
    projection: nn.Module | None,
) -> tuple[Tensor, Tensor]:
    """Object pointers of earlier frames as memory tokens.

    Args:
        pointers: per frame a (B, C) object pointer.
        temporal_offsets: per pointer, how many frames ago (in tracking direction) it was made.
        max_offset: the offsets are divided by this before the sine encoding.
        memory_dim: width of the memory tokens; a C-wide pointer becomes C / memory_dim tokens.
        projection: C -> memory_dim projection of the temporal encoding, or None for no temporal
            encoding (zeros).

    Returns:
        tokens (B, N * C / memory_dim, memory_dim) and their position encodings, same shape.
    """
    stacked = torch.stack(pointers, dim=1)  # (B, N, C)
    batch, num, channels = stacked.shape
    if projection is not None:
        offsets = torch.tensor(temporal_offsets, device=stacked.device, dtype=torch.float32) / max_offset
        pos = projection(temporal_sine_encoding(offsets, channels).to(stacked.dtype))  # (N, memory_dim)
        pos = pos.unsqueeze(0).expand(batch, -1, -1)
    else:
        pos = stacked.new_zeros(batch, num, memory_dim)
    if memory_dim < channels:
        splits = channels // memory_dim
        stacked = stacked.reshape(batch, num * splits, memory_dim)  # each pointer -> `splits` tokens
        pos = pos.repeat_interleave(splits, dim=1)
    return stacked, pos
