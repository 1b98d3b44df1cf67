"""SAM 2's mask cleanup (hole filling, sprinkle removal) over a vectorised connected-components
labelling (no per-pixel Python loops)."""

from __future__ import annotations

import torch
from torch import Tensor


def _box_min(labels: Tensor, big: int) -> Tensor:
    """Minimum over each pixel's 3x3 neighbourhood of (N, H, W) labels (separable: rows, then columns)."""
    h, w = labels.shape[-2:]
    padded = labels.new_full((labels.shape[0], h + 2, w + 2), big)
    padded[:, 1:-1, 1:-1] = labels
    rows = torch.minimum(
        torch.minimum(padded[:, :, :-2], padded[:, :, 1:-1]), padded[:, :, 2:]
    )  # (N, H+2, W)
    return torch.minimum(torch.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _run_min(labels: Tensor, mask: Tensor, dim: int, big: int) -> Tensor:
    """Running minimum of labels along `dim` that restarts at every background pixel.

    Encoded as one cumulative max: key = run_id * K + (K - 1 - label); earlier runs have smaller
    keys, so the max within a run recovers that run's smallest label so far.
    """
    k = big + 1
    run = torch.cumsum(~mask, dim=dim, dtype=torch.int64)
    key = run * k + (k - 1 - labels.long())
    best = torch.cummax(key, dim=dim).values
    return torch.where(mask, (k - 1 - (best - run * k)).to(labels.dtype), labels)


def _propagate(labels: Tensor, mask: Tensor, big: int) -> Tensor:
    """One round: whole-run minima along rows and columns (both directions), then the 3x3 minimum
    (diagonal steps), restricted to the mask."""
    for dim in (2, 1):
        labels = _run_min(labels, mask, dim, big)
        labels = _run_min(labels.flip(dim), mask.flip(dim), dim, big).flip(dim)
    return torch.where(mask, _box_min(labels, big), labels)


def connected_components(mask: Tensor) -> tuple[Tensor, Tensor]:
    """8-connected components of a batch of binary masks.

    mask: (N, H, W) or (N, 1, H, W) bool.
    Returns (labels, areas), both shaped like `mask` (int64): a component's label is 1 + the flat
    index of its first pixel (0 off the mask), and `areas` holds each pixel's component size
    (0 off the mask).

    Vectorised min-label propagation: each round spreads the smallest label along whole runs of
    the mask (rows and columns, with cumulative scans) and to diagonal neighbours, then jumps
    each label to the label of the pixel it names; rounds repeat until nothing changes, which
    takes a few rounds per bend of the most winding component, not one per pixel.
    """
    shape = mask.shape
    mask = mask.reshape(-1, *shape[-2:]).bool()
    n, h, w = mask.shape
    total = n * h * w
    big = total + 1
    dtype = torch.int32 if big < 2**31 - 1 else torch.int64
    index = torch.arange(1, total + 1, device=mask.device, dtype=dtype).reshape(n, h, w)
    labels = torch.where(mask, index, torch.full_like(index, big))
    while True:
        new = _propagate(labels, mask, big)
        flat = new.flatten()
        # pointer jumping: a label names a pixel of the same component; take that pixel's label
        on = flat < big
        target = torch.where(on, flat - 1, torch.zeros_like(flat)).long()
        flat = torch.where(on, torch.minimum(flat, flat[target]), flat)
        new = flat.reshape(n, h, w)
        if torch.equal(new, labels):
            break
        labels = new
    labels = torch.where(mask, labels, torch.zeros_like(labels)).long()
    counts = torch.bincount(labels.flatten(), minlength=total + 1)
    areas = torch.where(mask, counts[labels], torch.zeros_like(labels))
    return labels.reshape(shape), areas.reshape(shape)


def fill_holes_and_remove_sprinkles(
    mask_logits: Tensor,
    mask_threshold: float = 0.0,
    max_hole_area: float = 0.0,
    max_sprinkle_area: float = 0.0,
) -> Tensor:
    """SAM 2's mask cleanup on (..., H, W) logits, before upsampling.

    Background components (logit <= threshold) of at most `max_hole_area` pixels become foreground
    (threshold + 10), and foreground components of at most `max_sprinkle_area` pixels become
    background (threshold - 10). As in SAM 2's `SAM2Transforms.postprocess_masks`, both sets of
    components are found on the given logits: filling a hole never merges or grows a sprinkle.
    Areas count pixels of the given (low-resolution) masks.
    """
    if max_hole_area <= 0 and max_sprinkle_area <= 0:
        return mask_logits
    shape = mask_logits.shape
    logits = mask_logits.reshape(-1, *shape[-2:])
    foreground = logits > mask_threshold  # (N, H, W), both passes read this one mask
    out = logits
    if max_hole_area > 0:
        _, areas = connected_components(~foreground)
        holes = (areas > 0) & (areas <= max_hole_area)
        out = torch.where(holes, torch.full_like(logits, mask_threshold + 10.0), out)
    if max_sprinkle_area > 0:
        _, areas = connected_components(foreground)
        sprinkles = (areas > 0) & (areas <= max_sprinkle_area)
        out = torch.where(sprinkles, torch.full_like(logits, mask_threshold - 10.0), out)
    return out.reshape(shape)
