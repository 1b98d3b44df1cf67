"""A frame's detections (`Detections`) and the per-frame detection cache of an interactive
text-prompted session (`DetectionCache`).

The cache lets a session propagated again (after a click, a refinement or a removal) skip the
detector on frames it has already seen with the same phrases: the backbone still runs (the
tracker needs its features), the detector's heads do not. It is bounded in bytes; the frames
cached first are dropped first and detected again when next needed. A session made with
`detection_cache_bytes=0` (the default) caches nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from ..scalars import is_int
from .concept_masks import mask_iou

__all__ = ["DetectionCache", "Detections"]


@dataclass
class Detections:
    """A frame's detections: boxes (N, 4) xyxy in [0, 1], masks (N, 4h, 4w) logits, scores (N,)
    probabilities, prompt_ids (N,) long (the phrase of each)."""

    boxes: Tensor
    masks: Tensor
    scores: Tensor
    prompt_ids: Tensor

    def __len__(self) -> int:
        return self.scores.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size() for t in (self.boxes, self.masks, self.scores, self.prompt_ids)
        )

    @classmethod
    def merge(cls, per_prompt: dict[int, Detections], mask_size: tuple[int, int], device: Any) -> Detections:
        """All phrases' detections, phrase after phrase (in prompt-id order of `per_prompt`)."""
        parts = [d for d in per_prompt.values() if len(d)]
        if not parts:
            return cls(
                boxes=torch.zeros(0, 4, device=device),
                masks=torch.zeros(0, *mask_size, device=device),
                scores=torch.zeros(0, device=device),
                prompt_ids=torch.zeros(0, dtype=torch.long, device=device),
            )
        return cls(*(torch.cat([getattr(d, f.name) for d in parts]) for f in fields(cls)))

    def without_overlap(self, masks: Tensor, iou_threshold: float) -> Detections:
        """The detections overlapping none of `masks` ((C, 4h, 4w) logits) by mask IoU >=
        `iou_threshold`: a detection over a clicked object is that object, not a new one."""
        if not len(self) or not masks.shape[0]:
            return self
        ious = mask_iou(self.masks > 0, masks > 0)  # (N, C)
        keep = ~(ious >= iou_threshold).any(dim=1)
        keep = keep.to(self.scores.device)
        return Detections(*(getattr(self, f.name)[keep] for f in fields(self)))


class DetectionCache:
    """Each frame's detections per phrase (prompt id), the frames cached first dropped beyond
    `max_bytes` (the frame being added is always kept). `max_bytes=0` caches nothing."""

    def __init__(self, max_bytes: int = 0) -> None:
        if not is_int(max_bytes) or max_bytes < 0:
            raise ValueError(f"detection_cache_bytes must be an int >= 0, got {max_bytes!r}")
        self.max_bytes = int(max_bytes)
        self._frames: OrderedDict[int, dict[int, Detections]] = OrderedDict()
        self.nbytes = 0

    def get(self, frame_idx: int, prompt_id: int) -> Detections | None:
        return self._frames.get(frame_idx, {}).get(prompt_id)

    def put(self, frame_idx: int, prompt_id: int, dets: Detections) -> None:
        if self.max_bytes == 0:
            return
        per_prompt = self._frames.setdefault(frame_idx, {})
        old = per_prompt.get(prompt_id)
        self.nbytes += dets.nbytes - (old.nbytes if old is not None else 0)
        per_prompt[prompt_id] = dets
        while self.nbytes > self.max_bytes and len(self._frames) > 1:
            _, dropped = self._frames.popitem(last=False)
            self.nbytes -= sum(d.nbytes for d in dropped.values())

    def forget_prompt(self, prompt_id: int) -> None:
        """Drop one phrase's detections on every frame."""
        for per_prompt in self._frames.values():
            dets = per_prompt.pop(prompt_id, None)
            if dets is not None:
                self.nbytes -= dets.nbytes

    def clear(self) -> None:
        self._frames.clear()
        self.nbytes = 0

    def tensors(self) -> list[Tensor]:
        return [getattr(d, f.name) for per in self._frames.values() for d in per.values() for f in fields(d)]

    def __len__(self) -> int:
        """Frames with cached detections."""
        return len(self._frames)
