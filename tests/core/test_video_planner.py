"""The propagation planner: which frames a pass visits, one convention both ways."""

from __future__ import annotations

import itertools

import pytest
from sam3_core.video.planner import Pass, plan_pass, plan_passes, reverse_pass_before


def frames(p: Pass | None) -> list[int]:
    return [] if p is None else list(p)


# ---------------------------------------------------------------------------------------------
# One pass
# ---------------------------------------------------------------------------------------------


def test_forward_pass_includes_its_start_and_goes_max_frames_beyond():
    assert frames(plan_pass(10, 4, 2)) == [4, 5, 6]
    assert frames(plan_pass(10, 4)) == [4, 5, 6, 7, 8, 9]
    assert frames(plan_pass(10, 4, 0)) == [4]


def test_reverse_pass_includes_its_start_too():
    assert frames(plan_pass(10, 4, 2, reverse=True)) == [4, 3, 2]
    assert frames(plan_pass(10, 4, reverse=True)) == [4, 3, 2, 1, 0]
    assert frames(plan_pass(10, 0, reverse=True)) == [0]


def test_passes_are_clamped_to_the_video():
    assert frames(plan_pass(10, 8, 5)) == [8, 9]
    assert frames(plan_pass(10, 2, 5, reverse=True)) == [2, 1, 0]
    assert frames(plan_pass(1, 0)) == [0]


def test_pass_reports_start_and_span():
    p = plan_pass(10, 7, 3, reverse=True)
    assert (p.start, p.max_frames, len(p), p.reverse) == (7, 3, 4, True)
    assert p.iterator_args() == (7, 3)
    assert p.iterator_args(reverse_starts_before=True) == (8, 4)
    assert plan_pass(10, 3, 3).iterator_args(reverse_starts_before=True) == (3, 3)


@pytest.mark.parametrize(
    "num_frames, start, max_frames",
    [(10, 10, None), (10, -1, None), (10, 0, -1), (0, 0, None), (10, 1.5, None), (10, True, None)],
)
def test_bad_pass_arguments_are_refused(num_frames, start, max_frames):
    with pytest.raises(ValueError):
        plan_pass(num_frames, start, max_frames)


def _tracker_reference(n, start, max_frames, reverse):
    # the reference's Sam3TrackerVideoModel.propagate_in_video_iterator (start frame included)
    span = n if max_frames is None else max_frames
    if reverse:
        end = max(start - span, 0)
        return list(range(start, end - 1, -1)) if start > 0 else []
    return list(range(start, min(start + span, n - 1) + 1))


def _concept_reference(n, start, max_frames, reverse):
    # the reference's Sam3VideoModel.propagate_in_video_iterator (reverse starts before `start`)
    span = n if max_frames is None else max_frames
    if reverse:
        return list(range(start - 1, max(start - span, 0) - 1, -1))
    return list(range(start, min(start + span, n - 1) + 1))


def test_plan_pass_equals_the_reference_iterations():
    """Every start and span on short videos: the planner gives the reference's frame orders, the
    tracker's (but for its empty reverse pass from frame 0) and the text-prompted model's."""
    for n, max_frames, reverse in itertools.product(range(1, 6), [None, 0, 1, 2, 7], [False, True]):
        for start in range(n):
            expected = _tracker_reference(n, start, max_frames, reverse)
            got = frames(plan_pass(n, start, max_frames, reverse))
            assert got == (expected if (start, reverse) != (0, True) else [0]), (n, start, max_frames)
        for start in range(n + reverse):
            expected = _concept_reference(n, start, max_frames, reverse)
            got = frames(
                reverse_pass_before(n, start, max_frames) if reverse else plan_pass(n, start, max_frames)
            )
            assert got == expected, (n, start, max_frames, reverse)
            if got:  # and back: the arguments that give this pass
                p = reverse_pass_before(n, start, max_frames) if reverse else plan_pass(n, start, max_frames)
                s, m = p.iterator_args(reverse_starts_before=True)
                assert frames(reverse_pass_before(n, s, m) if reverse else plan_pass(n, s, m)) == got


def test_reverse_pass_before_is_empty_at_frame_0_or_span_0():
    assert reverse_pass_before(5, 0) is None
    assert reverse_pass_before(5, 3, 0) is None
    assert frames(reverse_pass_before(5, 5)) == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="out of range"):
        reverse_pass_before(5, 6)


# ---------------------------------------------------------------------------------------------
# A propagation's passes
# ---------------------------------------------------------------------------------------------


def plan(*args, **kwargs) -> list[tuple[bool, list[int]]]:
    return [(p.reverse, list(p)) for p in plan_passes(*args, **kwargs)]


def test_forward_starts_at_the_earliest_prompt_backward_at_the_latest():
    assert plan("forward", 8, [5, 2]) == [(False, [2, 3, 4, 5, 6, 7])]
    assert plan("backward", 8, [5, 2]) == [(True, [5, 4, 3, 2, 1, 0])]


def test_both_goes_back_from_where_forward_started():
    assert plan("both", 6, [2, 4]) == [(False, [2, 3, 4, 5]), (True, [2, 1, 0])]
    assert plan("both", 6, [2, 4], repeat_start=False) == [(False, [2, 3, 4, 5]), (True, [1, 0])]


def test_both_from_frame_0_has_no_backward_pass():
    assert plan("both", 4, [0]) == [(False, [0, 1, 2, 3])]
    assert plan("both", 4, [0], repeat_start=False) == [(False, [0, 1, 2, 3])]


def test_start_frame_and_max_frames_apply_to_each_pass():
    assert plan("both", 10, [1], start_frame=5, max_frames=2) == [(False, [5, 6, 7]), (True, [5, 4, 3])]
    assert plan("both", 10, [], start_frame=5, max_frames=2, repeat_start=False) == [
        (False, [5, 6, 7]),
        (True, [4, 3]),
    ]
    assert plan("backward", 10, [8], start_frame=1, max_frames=5) == [(True, [1, 0])]
    assert plan("forward", 3, [1], max_frames=0) == [(False, [1])]


def test_both_with_max_frames_0_and_no_repeat_has_one_pass():
    assert plan("both", 10, [4], max_frames=0, repeat_start=False) == [(False, [4])]


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match="direction must be one of"):
        plan_passes("sideways", 5, [0])
    with pytest.raises(ValueError, match="no prompted frame"):
        plan_passes("forward", 5, [])
    with pytest.raises(ValueError, match="out of range"):
        plan_passes("forward", 5, [], start_frame=5)
    with pytest.raises(ValueError, match="max_frames"):
        plan_passes("forward", 5, [0], max_frames=-1)
