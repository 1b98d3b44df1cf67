"""The outputs part of a tracker video session: per object and frame, what the model segmented
(masks, object pointer, score) and, once encoded, the frame's memory of the object.

A part of `Sam3TrackerVideoInferenceSession` (`session.py`), which holds the state these methods
read: `output_dict_per_obj`, `frames_tracked_per_obj`, `memory_window`, `keep_all_outputs` and
the devices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["SessionOutputs"]

# Outputs that stay on the inference device (tiny and read on every frame).
_SMALL_OUTPUTS = ("object_pointer", "object_score_logits")


class SessionOutputs:
    """Storing and reading a session's per-object outputs (see `Sam3TrackerVideoInferenceSession`)."""

    output_dict_per_obj: dict[int, dict[str, dict[int, dict[str, Any]]]]
    frames_tracked_per_obj: dict[int, dict[int, dict[str, bool]]]
    inference_device: torch.device
    inference_state_device: torch.device
    memory_window: int | None
    keep_all_outputs: bool

    def store_output(
        self,
        obj_idx: int,
        frame_idx: int,
        output_key: str | None = None,
        output_value: Tensor | dict | None = None,
        is_conditioning_frame: bool = True,
    ) -> None:
        """Store one output (or, with `output_key=None`, a dict of them) of an object on a frame.

        Small tensors stay on the inference device; the others go to `inference_state_device`.
        """
        storage = self.output_dict_per_obj[obj_idx][
            "cond_frame_outputs" if is_conditioning_frame else "non_cond_frame_outputs"
        ]
        if output_key is None:
            if not isinstance(output_value, dict):
                raise TypeError("store_output without output_key needs a dict of outputs")
            storage[frame_idx] = {}
            for key, value in output_value.items():
                self.store_output(obj_idx, frame_idx, key, value, is_conditioning_frame)
            return
        if isinstance(output_value, Tensor) and output_key not in _SMALL_OUTPUTS:
            output_value = output_value.to(self.inference_state_device)
        storage.setdefault(frame_idx, {})[output_key] = output_value

    def get_output(
        self, obj_idx: int, frame_idx: int, output_key: str, is_conditioning_frame: bool = True
    ) -> Any:
        """One stored output (on the inference device), or None when the frame has none."""
        storage = self.output_dict_per_obj[obj_idx][
            "cond_frame_outputs" if is_conditioning_frame else "non_cond_frame_outputs"
        ]
        out = storage.get(frame_idx)
        if out is None:
            return None
        value = out[output_key]
        return value.to(self.inference_device) if isinstance(value, Tensor) else value

    def has_cond_output(self, obj_idx: int, frame_idx: int) -> bool:
        """Whether the object has an output on `frame_idx` as a prompted (conditioning) frame."""
        return frame_idx in self.output_dict_per_obj[obj_idx]["cond_frame_outputs"]

    def object_outputs(self, obj_idx: int) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """(prompted, tracked) outputs of an object: frame index -> output dict (read, don't edit)."""
        outputs = self.output_dict_per_obj[obj_idx]
        return outputs["cond_frame_outputs"], outputs["non_cond_frame_outputs"]

    def store_memory(self, obj_idx: int, frame_idx: int, features: Tensor, pos: Tensor) -> None:
        """Attach a frame's encoded memory, (1, L, C_mem) features and position encoding, to the
        object's output on that frame (kept on `inference_state_device`)."""
        cond, tracked = self.object_outputs(obj_idx)
        out = cond.get(frame_idx, tracked.get(frame_idx))
        if out is not None:
            out["maskmem_features"] = features.to(self.inference_state_device)
            out["maskmem_pos_enc"] = pos.to(self.inference_state_device)

    def was_tracked(self, obj_idx: int, frame_idx: int) -> bool:
        """Whether the object was tracked (segmented from memory, not prompts) on the frame."""
        return frame_idx in self.frames_tracked_per_obj[obj_idx]

    def mark_tracked(self, obj_idx: int, frame_idx: int, reverse: bool) -> None:
        """Record that the object was tracked on the frame (in which direction)."""
        self.frames_tracked_per_obj[obj_idx][frame_idx] = {"reverse": reverse}

    def first_prompted_output_frame(self) -> int | None:
        """The earliest prompted frame that has been segmented (for any object), or None."""
        return min(
            (t for outputs in self.output_dict_per_obj.values() for t in outputs["cond_frame_outputs"]),
            default=None,
        )

    def prune_outputs(self, frame_idx: int) -> None:
        """Drop tracked outputs farther than `memory_window` frames from `frame_idx`.

        They are never read again by tracking that goes on from this frame in either direction;
        conditioning outputs are kept. Tracking resumed elsewhere (a click on a frame whose tracked
        neighbours were dropped, a propagation from another start) reads fewer memories than the
        reference, which keeps every output; `keep_all_outputs=True` does too.
        """
        if self.memory_window is None or self.keep_all_outputs:
            return
        for outputs in self.output_dict_per_obj.values():
            tracked = outputs["non_cond_frame_outputs"]
            for old in [i for i in tracked if abs(i - frame_idx) > self.memory_window]:
                del tracked[old]
