"""The interactive `VideoSession`: phrases and clicks; add, refine and remove objects; propagate
forwards, backwards or both ways.

>>> session = sam.video_session("clip.mp4")
>>> found = session.add_text("person", frame=0)                   # → VideoFrameMasks of frame 0
>>> first = session.add_object(frame=0, points=[(210, 350)])      # a missed object, by a click
>>> session.refine(first.object_ids[0], frame=40, points=[(200, 340), (260, 300)], labels=[1, 0])
>>> session.remove_object(found.object_ids[1])                    # a wrong one
>>> for frame in session.propagate("both", progress=print): ...
>>> session.results.save_coco_json("masks.json")

The tracking state is the core's session (`state`); this class turns numpy and PIL in and out and
keeps `results`; `video_objects` picks ids, removes and propagates by the state's methods (never
editing its fields), and says what propagating again recomputes.

Threads: a session may be used from several threads (a server's handlers), one call at a time, and
one propagation at a time (`propagation_guard`): another propagation or a prompt change during one
is refused with `SessionBusyError` (a RuntimeError); reading frames and `results` is allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sam3_core.video.planner import DIRECTIONS

from .concept_video import ConceptVideoTracker
from .prompts import MAX_OBJECT_ID, check_direction, check_frame, check_video_prompts
from .propagation_guard import PropagationGuard, SessionBusyError, changes_state
from .video_io import VideoLike, VideoReader, open_video
from .video_objects import ConceptSource, Progress, session_objects
from .video_results import VideoFrameMasks, VideoMasks, object_color
from .video_tracker import ModelFrames, VideoTracker

__all__ = [
    "DIRECTIONS",
    "MAX_OBJECT_ID",
    "ModelFrames",
    "SessionBusyError",
    "VideoFrameMasks",
    "VideoMasks",
    "VideoSession",
    "check_video_prompts",
    "object_color",
]


class VideoSession:
    """Interactive tracking on one video: find objects by phrases, add objects by clicks (their ids
    never collide), refine them on any frame, remove them, and propagate forwards, backwards or both.

    Frames are decoded on demand; the tracker keeps a bounded window of past outputs; `results`
    keeps every frame's masks compactly (COCO RLE). concept: the `ConceptVideoTracker` phrases use
    (or a function making it on first use); None when the tracker has no detector (EdgeTAM)."""

    def __init__(
        self,
        tracker: VideoTracker,
        video: VideoLike | VideoReader,
        fps: float | None = None,
        keep_results: bool = True,
        concept: ConceptSource | None = None,
    ) -> None:
        self.tracker = tracker
        self.reader = open_video(video, fps=fps)
        self.model = tracker.model
        self.processor = tracker.processor
        self.keep_results = keep_results
        self._objects = session_objects(tracker, self.reader, concept)  # clicks, or phrases too
        self.state = self._objects.state
        self.results = VideoMasks(size=self.reader.size, num_frames=len(self.reader), fps=self.reader.fps)
        self.stale = False  # prompts changed since the last propagation
        self._guard = PropagationGuard("VideoSession")  # the lock; one propagation at a time

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
        return self._objects.object_ids()

    @property
    def phrases(self) -> list[str]:
        """The phrases added (and not taken back), in order."""
        return self._objects.phrases()

    @property
    def concept(self) -> ConceptVideoTracker:
        """The text-prompted tracker (made on first use)."""
        return self._objects.concept

    def frame(self, frame_idx: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one frame."""
        return self.reader[self.reader.check_index(frame_idx)]

    def prompted_frames(self, obj_id: int | None = None) -> list[int]:
        """Frames that hold prompts (of one object, or of any)."""
        return self.state.prompted_frames(obj_id)

    @changes_state
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
        mask: (H, W) bool; obj_id: an unused int in 1..65535 (default: the next free id, from 1; 0 is
        the index masks' background). Returns every object's masks on that frame.
        """
        return self._prompt(self._objects.new_id(obj_id), frame, points, labels, box, mask, new=True)

    @changes_state
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
        earlier prompts on that frame; otherwise the clicks are added to them.

        For an object found by a phrase, the correction becomes a prompted frame of it (the mask
        there is the one these prompts give) and from then on it is tracked from its prompts: the
        hot-start rules no longer remove it. It keeps its phrase.
        """
        self._objects.refine(self._objects.check(obj_id), check_frame(frame, self.num_frames))
        return self._prompt(obj_id, frame, points, labels, box, mask, replace=replace)

    def _prompt(self, obj_id: int, frame: Any, *prompts: Any, replace: bool = True, new: bool = False) -> Any:
        frame = check_frame(frame, self.num_frames)
        result = self._objects.prompt(obj_id, frame, *prompts, replace=replace, new=new)
        self._changed()
        return self._record(result)

    @changes_state
    def remove_object(self, obj_id: int) -> None:
        """Stop tracking an object: its prompts, memories and stored results go. A phrase's object
        leaves every frame but stays a hidden track, so the detector does not find it again."""
        self._objects.remove(obj_id)
        self.results.remove_object(obj_id)
        self._changed()

    @changes_state
    def add_text(self, text: str | list[str], frame: int = 0) -> VideoFrameMasks:
        """Find every instance of a phrase (or of each phrase of a list) on `frame` and start
        tracking them; more instances join as `propagate` finds them on other frames.

        Returns `frame`'s objects at once (ids, masks, scores, `phrases`), before any propagation.
        Raises ValueError when the tracker has no detector (EdgeTAM).
        """
        frame = check_frame(frame, self.num_frames)
        result = self._objects.add_text(text, frame)
        self.stale = True
        return self._record(result)

    @changes_state
    def remove_text(self, phrase: str) -> None:
        """Take a phrase back: the objects it found leave every frame (refined ones too); the
        detector no longer looks for it."""
        for obj_id in self._objects.forget_text(phrase):
            self.results.remove_object(obj_id)
        self._changed()

    @changes_state
    def reset(self) -> None:
        """Forget every object, phrase, prompt and result (the video stays open)."""
        self._objects.reset()
        self.results.clear()
        self.stale = False

    def _changed(self) -> None:
        self.stale = True
        self._objects.changed()

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
        check_direction(direction)
        with self._guard.lock:
            args = (direction, start_frame, max_frames, self.num_frames, self._record, progress)
            steps = self._until_done(self._objects.propagate(*args))
        return self._guard.run(steps)

    def _until_done(self, frames: Iterator[VideoFrameMasks]) -> Iterator[VideoFrameMasks]:
        yield from frames
        self.stale = False  # every frame of the propagation is done

    def track(self, direction: str = "forward", progress: Progress | None = None) -> VideoMasks:
        """Propagate all the way and return `results` (every frame's masks)."""
        for _ in self.propagate(direction, progress=progress):
            pass
        return self.results

    def close(self) -> None:
        """Free the session's frames, memories and decoder. A propagation under way in another
        thread stops at its next frame with a RuntimeError."""
        with self._guard.lock:
            self._guard.close()
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
