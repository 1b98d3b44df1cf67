"""Which earlier frames condition an object on a frame: SAM 2's memory policy, on plain data.

An object's memory on frame `f` is made of
- the memories of its prompted (conditioning) frames, at most `max_cond_frame_num` of them: the
  closest before `f`, the closest after, then the nearest; all in temporal slot 0;
- the memories of the tracked frames 1 .. `num_maskmem - 1` back in tracking direction, in slots
  1 .. `num_maskmem - 1` (a prompted frame left out above can fill its slot);
- the object pointers of the prompted frames already passed, and of the tracked frames up to
  `max_object_pointers_in_encoder - 1` back, with their distance in frames.

The inputs are the object's stored outputs (frame index -> dict, as a session keeps them) and the
frame index and direction; the result names the chosen outputs, so the tracking engine
(`engine.py`) can turn them into memory tokens. Nothing here touches a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

__all__ = ["MemoryPolicy", "MemorySelection", "Outputs"]

Outputs = dict[int, dict[str, Any]]  # frame index -> one object's stored outputs on that frame


@dataclass
class MemorySelection:
    """The stored outputs that condition one object on one frame."""

    # (temporal slot, output holding "maskmem_features" (1, L, C_mem) and "maskmem_pos_enc"):
    # slot 0 for prompted frames, slot t for the tracked frame t frames back
    memories: list[tuple[int, dict[str, Any]]]
    # (frame offset in tracking direction, (1, C) object pointer) of earlier frames
    pointers: list[tuple[int, Tensor]]
    # offsets are divided by this in the pointers' temporal encoding
    max_pointer_offset: int


@dataclass(frozen=True)
class MemoryPolicy:
    """Which earlier frames an object remembers (SAM 2's policy).

    num_maskmem: memory slots: prompted frames share one, tracked frames fill the other
        `num_maskmem - 1` (the most recent ones in tracking direction).
    max_cond_frames: at most this many prompted frames are remembered (-1: all).
    max_object_pointers: object pointers of at most this many frames back.
    """

    num_maskmem: int
    max_cond_frames: int
    max_object_pointers: int

    def select(
        self,
        frame_idx: int,
        cond_outputs: Outputs,
        tracked_outputs: Outputs,
        reverse: bool,
        num_frames: int,
        streaming: bool,
    ) -> MemorySelection:
        """The memory of one object on `frame_idx`.

        Args:
            frame_idx: the frame being tracked.
            cond_outputs: the object's outputs on prompted frames (frame index -> output dict).
            tracked_outputs: its outputs on tracked frames.
            reverse: tracking backwards in time (memories come from later frames).
            num_frames: frames in the video (so far, when streaming).
            streaming: frames arrive one at a time (pointers are not limited by `num_frames`).
        """
        cond, unselected = self.closest_cond_frames(frame_idx, cond_outputs)
        sign = -1 if reverse else 1
        slots: list[tuple[int, dict | None]] = [(0, out) for out in cond.values()]
        for t in range(self.num_maskmem - 1, 0, -1):
            previous = frame_idx - sign * t
            slots.append((t, tracked_outputs.get(previous, unselected.get(previous))))
        memories = [(t, out) for t, out in slots if out is not None and "maskmem_features" in out]

        max_pointers = self.max_object_pointers if streaming else min(num_frames, self.max_object_pointers)
        pointers = [
            ((frame_idx - t) * sign, out["object_pointer"])
            for t, out in cond_outputs.items()
            if ((t >= frame_idx) if reverse else (t <= frame_idx))  # prompted frames already passed
        ]
        for t in range(1, max_pointers):
            ref = frame_idx - sign * t
            if ref < 0 or (not streaming and ref >= num_frames):
                break
            out = tracked_outputs.get(ref)
            if out is not None:
                pointers.append((t, out["object_pointer"]))
        return MemorySelection(memories, pointers, max_pointers - 1)

    def closest_cond_frames(self, frame_idx: int, cond_outputs: Outputs) -> tuple[Outputs, Outputs]:
        """(selected, the rest): up to `max_cond_frames` prompted frames, the closest before, the
        closest after, then the nearest."""
        max_num = self.max_cond_frames
        if max_num == -1 or len(cond_outputs) <= max_num:
            return cond_outputs, {}
        selected = {}
        before = max((t for t in cond_outputs if t < frame_idx), default=None)
        if before is not None:
            selected[before] = cond_outputs[before]
        after = min((t for t in cond_outputs if t >= frame_idx), default=None)
        if after is not None:
            selected[after] = cond_outputs[after]
        rest = sorted((t for t in cond_outputs if t not in selected), key=lambda t: abs(t - frame_idx))
        selected.update((t, cond_outputs[t]) for t in rest[: max_num - len(selected)])
        return selected, {t: v for t, v in cond_outputs.items() if t not in selected}
