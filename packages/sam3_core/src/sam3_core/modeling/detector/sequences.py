"""Right-padded token sequences of the concept detector: joining them, and their attention masks."""

from __future__ import annotations

import torch


def concat_right_padded(
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


def key_padding_mask(valid: torch.Tensor | None) -> torch.Tensor | None:
    """(B, Lk) True = valid → boolean SDPA mask (B, 1, 1, Lk)."""
    return None if valid is None else valid.bool()[:, None, None, :]
