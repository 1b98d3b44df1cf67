"""The objects of a `VideoSession` over a core session: `ClickObjects` for a session of clicks
alone (the tracker's `Sam3TrackerVideoInferenceSession`, or EdgeTAM's), `PhraseObjects` for one
that phrases can join (SAM 3's text-prompted `Sam3VideoInferenceSession`, see `concept_video`).
They pick object ids, say which objects are visible, remove, reset and propagate by calling the
core session's methods (never editing its fields), and turn its outputs into `VideoFrameMasks`.

Propagating again after a change (a phrase, a click, a refinement or a removal): on each frame
the backbone runs again (its features are kept only for the frame at hand), then the tracker for
every object and the detection-to-track matching; the detector does not run again on frames it
has already seen with the same phrases (their detections are cached, bounded in bytes, see
sam3_core's `Sam3VideoInferenceSession`). Objects found before keep their ids and are no longer removed by
the hot-start rules meant for fresh detections; new instances can still join. A removed phrase
object is kept as a hidden track, so the detector does not find it again while it is followed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sam3_core.video.planner import Pass

from .concept_video import ConceptVideoTracker, init_concept_state
from .prompts import check_frame, check_max_frames, check_object_id
from .video_io import VideoReader
from .video_results import VideoFrameMasks
from .video_tracker import VideoTracker

__all__ = ["ClickObjects", "ConceptSource", "PhraseObjects", "Progress", "counted", "plan", "session_objects"]

Progress = Callable[[int, int], Any]  # progress(frames done, frames in this propagation)
Record = Callable[[VideoFrameMasks], VideoFrameMasks]  # keeps a frame's masks, returns them
ConceptSource = ConceptVideoTracker | Callable[[], ConceptVideoTracker]  # made on first use


def session_objects(
    tracker: VideoTracker, reader: VideoReader, concept: ConceptSource | None
) -> ClickObjects:
    """The objects of a new session over `reader`: phrases can join where there is a concept tracker
    (`concept`) and the tracker is SAM 3's; else clicks alone."""
    if concept is not None and tracker.name == "SAM 3":
        return PhraseObjects(tracker, init_concept_state(tracker, reader), concept)
    return ClickObjects(tracker, tracker.init_state(reader))


def plan(
    state: Any, direction: str, start_frame: Any, max_frames: Any, num_frames: int, **kwargs: Any
) -> list[Pass]:
    """The core planner's passes (`state.plan_pass`), `start_frame` and `max_frames` checked."""
    start = None if start_frame is None else check_frame(start_frame, num_frames)
    return state.plan_pass(direction, start, check_max_frames(max_frames), **kwargs)


def counted(
    passes: list[Pass], frames: Iterator[VideoFrameMasks], record: Record, progress: Progress | None
) -> Iterator[VideoFrameMasks]:
    """`frames` recorded one by one, `progress(done, total)` called after each."""
    total = sum(len(p) for p in passes)
    for done, frame_masks in enumerate(frames, 1):
        result = record(frame_masks)
        if progress is not None:
            progress(done, total)
        yield result


class ClickObjects:
    """The objects of a session of clicks alone over `state`, the `tracker`'s core session."""

    def __init__(self, tracker: VideoTracker, state: Any) -> None:
        self.tracker = tracker
        self.state = state

    def object_ids(self) -> list[int]:
        return list(self.state.obj_ids)

    def phrases(self) -> list[str]:
        return []

    @property
    def concept(self) -> ConceptVideoTracker:
        """The text-prompted tracker: none here (a ValueError saying why)."""
        raise ValueError(
            f"this session ({self.tracker.name} tracker) has no detector for text prompts; phrases "
            "need SAM 3's video tracker and detector (Sam3 without video_model=...), or use clicks"
        )

    def add_text(self, text: str | list[str], frame: int) -> VideoFrameMasks:
        """Phrases need a concept tracker: a ValueError here (see `concept`)."""
        return self.concept.add_text(self.state, text)

    def check(self, obj_id: Any) -> int:
        """`obj_id` when it is a visible object, or a ValueError listing them."""
        if obj_id not in self.object_ids():
            raise ValueError(f"unknown object id {obj_id!r}; this session tracks objects {self.object_ids()}")
        return obj_id

    def new_id(self, obj_id: Any) -> int:
        """`obj_id` checked and not in use (default: the next free id, from 1)."""
        obj_id = check_object_id(self._next_id() if obj_id is None else obj_id)
        if self._used(obj_id):
            raise ValueError(
                f"object id {obj_id} is already tracked (or was used); use refine() or another id"
            )
        return obj_id

    def _next_id(self) -> int:
        return max([*self.state.obj_ids, 0]) + 1

    def _used(self, obj_id: int) -> bool:
        return obj_id in self.state.obj_ids

    def added(self, obj_id: int) -> None:
        """A new object `obj_id` got its first prompts."""

    def refine(self, obj_id: int, frame: int) -> None:
        """Prompts for `obj_id` on `frame` are coming."""

    def prompt(self, obj_id: int, frame: int, *prompts: Any, replace: bool, new: bool) -> VideoFrameMasks:
        """Prompts (points, labels, box, mask) of `obj_id` on `frame` to the tracker (`new`: its
        first, from `new_id`): every visible object's masks on that frame."""
        points, labels, box, mask = prompts
        result = self.tracker.add_prompts(
            self.state, frame, obj_id, points=points, labels=labels, box=box, mask=mask, replace=replace
        )
        result = self.visible(result)
        if new:
            self.added(obj_id)
        return result

    def visible(self, result: VideoFrameMasks) -> VideoFrameMasks:
        """A tracker result as the user sees it."""
        return result

    def remove(self, obj_id: int) -> None:
        self.state.remove_object(obj_id)

    def forget_text(self, phrase: str) -> list[int]:
        """Take a phrase back: the ids of the objects it had found."""
        if phrase not in self.phrases():
            raise ValueError(f"unknown phrase {phrase!r}; the session's phrases are {self.phrases()}")
        return self.state.forget_text(phrase)

    def reset(self) -> None:
        self.state.reset_inference_session()

    def changed(self) -> None:
        """Prompts changed."""

    def propagate(
        self,
        direction: str,
        start_frame: Any,
        max_frames: Any,
        num_frames: int,
        record: Record,
        progress: Progress | None,
    ) -> Iterator[VideoFrameMasks]:
        """Every object through the planned passes (checked when iterated), recorded."""
        if not self.object_ids():
            raise ValueError("no objects to track; add one with add_object(frame=..., points=...) first")
        if not self.state.prompted_frames(None):
            raise ValueError("no object has prompts; add points, a box or a mask first")
        passes = plan(self.state, direction, start_frame, max_frames, num_frames)
        yield from counted(passes, self._frames(passes, record), record, progress)

    def _frames(self, passes: list[Pass], record: Record) -> Iterator[VideoFrameMasks]:
        for p in passes:
            if self.state.has_pending_prompts():  # prompts added but not segmented yet
                record(self.tracker.segment(self.state, p.start))
            yield from self.tracker.propagate(self.state, p.start, p.max_frames, p.reverse)


class PhraseObjects(ClickObjects):
    """The objects of a session that phrases can join: `state` is a text-prompted core session
    (`init_concept_state`); `source` the concept tracker or a function making it on first use.
    Keeps the frames phrases were added on, and the last `add_text`'s output while still current
    (the next forward pass from that frame continues it)."""

    def __init__(self, tracker: VideoTracker, state: Any, source: ConceptSource) -> None:
        super().__init__(tracker, state)
        self._source = source
        self._text_frames: set[int] = set()  # frames phrases were added on
        self._preview: Any = None  # (frame, core output) of the last add_text, while still current

    @property
    def concept(self) -> ConceptVideoTracker:
        """The text-prompted tracker (made on first use)."""
        if not isinstance(self._source, ConceptVideoTracker):
            self._source = self._source()
        return self._source

    def object_ids(self) -> list[int]:
        return [o for o in self.state.obj_ids if o not in self.state.hidden_obj_ids]

    def phrases(self) -> list[str]:
        return self.state.active_phrases

    def _next_id(self) -> int:
        return self.state.next_obj_id()

    def _used(self, obj_id: int) -> bool:
        return obj_id in self.state.obj_ids or self.state.obj_id_used(obj_id)

    def added(self, obj_id: int) -> None:
        self.state.add_clicked_object(obj_id)  # beside the phrases' objects (their ids continue above it)

    def refine(self, obj_id: int, frame: int) -> None:
        self.state.refine(obj_id, frame)  # a phrase object's detection mask on `frame` gives way

    def visible(self, result: VideoFrameMasks) -> VideoFrameMasks:
        """Hidden objects out; phrase objects carry their phrase and detection score."""
        state = self.state
        if not state.prompts:
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

    def remove(self, obj_id: int) -> None:
        """A phrase object is kept as a hidden track; a clicked one goes."""
        self.check(obj_id)
        if self.state.phrase_of(obj_id) is not None:
            self.state.hide_object(obj_id)
        else:
            self.state.remove_object(obj_id)

    def reset(self) -> None:
        self.state.reset_state()
        self._text_frames.clear()
        self._preview = None

    def changed(self) -> None:
        self._preview = None

    def add_text(self, text: str | list[str], frame: int) -> VideoFrameMasks:
        """Register phrases, then detect and track on `frame`: its objects at once."""
        concept = self.concept
        concept.add_text(self.state, text)
        out = concept.step(self.state, frame)
        self._text_frames.add(frame)
        self._preview = (frame, out)
        return concept.frame_masks(self.state, out)

    def propagate(
        self,
        direction: str,
        start_frame: Any,
        max_frames: Any,
        num_frames: int,
        record: Record,
        progress: Progress | None,
    ) -> Iterator[VideoFrameMasks]:
        """With phrases: the passes planned now (the backward pass of "both" starts one frame before
        the start, the forward pass did it), run when iterated; else as clicks alone."""
        if not self.phrases():
            return super().propagate(direction, start_frame, max_frames, num_frames, record, progress)
        passes = plan(
            self.state,
            direction,
            start_frame,
            max_frames,
            num_frames,
            also_prompted=self._text_frames,
            repeat_start=False,
        )
        return counted(passes, self._phrase_frames(passes), record, progress)

    def _phrase_frames(self, passes: list[Pass]) -> Iterator[VideoFrameMasks]:
        concept, state = self.concept, self.state
        for first, reverse, frames in ((p.start, p.reverse, list(p.frames)) for p in passes):
            preview, self._preview = self._preview, None
            if not reverse and preview is not None and preview[0] == first:
                # continue from the frame add_text just processed, as one uninterrupted pass
                yield concept.frame_masks(state, preview[1])
                first, frames = first + 1, frames[1:]
                if not frames:
                    continue
            elif state.visited_any(frames):
                state.protect_found_objects()  # propagating again: what was found before stays
            start, span = (first + 1, len(frames)) if reverse else (first, len(frames) - 1)
            for out in concept.propagate(state, start, max_frames=span, reverse=reverse):
                yield concept.frame_masks(state, out)
