"""Which frames a propagation visits: one convention for both directions.

A pass starts at its start frame, visits it first, and goes at most `max_frames` frames beyond it
(forwards, or backwards with `reverse`), clamped to the video: `max_frames=n` visits up to `n + 1`
frames, `None` goes to the end (or to frame 0). Forwards and backwards alike, the start frame is
part of the pass.

    plan_pass(10, start=4, max_frames=2)                -> frames 4, 5, 6
    plan_pass(10, start=4, max_frames=2, reverse=True)  -> frames 4, 3, 2
    plan_passes("both", 10, prompted_frames=[3, 7])     -> 3..9, then 3..0

The public iterators keep the reference's arguments, which differ in one place: the
text-prompted model's reverse pass (`Sam3VideoModel.propagate_in_video_iterator(start_frame_idx=s,
reverse=True)`) starts one frame before `s`. `reverse_pass_before` turns those arguments into a
pass of this convention, and `Pass.iterator_args` gives them back for a planned pass. The tracker's
iterator (the reference's too) visits nothing on a reverse pass from frame 0; it says so itself.

Pure: integers in, ranges out; no session or tensor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..scalars import is_int

__all__ = ["DIRECTIONS", "Pass", "plan_pass", "plan_passes", "reverse_pass_before"]

DIRECTIONS = ("forward", "backward", "both")


@dataclass(frozen=True)
class Pass:
    """One propagation pass: its frames in visiting order (the first is its start)."""

    reverse: bool  # going backwards in time
    frames: range  # e.g. range(4, 1, -1) for 4, 3, 2

    @property
    def start(self) -> int:
        """The first frame visited (a pass is never empty)."""
        return self.frames[0]

    @property
    def max_frames(self) -> int:
        """How many frames the pass goes beyond its start (the iterators' `max_frame_num_to_track`)."""
        return len(self.frames) - 1

    def iterator_args(self, reverse_starts_before: bool = False) -> tuple[int, int]:
        """(start_frame_idx, max_frame_num_to_track) that make an iterator visit this pass.

        reverse_starts_before: the iterator's reverse pass starts one frame before its
        `start_frame_idx` (the text-prompted model's, see the module doc); a reverse pass from `s`
        is then asked for as (s + 1, its length).
        """
        if self.reverse and reverse_starts_before:
            return self.start + 1, len(self.frames)
        return self.start, self.max_frames

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[int]:
        return iter(self.frames)


def _check_int(name: str, value: object, low: int) -> int:
    """`value` as a Python int (numpy's integers accepted, bools refused); ValueError below `low`."""
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def plan_pass(num_frames: int, start: int, max_frames: int | None = None, reverse: bool = False) -> Pass:
    """The pass from `start` (included) at most `max_frames` frames on, clamped to 0..num_frames - 1.

    Raises ValueError for a start outside the video or a negative `max_frames`.
    """
    num_frames, start = _check_int("num_frames", num_frames, 1), _check_int("start", start, 0)
    if start >= num_frames:
        raise ValueError(f"start frame {start} is out of range; the video has frames 0..{num_frames - 1}")
    span = num_frames if max_frames is None else _check_int("max_frames", max_frames, 0)
    if reverse:
        return Pass(True, range(start, max(start - span, 0) - 1, -1))
    return Pass(False, range(start, min(start + span, num_frames - 1) + 1))


def reverse_pass_before(num_frames: int, start: int, max_frames: int | None = None) -> Pass | None:
    """The text-prompted iterator's reverse pass (as the reference): from `start - 1` down to
    `max(start - max_frames, 0)`, i.e. `max_frames` frames, the first one before `start`.

    start: 0..num_frames (num_frames: the whole video backwards). None when the pass is empty
    (`start` 0, or `max_frames` 0).
    """
    num_frames = _check_int("num_frames", num_frames, 1)
    if not is_int(start) or not 0 <= start <= num_frames:
        raise ValueError(f"start frame {start!r} is out of range for a video of {num_frames} frames")
    start = int(start)
    span = num_frames if max_frames is None else _check_int("max_frames", max_frames, 0)
    if start == 0 or span == 0:
        return None
    return plan_pass(num_frames, start - 1, span - 1, reverse=True)


def plan_passes(
    direction: str,
    num_frames: int,
    prompted_frames: Iterable[int],
    start_frame: int | None = None,
    max_frames: int | None = None,
    repeat_start: bool = True,
) -> list[Pass]:
    """The passes of a propagation in `direction`, each at most `max_frames` beyond its start.

    - "forward": from `start_frame` (default: the earliest prompted frame) to the end;
    - "backward": from `start_frame` (default: the latest prompted frame) to frame 0;
    - "both": forward from `start_frame` (default: the earliest prompted frame), then backward
      from it. The start frame is visited again by the backward pass with `repeat_start`, else the
      backward pass begins one frame before it (the same limit: `max_frames` beyond the start).
      There is no backward pass when the start is frame 0 (nothing before it).

    prompted_frames: frames holding prompts; needed (non-empty) unless `start_frame` is given.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    prompted = sorted(prompted_frames)
    if start_frame is None and not prompted:
        raise ValueError("nothing to propagate from: no prompted frame and no start_frame")
    forward_start = start_frame if start_frame is not None else prompted[0]
    passes = []
    if direction in ("forward", "both"):
        passes.append(plan_pass(num_frames, forward_start, max_frames))
    if direction == "backward":
        start = start_frame if start_frame is not None else prompted[-1]
        passes.append(plan_pass(num_frames, start, max_frames, reverse=True))
    elif direction == "both" and forward_start > 0:
        backward = plan_pass(num_frames, forward_start, max_frames, reverse=True)
        if not repeat_start:
            backward = Pass(True, backward.frames[1:])
        if len(backward):
            passes.append(backward)
    return passes
