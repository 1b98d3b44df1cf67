"""`VideoTracker`: prompted tracking with the shared video model, numpy prompts in and
`VideoFrameMasks` out.

The tracking state of one video (frames, prompts, memories) is a core
`Sam3TrackerVideoInferenceSession`, made by `init_state` and passed to every call, as sam2's video
predictor takes its `inference_state`; `VideoSession` holds one for interactive use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch
from sam3_core import (
    Sam3TrackerVideoInferenceSession,
    Sam3TrackerVideoModel,
    Sam3TrackerVideoProcessor,
    Sam3TrackerVideoSegmentationOutput,
)
from sam3_core.processing.image import resize_images, to_rgb_tensor

from .prompts import check_box, check_mask, check_points
from .video_io import VideoReader
from .video_results import VideoFrameMasks

__all__ = ["ModelFrames", "VideoTracker"]


class ModelFrames(Mapping):
    """The frames as the tracker reads them, decoded and resized on demand: index → (3, S, S) uint8."""

    def __init__(self, reader: VideoReader, size: int, device: torch.device | str = "cpu") -> None:
        self.reader, self.size, self.device = reader, int(size), device

    def __getitem__(self, frame_idx: int) -> torch.Tensor:
        if frame_idx not in self:
            raise KeyError(frame_idx)
        rgb = to_rgb_tensor(self.reader[frame_idx]).to(self.device)
        return resize_images(rgb.unsqueeze(0), (self.size, self.size))[0]

    def __contains__(self, frame_idx: object) -> bool:
        return isinstance(frame_idx, (int, np.integer)) and 0 <= frame_idx < len(self.reader)

    def __len__(self) -> int:
        return len(self.reader)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.reader)))


class VideoTracker:
    """Points, boxes and masks on any frame → every tracked object's masks, frame by frame.

    >>> tracker = VideoTracker(video_model, video_processor)
    >>> state = tracker.init_state(open_video("clip.mp4"))
    >>> first = tracker.add_prompts(state, frame=0, obj_id=1, points=[(210, 350)])
    >>> for frame_masks in tracker.propagate(state, start_frame=0): ...
    """

    def __init__(self, model: Sam3TrackerVideoModel, processor: Sam3TrackerVideoProcessor) -> None:
        self.model = model
        self.processor = processor

    def init_state(self, reader: VideoReader) -> Sam3TrackerVideoInferenceSession:
        """A fresh tracking state over `reader`'s frames (decoded when the tracker reads them)."""
        state = self.processor.init_video_session(
            inference_device=self.model.device, video_storage_device="cpu", dtype=self.model.dtype
        )
        state.video_height, state.video_width = reader.size
        state.use_frame_source(ModelFrames(reader, self.processor.size), len(reader))
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
