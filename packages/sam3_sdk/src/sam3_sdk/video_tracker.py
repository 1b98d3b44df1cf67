"""`VideoTracker`: prompted tracking with a video model, numpy prompts in and `VideoFrameMasks` out.

Either tracker of the family runs behind the same calls: the SAM 3 tracker
(`Sam3TrackerVideoModel`, from the combined `facebook/sam3` checkpoint) or EdgeTAM
(`EdgeTamVideoModel`, e.g. `yonigozlan/edgetam-video-1`), the light one. EdgeTAM runs on the SAM 3
tracker's engine and session, so everything below holds for both; `from_pretrained` picks the
model and processor classes from the checkpoint's `model_type`.

The tracking state of one video (frames, prompts, memories) is a core
`Sam3TrackerVideoInferenceSession` (for EdgeTAM its subclass), made by `init_state` and passed to
every call, as sam2's video predictor takes its `inference_state`; `VideoSession` holds one for
interactive use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sam3_core import (
    EdgeTamVideoModel,
    Sam2VideoProcessor,
    Sam3TrackerVideoInferenceSession,
    Sam3TrackerVideoModel,
    Sam3TrackerVideoProcessor,
    Sam3TrackerVideoSegmentationOutput,
)
from sam3_core.checkpoint_files import read_config, resolve_checkpoint_dir
from sam3_core.processing.video import ResizedFrames

from .prompts import check_box, check_mask, check_points
from .video_io import VideoReader
from .video_results import VideoFrameMasks

__all__ = ["VIDEO_MODELS", "ModelFrames", "VideoTracker"]

# A checkpoint's `model_type` (config.json) → the video model and processor that track with it.
VIDEO_MODELS: dict[str, tuple[type[Sam3TrackerVideoModel], type[Sam3TrackerVideoProcessor]]] = {
    "sam3_video": (Sam3TrackerVideoModel, Sam3TrackerVideoProcessor),  # the combined facebook/sam3
    "sam3_tracker_video": (Sam3TrackerVideoModel, Sam3TrackerVideoProcessor),
    "edgetam_video": (EdgeTamVideoModel, Sam2VideoProcessor),
}
_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")


# the SDK's name for the core's on-demand frames (a VideoReader is indexable with a length)
ModelFrames = ResizedFrames


class VideoTracker:
    """Points, boxes and masks on any frame → every tracked object's masks, frame by frame.

    >>> tracker = VideoTracker.from_pretrained("yonigozlan/edgetam-video-1")  # or "facebook/sam3"
    >>> state = tracker.init_state(open_video("clip.mp4"))
    >>> first = tracker.add_prompts(state, frame=0, obj_id=1, points=[(210, 350)])
    >>> for frame_masks in tracker.propagate(state, start_frame=0): ...
    """

    def __init__(self, model: Sam3TrackerVideoModel, processor: Sam3TrackerVideoProcessor) -> None:
        self.model = model
        self.processor = processor

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> VideoTracker:
        """Load the video tracker of a checkpoint: SAM 3's (`facebook/sam3`, model_type
        "sam3_video" or "sam3_tracker_video") or EdgeTAM's (`yonigozlan/edgetam-video-1`,
        "edgetam_video"), from a hub id or a folder (a random checkpoint's name such as
        `tiny-random-edgetam` is resolved to its folder by `sam3_sdk.testing.resolve_name` first).

        device: defaults to CUDA when available. dtype: torch.float32 (default) or torch.bfloat16.
        kwargs: hub options (`revision`, `token`, `cache_dir`, `local_files_only`) and processor
        settings (e.g. `size`), which override the checkpoint's processor config.
        """
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
        folder = resolve_checkpoint_dir(name_or_path, **hub)
        model_type = read_config(folder).get("model_type")
        if model_type not in VIDEO_MODELS:
            raise ValueError(
                f"{name_or_path}: config.json has model_type {model_type!r}, which has no video tracker; "
                f"expected one of {sorted(VIDEO_MODELS)}"
            )
        model_class, processor_class = VIDEO_MODELS[model_type]
        model = model_class.from_pretrained(folder, device=device, dtype=dtype)
        model.name_or_path = str(name_or_path)
        return cls(model, processor_class.from_pretrained(folder, **kwargs))

    @property
    def name(self) -> str:
        """ "SAM 3" or "EdgeTAM": which tracker this is."""
        return "EdgeTAM" if isinstance(self.model, EdgeTamVideoModel) else "SAM 3"

    def init_state(self, reader: VideoReader) -> Sam3TrackerVideoInferenceSession:
        """A fresh tracking state over `reader`'s frames (decoded when the tracker reads them)."""
        state = self.processor.init_video_session(
            inference_device=self.model.device, video_storage_device="cpu", dtype=self.model.dtype
        )
        state.use_frame_source(ModelFrames(reader, self.processor), len(reader), video_size=reader.size)
        return state

    def add_prompts(
        self,
        state: Sam3TrackerVideoInferenceSession,
        frame: int,
        obj_id: int,
        points: list[tuple[float, float]] | np.ndarray | None = None,
        labels: list[int] | np.ndarray | None = None,
        box: tuple[float, float, float, float] | None = None,
        mask: np.ndarray | None = None,
        replace: bool = True,
    ) -> VideoFrameMasks:
        """Prompt object `obj_id` on `frame` and segment that frame.

        points: (N, 2) (x, y) pixels of the frame; labels: (N,) 1 positive / 0 negative (default 1);
        box: (x1, y1, x2, y2) pixels; mask: (H, W) bool at the video's size (not with points or a box).
        replace: these prompts replace the object's earlier ones on `frame` (a box always does).
        Returns every object's masks on `frame`.
        """
        size = (state.video_height, state.video_width)
        pts, labs = check_points(points, labels, size)
        box_arr = check_box(box, size)
        mask_arr = check_mask(mask, size)
        if pts is None and box_arr is None and mask_arr is None:
            raise ValueError(f"object {obj_id} on frame {frame}: give points, a box or a mask")
        if mask_arr is not None and (pts is not None or box_arr is not None):
            raise ValueError("a mask prompt cannot be combined with points or a box on the same frame")
        if mask_arr is not None:
            self.processor.add_inputs_to_inference_session(
                state, frame_idx=frame, obj_ids=obj_id, input_masks=mask_arr.astype(np.float32)
            )
        else:
            self.processor.add_inputs_to_inference_session(
                state,
                frame_idx=frame,
                obj_ids=obj_id,
                input_points=None if pts is None else [[pts.tolist()]],
                input_labels=None if labs is None else [[labs.tolist()]],
                input_boxes=None if box_arr is None else [[box_arr.tolist()]],
                clear_old_inputs=replace or box_arr is not None,
            )
        return self.segment(state, frame)

    def segment(self, state: Sam3TrackerVideoInferenceSession, frame: int) -> VideoFrameMasks:
        """Every object's masks on `frame` from its prompts and the memories so far."""
        return self.frame_masks(state, self.model(inference_session=state, frame_idx=frame))

    def propagate(
        self,
        state: Sam3TrackerVideoInferenceSession,
        start_frame: int,
        max_frames: int | None = None,
        reverse: bool = False,
    ) -> Iterator[VideoFrameMasks]:
        """Track every object from `start_frame` (forwards, or backwards with `reverse`), at most
        `max_frames` frames beyond it, yielding each frame's masks."""
        for out in self.model.propagate_in_video_iterator(
            state, start_frame_idx=start_frame, max_frame_num_to_track=max_frames, reverse=reverse
        ):
            yield self.frame_masks(state, out)

    def frame_masks(
        self, state: Sam3TrackerVideoInferenceSession, out: Sam3TrackerVideoSegmentationOutput
    ) -> VideoFrameMasks:
        """The model's output on one frame as masks at the video's size and visibility scores."""
        size = [state.video_height, state.video_width]
        masks = self.processor.post_process_masks([out.pred_masks], original_sizes=[size])[0][:, 0]
        scores = torch.sigmoid(out.object_score_logits.float()).reshape(-1)
        return VideoFrameMasks(
            frame_idx=int(out.frame_idx),
            object_ids=[int(o) for o in out.object_ids],
            masks=masks.cpu().numpy(),
            scores=scores.cpu().numpy(),
        )
