"""The interactive `VideoSession` (phrases and clicks; add, refine and remove objects; propagate
forwards, backwards or both ways), `track_object` (prompts in, each frame's masks out, nothing
kept) and `track_concept` (phrases in, every instance's masks out, nothing kept).

>>> session = sam.video_session("clip.mp4")
>>> found = session.add_text("person", frame=0)                   # → VideoFrameMasks of frame 0
>>> first = session.add_object(frame=0, points=[(210, 350)])      # a missed object, by a click
>>> session.refine(first.object_ids[0], frame=40, points=[(200, 340), (260, 300)], labels=[1, 0])
>>> session.remove_object(found.object_ids[1])                    # a wrong one
>>> for frame in session.propagate("both", progress=print): ...
>>> session.results.save_coco_json("masks.json")

Propagating again after a change (a phrase, a click, a refinement or a removal): on each frame
the backbone runs again (its features are kept only for the frame at hand), then the tracker for
every object and the detection-to-track matching; the detector does not run again on frames it
has already seen with the same phrases (their detections are cached, bounded in bytes, see
sam3_core's `Sam3VideoInferenceSession`). Objects found before keep their ids and are no longer removed by
the hot-start rules meant for fresh detections; new instances can still join. A removed phrase
object is kept as a hidden track, so the detector does not find it again while it is followed.

The tracking state is the core's session (`state`); this class only turns numpy and PIL in and
out, and calls the state's methods (`prompted_frames`, `plan_pass`, `refine`, ...), never edits
its fields. Propagation passes come from the core's planner (`sam3_core.video.planner`).

Threads: a session may be used from several threads (a server's handler threads), one call at a
time, and one propagation at a time (`propagation_guard`): another propagation or a prompt change
during one is refused with `SessionBusyError` (a RuntimeError). Reading frames and `results` is
allowed meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sam3_core.video.planner import DIRECTIONS, Pass

from .concept_video import ConceptVideoTracker, init_concept_state
from .prompts import MAX_OBJECT_ID, check_object_id, check_video_prompts, is_int
from .propagation_guard import PropagationGuard, SessionBusyError, changes_state
from .video_io import VideoLike, VideoReader, open_video
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

Progress = Callable[[int, int], Any]  # progress(frames done, frames in this propagation)
ConceptSource = ConceptVideoTracker | Callable[[], ConceptVideoTracker]  # made on first use


class VideoSession:
    """Interactive tracking on one video: find objects by phrases, add objects by clicks, refine
    them on any frame, remove them, and propagate forwards, backwards or both ways.

    Frames are decoded on demand (never all in memory); the tracker keeps only a bounded window
    of past outputs. `results` keeps every frame's masks compactly (COCO RLE) for display and export.
    concept: the `ConceptVideoTracker` phrases use (or a function making it on first use); None
    when the tracker has no detector (EdgeTAM), and `add_text` then says so.
    Object ids of clicks and phrases never collide; see the module doc for what propagating
    again recomputes.
    """

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
        self._concept_source = concept if tracker.name == "SAM 3" else None
        self.state = (
            init_concept_state(tracker, self.reader)
            if self._concept_source is not None
            else tracker.init_state(self.reader)
        )
        self.results = VideoMasks(size=self.reader.size, num_frames=len(self.reader), fps=self.reader.fps)
        self.stale = False  # prompts changed since the last propagation
        self._text_frames: set[int] = set()  # frames phrases were added on
        self._preview: Any = None  # (frame, core output) of the last add_text, while still current
        self._guard = PropagationGuard("VideoSession")  # the lock; one propagation at a time

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
    def _text(self) -> bool:
        """Whether the state can take phrases (SAM 3's tracker: a text-prompted core session)."""
        return self._concept_source is not None

    @property
    def object_ids(self) -> list[int]:
        hidden = self.state.hidden_obj_ids if self._text else set()
        return [o for o in self.state.obj_ids if o not in hidden]

    @property
    def phrases(self) -> list[str]:
        """The phrases added (and not taken back), in order."""
        return self.state.active_phrases if self._text else []

    @property
    def concept(self) -> ConceptVideoTracker:
        """The text-prompted tracker (made on first use)."""
        if self._concept_source is None:
            raise ValueError(
                f"this session ({self.tracker.name} tracker) has no detector for text prompts; phrases "
                "need SAM 3's video tracker and detector (Sam3 without video_model=...), or use clicks"
            )
        if not isinstance(self._concept_source, ConceptVideoTracker):
            self._concept_source = self._concept_source()
        return self._concept_source

    def _has_phrases(self) -> bool:
        return bool(self.phrases)

    def frame(self, frame_idx: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one frame."""
        return self.reader[self.reader.check_index(frame_idx)]

    def prompted_frames(self, obj_id: int | None = None) -> list[int]:
        """Frames that hold prompts (of one object, or of any)."""
        return self.state.prompted_frames(obj_id)

    # -- prompts ------------------------------------------------------------------------------

    def _check_frame(self, frame: Any) -> int:
        if not is_int(frame):
            raise ValueError(f"frame must be an int frame index, got {frame!r}")
        if not 0 <= frame < self.num_frames:
            raise ValueError(
                f"frame {int(frame)} is past the end of the video; expected a frame in 0..{self.num_frames - 1}"
            )
        return int(frame)

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
        mask: (H, W) bool. obj_id: an int in 1..65535 not in use (default: the next free id, from
        1); 0 and negative ids are refused (0 is the index masks' background).
        Returns every object's masks on that frame.
        """
        state = self.state
        if obj_id is None:
            obj_id = state.next_obj_id() if self._text else max([*state.obj_ids, 0]) + 1
        obj_id = check_object_id(obj_id)
        if obj_id in state.obj_ids or (self._text and state.obj_id_used(obj_id)):
            raise ValueError(
                f"object id {obj_id} is already tracked (or was used); use refine() or another id"
            )
        result = self._prompt(obj_id, frame, points, labels, box, mask, replace=True)
        if self._text:  # beside the phrases' objects (their ids continue above it)
            state.add_clicked_object(obj_id)
        return result

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
        self._check_obj(obj_id)
        if self._text:  # a phrase object's detection mask on `frame` gives way to the prompts
            self.state.refine(obj_id, self._check_frame(frame))
        return self._prompt(obj_id, frame, points, labels, box, mask, replace=replace)

    def _check_obj(self, obj_id: Any) -> int:
        if obj_id not in self.object_ids:
            raise ValueError(f"unknown object id {obj_id!r}; this session tracks objects {self.object_ids}")
        return obj_id

    def _prompt(
        self, obj_id: int, frame: Any, points: Any, labels: Any, box: Any, mask: Any, replace: bool
    ) -> VideoFrameMasks:
        frame = self._check_frame(frame)
        result = self.tracker.add_prompts(
            self.state, frame, obj_id, points=points, labels=labels, box=box, mask=mask, replace=replace
        )
        self._changed()
        return self._record(self._with_phrases(result))

    def _with_phrases(self, result: VideoFrameMasks) -> VideoFrameMasks:
        """A tracker result on a state with phrases: hidden objects out; phrase objects carry their
        phrase and detection score."""
        state = self.state
        if not self._text or not state.prompts:
            return result
        keep = [i for i, o in enumerate(result.object_ids) if o not in state.hidden_obj_ids]
        ids = [result.object_ids[i] for i in keep]
        phrases = {o: state.phrase_of(o) for o in ids if state.phrase_of(o) is not None}
        scores = np.array(
            [
                state.obj_id_to_score.get(o, s) if o in phrases else s
                for o, s in zip(ids, result.scores[keep])
            ],
            np.float32,
        )
        return VideoFrameMasks(result.frame_idx, ids, result.masks[keep], scores, phrases=phrases)

    @changes_state
    def remove_object(self, obj_id: int) -> None:
        """Stop tracking an object: its prompts, memories and stored results go. An object found by
        a phrase is dropped from every frame and kept as a hidden track, so that the detector does
        not find it again while the tracker follows it."""
        state = self.state
        if self._text:
            self._check_obj(obj_id)
        if self._text and state.phrase_of(obj_id) is not None:
            state.hide_object(obj_id)
        else:
            state.remove_object(obj_id)
        self.results.remove_object(obj_id)
        self._changed()

    @changes_state
    def add_text(self, text: str | list[str], frame: int = 0) -> VideoFrameMasks:
        """Find every instance of a phrase (or of each phrase of a list) on `frame` and start
        tracking them; more instances join as `propagate` finds them on other frames.

        Returns `frame`'s objects at once (ids, masks, scores, `phrases`), before any propagation.
        Raises ValueError when the tracker has no detector (EdgeTAM).
        """
        frame = self._check_frame(frame)
        concept = self.concept
        concept.add_text(self.state, text)
        out = concept.step(self.state, frame)
        self._changed()
        self._text_frames.add(frame)
        self._preview = (frame, out)
        return self._record(concept.frame_masks(self.state, out))

    @changes_state
    def remove_text(self, phrase: str) -> None:
        """Take a phrase back: the objects it found leave every frame (refined ones too); the
        detector no longer looks for it."""
        if phrase not in self.phrases:
            raise ValueError(f"unknown phrase {phrase!r}; the session's phrases are {self.phrases}")
        for obj_id in self.state.forget_text(phrase):
            self.results.remove_object(obj_id)
        self._changed()

    @changes_state
    def reset(self) -> None:
        """Forget every object, phrase, prompt and result (the video stays open)."""
        if self._text:
            self.state.reset_state()
        else:
            self.state.reset_inference_session()
        self.results.clear()
        self._text_frames.clear()
        self._preview = None
        self.stale = False

    def _changed(self) -> None:
        self.stale = True
        self._preview = None

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
        with self._guard.lock:
            if self._has_phrases():
                steps = self._propagate_concept(direction, start_frame, max_frames, progress)
            else:
                steps = self._propagate_tracker(direction, start_frame, max_frames, progress)
        return self._guard.run(steps)

    def _plan(self, direction: str, start_frame: Any, max_frames: Any, **kwargs: Any) -> list[Pass]:
        if start_frame is not None:
            start_frame = self._check_frame(start_frame)
        if max_frames is not None and (not is_int(max_frames) or max_frames < 0):
            raise ValueError(f"max_frames must be a non-negative int, got {max_frames!r}")
        max_frames = None if max_frames is None else int(max_frames)
        return self.state.plan_pass(direction, start_frame, max_frames, **kwargs)

    def _propagate_tracker(
        self, direction: str, start_frame: int | None, max_frames: int | None, progress: Progress | None
    ) -> Iterator[VideoFrameMasks]:
        if not self.object_ids:
            raise ValueError("no objects to track; add one with add_object(frame=..., points=...) first")
        if not self.prompted_frames():
            raise ValueError("no object has prompts; add points, a box or a mask first")
        passes = self._plan(direction, start_frame, max_frames)
        total, done = sum(len(p) for p in passes), 0
        for p in passes:
            if self.state.has_pending_prompts():  # prompts added but not segmented yet
                self._record(self.tracker.segment(self.state, p.start))
            for frame_masks in self.tracker.propagate(self.state, p.start, p.max_frames, p.reverse):
                done += 1
                result = self._record(frame_masks)
                if progress is not None:
                    progress(done, total)
                yield result
        self.stale = False

    def _propagate_concept(
        self, direction: str, start_frame: int | None, max_frames: int | None, progress: Progress | None
    ) -> Iterator[VideoFrameMasks]:
        # the backward pass of "both" starts one frame before the start (the forward pass did it)
        passes = self._plan(
            direction, start_frame, max_frames, also_prompted=self._text_frames, repeat_start=False
        )
        return self._run_concept_passes(passes, progress)

    def _run_concept_passes(self, passes: list[Pass], progress: Progress | None) -> Iterator[VideoFrameMasks]:
        concept, state = self.concept, self.state
        total = sum(len(p) for p in passes)
        done = 0

        def emit(out: Any) -> VideoFrameMasks:
            nonlocal done
            done += 1
            result = self._record(concept.frame_masks(state, out))
            if progress is not None:
                progress(done, total)
            return result

        for first, reverse, frames in ((p.start, p.reverse, list(p.frames)) for p in passes):
            preview, self._preview = self._preview, None
            if not reverse and preview is not None and preview[0] == first:
                # continue from the frame add_text just processed, as one uninterrupted pass
                yield emit(preview[1])
                first, frames = first + 1, frames[1:]
                if not frames:
                    continue
            elif state.visited_any(frames):
                state.protect_found_objects()  # propagating again: what was found before stays
            start, span = (first + 1, len(frames)) if reverse else (first, len(frames) - 1)
            for out in concept.propagate(state, start, max_frames=span, reverse=reverse):
                yield emit(out)
        self.stale = False

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
