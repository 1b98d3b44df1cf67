"""The interactive `VideoSession` (add, refine and remove objects; propagate forwards, backwards or
both ways) and `track_object` (prompts in, each frame's masks out, nothing kept).

>>> session = sam.video_session("clip.mp4")
>>> first = session.add_object(frame=0, points=[(210, 350)])      # → VideoFrameMasks of frame 0
>>> session.refine(first.object_ids[0], frame=40, points=[(200, 340), (260, 300)], labels=[1, 0])
>>> for frame in session.propagate("both", progress=print): ...
>>> session.results.save_coco_json("masks.json")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .prompts import check_video_prompts
from .video_io import VideoLike, VideoReader, open_video
from .video_results import VideoFrameMasks, VideoMasks, object_color
from .video_tracker import ModelFrames, VideoTracker

__all__ = [
    "DIRECTIONS",
    "ModelFrames",
    "VideoFrameMasks",
    "VideoMasks",
    "VideoSession",
    "check_video_prompts",
    "object_color",
    "track_object",
]

DIRECTIONS = ("forward", "backward", "both")
Progress = Callable[[int, int], Any]  # progress(frames done, frames in this propagation)


class VideoSession:
    """Interactive tracking on one video: add objects, refine them on any frame, remove them, and
    propagate forwards, backwards or both ways from the prompted frames.

    Frames are decoded on demand (never all in memory); the tracker keeps only a bounded window
    of past outputs. `results` keeps every frame's masks compactly (COCO RLE) for display and export.
    """

    def __init__(
        self,
        tracker: VideoTracker,
        video: VideoLike | VideoReader,
        fps: float | None = None,
        keep_results: bool = True,
    ) -> None:
        self.tracker = tracker
        self.reader = open_video(video, fps=fps)
        self.model = tracker.model
        self.processor = tracker.processor
        self.keep_results = keep_results
        self.state = tracker.init_state(self.reader)
        self.results = VideoMasks(size=self.reader.size, num_frames=len(self.reader), fps=self.reader.fps)
        self.stale = False  # prompts changed since the last propagation

    # -- the video ----------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return len(self.reader)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the video."""
        return self.reader.size

    @property
    def fps(self) -> float:
        return self.reader.fps

    @property
    def object_ids(self) -> list[int]:
        return list(self.state.obj_ids)

    def frame(self, frame_idx: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one frame."""
        return self.reader[self.reader.check_index(frame_idx)]

    def prompted_frames(self, obj_id: int | None = None) -> list[int]:
        """Frames that hold prompts (of one object, or of any)."""
        idxs = [self.state.check_obj_id(obj_id)] if obj_id is not None else range(self.state.get_obj_num())
        frames = set()
        for i in idxs:
            frames |= set(self.state.point_inputs_per_obj[i]) | set(self.state.mask_inputs_per_obj[i])
        return sorted(frames)

    # -- prompts ------------------------------------------------------------------------------

    def _check_frame(self, frame: Any) -> int:
        if not isinstance(frame, (int, np.integer)) or isinstance(frame, bool):
            raise ValueError(f"frame must be an int frame index, got {frame!r}")
        if not 0 <= frame < self.num_frames:
            raise ValueError(
                f"frame {int(frame)} is past the end of the video; expected a frame in 0..{self.num_frames - 1}"
            )
        return int(frame)

    def add_object(
        self,
        frame: int = 0,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
        obj_id: int | None = None,
    ) -> VideoFrameMasks:
        """Start tracking a new object from prompts on `frame` (pixels of the video frame).

        points: (x, y) clicks; labels: 1 positive / 0 negative (default all 1); box: (x1, y1, x2, y2);
        mask: (H, W) bool. obj_id: any int not in use (default: the next free id, from 1).
        Returns every object's masks on that frame.
        """
        if obj_id is None:
            obj_id = max(self.object_ids, default=0) + 1
        if not isinstance(obj_id, (int, np.integer)) or isinstance(obj_id, bool):
            raise ValueError(f"obj_id must be an int, got {obj_id!r}")
        if int(obj_id) in self.object_ids:
            raise ValueError(f"object id {obj_id} is already tracked; use refine() or another id")
        return self._prompt(int(obj_id), frame, points, labels, box, mask, replace=True)

    def refine(
        self,
        obj_id: int,
        frame: int,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
        replace: bool = True,
    ) -> VideoFrameMasks:
        """Correct an object on any frame. With `replace` (default) these prompts replace the object's
        earlier prompts on that frame; otherwise the clicks are added to them."""
        self.state.check_obj_id(obj_id)
        return self._prompt(obj_id, frame, points, labels, box, mask, replace=replace)

    def _prompt(
        self, obj_id: int, frame: Any, points: Any, labels: Any, box: Any, mask: Any, replace: bool
    ) -> VideoFrameMasks:
        frame = self._check_frame(frame)
        result = self.tracker.add_prompts(
            self.state, frame, obj_id, points=points, labels=labels, box=box, mask=mask, replace=replace
        )
        self.stale = True
        return self._record(result)

    def remove_object(self, obj_id: int) -> None:
        """Stop tracking an object: its prompts, memories and stored results go."""
        self.state.remove_object(obj_id)
        self.results.remove_object(obj_id)

    def reset(self) -> None:
        """Forget every object, prompt and result (the video stays open)."""
        self.state.reset_inference_session()
        self.results.clear()
        self.stale = False

    # -- tracking -----------------------------------------------------------------------------

    def _record(self, result: VideoFrameMasks) -> VideoFrameMasks:
        if self.keep_results:
            self.results.add(result)
        return result

    def propagate(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        max_frames: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[VideoFrameMasks]:
        """Track every object through the video, yielding each frame's masks as it is done.

        direction: "forward" (from the earliest prompted frame to the end), "backward" (from the
        latest prompted frame to frame 0) or "both" (forward from the earliest prompted frame,
        then backward from it). start_frame overrides where each pass starts; max_frames limits
        how many frames each pass goes beyond its start. progress(done, total) is called per frame.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if not self.object_ids:
            raise ValueError("no objects to track; add one with add_object(frame=..., points=...) first")
        prompted = self.prompted_frames()
        if not prompted:
            raise ValueError("no object has prompts; add points, a box or a mask first")
        if start_frame is not None:
            start_frame = self._check_frame(start_frame)
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 0):
            raise ValueError(f"max_frames must be a non-negative int, got {max_frames!r}")
        last = self.num_frames - 1
        passes = []
        if direction in ("forward", "both"):
            s = prompted[0] if start_frame is None else start_frame
            end = last if max_frames is None else min(last, s + max_frames)
            passes.append((s, False, end - s + 1))
        if direction in ("backward", "both"):
            if start_frame is not None:
                s = start_frame
            else:
                s = prompted[0] if direction == "both" else prompted[-1]
            end = 0 if max_frames is None else max(0, s - max_frames)
            if direction == "both" and s == 0:
                pass  # nothing before the first frame
            else:
                passes.append((s, True, s - end + 1))
        total = sum(n for _, _, n in passes)
        done = 0
        for start, reverse, n in passes:
            self._ensure_segmented(start)
            for frame_masks in self.tracker.propagate(self.state, start, max_frames=n - 1, reverse=reverse):
                done += 1
                result = self._record(frame_masks)
                if progress is not None:
                    progress(done, total)
                yield result
        self.stale = False

    def _ensure_segmented(self, frame: int) -> None:
        # The core propagates from a frame only after the prompted frames were segmented; every
        # prompt call does that, so nothing is needed unless prompts were added but not run.
        if self.state.obj_with_new_inputs:
            self._record(self.tracker.segment(self.state, frame))

    def track(self, direction: str = "forward", progress: Progress | None = None) -> VideoMasks:
        """Propagate all the way and return `results` (every frame's masks)."""
        for _ in self.propagate(direction, progress=progress):
            pass
        return self.results

    def close(self) -> None:
        """Free the session's frames, memories and decoder."""
        self.state.reset_inference_session()
        self.results.clear()
        self.reader.close()

    def __enter__(self) -> VideoSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.size
        return f"VideoSession(frames={self.num_frames}, size={h}x{w}, objects={self.object_ids})"


def track_object(
    tracker: VideoTracker,
    video: VideoLike | VideoReader,
    prompts: dict,
    direction: str = "forward",
    progress: Progress | None = None,
    fps: float | None = None,
) -> Iterator[VideoFrameMasks]:
    """Track prompted objects through a video, yielding each frame's masks (`VideoFrameMasks`).

    prompts: {obj_id: dict(frame=0, points=[(x, y)], labels=[1], box=(x1, y1, x2, y2), mask=(H, W) bool)}
    in pixels of the video frame. direction: "forward", "backward" or "both" (see
    `VideoSession.propagate`). progress(done, total) is called after each frame. Frames are
    decoded lazily and results are not kept, so memory stays bounded on long videos.
    Prompts are checked (and the first frame segmented) now; tracking runs as frames are read.
    """
    prompts = check_video_prompts(prompts)
    session = VideoSession(tracker, video, fps=fps, keep_results=False)
    for obj_id, prompt in prompts.items():
        frame = prompt.get("frame", 0)
        session.add_object(
            frame=frame, points=prompt.get("points"), labels=prompt.get("labels"), box=prompt.get("box"),
            mask=prompt.get("mask"), obj_id=obj_id,
        )  # fmt: skip

    def frames() -> Iterator[VideoFrameMasks]:
        try:
            yield from session.propagate(direction, progress=progress)
        finally:
            session.close()

    return frames()
