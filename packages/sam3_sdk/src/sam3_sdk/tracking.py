"""One-call video tracking over a `VideoSession`: `track_object` (objects given by clicks, boxes or
masks) and `track_concept` (every instance of a phrase), each yielding per-frame masks lazily."""

from __future__ import annotations

__all__ = ["track_concept", "track_object"]

from collections.abc import Iterator
from typing import Any

from sam3_core.video.planner import plan_pass

from .concept_video import ConceptVideoTracker
from .prompts import check_video_prompts
from .video import DIRECTIONS, Progress, VideoSession
from .video_io import VideoLike, VideoReader, open_video
from .video_results import VideoFrameMasks
from .video_tracker import VideoTracker


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


def track_concept(
    tracker_or_sam: Any,
    video: VideoLike | VideoReader,
    text: str | list[str],
    direction: str = "forward",
    progress: Progress | None = None,
    fps: float | None = None,
) -> Iterator[VideoFrameMasks]:
    """Find every instance of a phrase (or of each phrase of a list) in a video and track them
    all, yielding each frame's `VideoFrameMasks` (stable object ids, `phrases`, detection scores).

    tracker_or_sam: a `ConceptVideoTracker`, or anything holding one as `concept_video_predictor`
    (`Sam3`). direction: "forward" (frame 0 to the end), "backward" (the end to frame 0) or
    "both" (forward, then backward from the end so that objects found late are followed back;
    the frames then come twice, the later result superseding). progress(done, total) per frame.
    Frames are decoded lazily and results are not kept, so memory stays bounded on long videos.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    concepts: ConceptVideoTracker = getattr(tracker_or_sam, "concept_video_predictor", tracker_or_sam)
    if not isinstance(concepts, ConceptVideoTracker):
        raise TypeError(f"expected a ConceptVideoTracker or a Sam3, got {type(tracker_or_sam).__name__}")
    reader = open_video(video, fps=fps)
    state = concepts.init_state(reader, detection_cache_bytes=0)  # one pass: nothing to replay
    concepts.add_text(state, text)
    n = len(reader)
    passes = []  # forward from frame 0; backward from the last frame ("both": from the one before)
    if direction in ("forward", "both"):
        passes.append(plan_pass(n, 0))
    if direction == "backward":
        passes.append(plan_pass(n, n - 1, reverse=True))
    elif direction == "both" and n > 1:
        passes.append(plan_pass(n, n - 2, reverse=True))
    total = sum(len(p) for p in passes)

    def frames() -> Iterator[VideoFrameMasks]:
        done = 0
        try:
            for p in passes:  # the text-prompted iterator starts a reverse pass before its start
                start, max_frames = p.iterator_args(reverse_starts_before=True)
                for out in concepts.propagate(state, start, max_frames, reverse=p.reverse):
                    done += 1
                    result = concepts.frame_masks(state, out)
                    if progress is not None:
                        progress(done, total)
                    yield result
        finally:
            state.reset_state()
            reader.close()

    return frames()
