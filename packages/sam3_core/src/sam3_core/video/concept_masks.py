"""Mask operations of text-prompted video tracking (`Sam3VideoModel`): mask IoU, mask NMS of the
detections, hole filling / sprinkle removal of low-resolution mask logits, and the per-prompt
non-overlap constraints. Pure tensor functions, no model or session state."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..processing.image import apply_non_overlapping_constraints
from ..processing.mask_cleanup import connected_components

__all__ = [
    "NO_OBJECT_LOGIT",
    "fill_holes_in_mask_scores",
    "mask_iou",
    "nms_masks",
    "per_prompt",
    "suppress_shrunk_after_non_overlap",
    "object_wise_non_overlap",
]

NO_OBJECT_LOGIT = -10.0  # logit of a suppressed pixel (sigmoid(-10) ~ 4.5e-5)


def mask_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of every pair of binary masks: a (N, H, W) bool, b (M, H, W) bool -> (N, M) float32.

    An empty union gives 0.
    """
    fa = a.flatten(1).float()  # (N, HW)
    fb = b.flatten(1).float()  # (M, HW)
    inter = fa @ fb.T  # (N, M) exact pixel counts (integers below 2**24)
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return inter / union.clamp(min=1)


def nms_masks(probs: Tensor, masks: Tensor, prob_threshold: float, iou_threshold: float) -> Tensor:
    """Greedy mask NMS of detections.

    probs: (Q,) detection probabilities; masks: (Q, H, W) mask logits.
    Returns keep (Q,) bool: above `prob_threshold` and not overlapping (mask IoU > `iou_threshold`)
    a higher-scoring kept detection.
    """
    valid = probs > prob_threshold  # (Q,)
    idx = torch.nonzero(valid, as_tuple=True)[0]
    keep = torch.zeros_like(valid)
    if idx.numel() == 0:
        return keep
    # as the reference's kernel (cv-utils `generic_nms`): the float32 IoUs are compared with the
    # threshold in double (float32 would round a threshold like 0.1 up to 0.10000000149, and an
    # IoU of exactly 1/10 would then escape suppression), and the scores are ranked in their own
    # dtype (a float64 model's scores may tie in float32), best first, ties in query order
    ious = mask_iou(masks[idx] > 0, masks[idx] > 0).double().cpu()  # (V, V)
    order = torch.argsort(probs[idx].cpu(), descending=True, stable=True).tolist()
    suppressed = torch.zeros(
        len(order), dtype=torch.bool, device="cpu"
    )  # beside `ious`: the loop runs on the host
    for i in order:
        if suppressed[i]:
            continue
        keep[idx[i]] = True
        suppressed |= ious[i] > iou_threshold
    return keep


def fill_holes_in_mask_scores(masks: Tensor, max_area: int) -> Tensor:
    """Fill small holes and remove small sprinkles of (N, 1, H, W) mask logits.

    Background components (logit <= 0) of at most `max_area` pixels become foreground (0.1); then,
    on the filled masks, foreground components of at most min(`max_area`, half the mask's area)
    pixels become background (-0.1), so a tiny object is not erased whole. 8-connectivity.
    """
    if max_area <= 0 or masks.numel() == 0:
        return masks
    background = masks <= 0
    _, areas = connected_components(background)
    masks = torch.where(background & (areas <= max_area), torch.full_like(masks, 0.1), masks)
    foreground = masks > 0
    limit = foreground.sum(dim=(2, 3), keepdim=True, dtype=torch.int32).floor_divide(2).clamp(max=max_area)
    _, areas = connected_components(foreground)
    return torch.where(foreground & (areas <= limit), torch.full_like(masks, -0.1), masks)


def per_prompt(masks: Tensor, prompt_ids: Sequence[int], fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Apply `fn(masks_of_group, indices)` to each prompt's objects separately: objects found by
    different phrases never compete for pixels. masks: (N, ...) with N == len(prompt_ids)."""
    if len(prompt_ids) != masks.shape[0]:
        raise ValueError(f"{len(prompt_ids)} prompt ids for {masks.shape[0]} masks")
    out = masks.clone()
    for prompt_id in sorted(set(prompt_ids)):  # grouped on the host: no device round trip
        members = [i for i, p in enumerate(prompt_ids) if p == prompt_id]
        group = torch.tensor(members, dtype=torch.long, device=masks.device)
        out[group] = fn(out[group], group).to(out.dtype)
    return out


def suppress_shrunk_after_non_overlap(masks: Tensor, shrink_threshold: float = 0.3) -> Tensor:
    """(N, 1, H, W) mask logits of one prompt's objects: an object that keeps less than
    `shrink_threshold` of its area once each pixel goes to its highest-logit object is suppressed
    (clamped to <= -10) whole; the others are returned unchanged."""
    if masks.shape[0] <= 1:
        return masks
    exclusive = apply_non_overlapping_constraints(masks)
    before = (masks > 0).sum(dim=(-1, -2)).clamp(min=1.0)  # (N, 1)
    after = (exclusive > 0).sum(dim=(-1, -2))
    keep = (after / before >= shrink_threshold)[..., None, None].expand_as(masks)
    return torch.where(keep, masks, masks.clamp(max=NO_OBJECT_LOGIT))


def object_wise_non_overlap(masks: Tensor, scores: Tensor, background: float = NO_OBJECT_LOGIT) -> Tensor:
    """(N, 1, H, W) masks of one prompt's objects with their (N, 1) scores: where objects overlap,
    the highest-scoring object keeps the pixel; the others are clamped to <= `background`."""
    as_scores = torch.where(masks > 0, scores[..., None, None], background)
    exclusive = apply_non_overlapping_constraints(as_scores)
    return torch.where(exclusive > 0, masks, masks.clamp(max=background)).to(as_scores.dtype)
