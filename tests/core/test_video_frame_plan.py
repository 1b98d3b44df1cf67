"""One frame in three calls (the session plans it, the engine computes it, the session commits
it) and the tracker session's intent methods (prompted_frames, refine, plan_pass, ...)."""

from __future__ import annotations

import pytest
import torch
import video_scenarios as vs


def _session(processor, num_frames=6):
    session = processor.init_video_session(video=vs.video(num_frames), inference_device="cpu")
    processor.add_inputs_to_inference_session(
        session, 0, 1, input_points=[[[vs.ELLIPSE]]], input_labels=[[[1]]]
    )
    return session


def test_plan_names_each_objects_action_and_memory(video_model, video_processor):
    session = _session(video_processor)
    policy = video_model.memory_policy
    plan = session.plan_frame(0, reverse=False, streaming=False, policy=policy)
    (first,) = plan.objects
    assert (first.action, first.first_prompt, first.memory, first.uses_prompts) == (
        "prompt",
        True,
        None,
        True,
    )
    assert first.points.shape == (1, 1, 1, 2)
    video_model(inference_session=session, frame_idx=0)
    assert not session.has_pending_prompts()

    # the prompted frame again: its stored output is reused; the next frame is tracked from memory
    assert [o.action for o in session.plan_frame(0, False, False, policy).objects] == ["reuse"]
    (tracked,) = session.plan_frame(1, True, False, policy).objects
    assert (tracked.action, tracked.reverse) == ("track", True)
    assert [t for t, _ in tracked.memory.memories] == [0]  # the prompted frame's memory, slot 0
    video_model(inference_session=session, frame_idx=1)

    # a click on the tracked frame is a correction: prompts and memory; a new object: first prompt
    video_processor.add_inputs_to_inference_session(
        session, 1, [1, 2], input_points=[[[vs.ELLIPSE], [vs.RECTANGLE]]], input_labels=[[[1], [1]]]
    )
    correction, new = session.plan_frame(1, False, False, policy).objects
    assert (correction.action, correction.first_prompt, correction.memory is not None) == (
        "prompt",
        False,
        True,
    )
    assert (new.action, new.first_prompt, new.memory) == ("prompt", True, None)
    # no memory policy (num_maskmem 0): nothing is read
    assert session.plan_frame(1, False, False, None).objects[0].memory is None


def test_forward_is_plan_step_commit(video_model, video_processor):
    """The model's frame equals the three calls by hand, and what the commit stored."""
    by_hand, by_model = _session(video_processor), _session(video_processor)
    for session in (by_hand, by_model):
        video_model(inference_session=session, frame_idx=0)
    with torch.inference_mode():
        plan = by_hand.plan_frame(1, False, False, video_model.memory_policy)
        maps, pos = video_model.frame_features(by_hand, 1)
        result = video_model.engine.step(plan, maps, pos)
        masks, scores = by_hand.commit(plan, result)
    out = video_model(inference_session=by_model, frame_idx=1)
    assert torch.equal(torch.cat(masks), out.pred_masks)
    assert torch.equal(torch.cat(scores).squeeze(-1), out.object_score_logits)
    assert set(result.memories) == {0}
    assert torch.equal(by_hand.object_outputs(0)[1][1]["maskmem_features"], result.memories[0][0])
    assert by_hand.was_tracked(0, 1)


def test_both_clicks_and_a_mask_on_a_frame_are_refused(video_model, video_processor):
    session = _session(video_processor)
    session.add_object_prompt(1, 0, mask=torch.ones(1, 1, 224, 224))
    session.add_point_inputs(
        0, 0, {"point_coords": torch.zeros(1, 1, 1, 2), "point_labels": torch.ones(1, 1)}
    )
    with pytest.raises(ValueError, match="both clicks and a mask on frame 0"):
        session.plan_frame(0, False, False, video_model.memory_policy)


def test_object_prompts_replace_or_add_and_one_kind_replaces_the_other(video_processor):
    session = _session(video_processor)
    point = torch.tensor([[[[5.0, 6.0]]]])
    session.add_object_prompt(1, 0, points=point, labels=torch.ones(1, 1, 1), replace=False)
    points, mask = session.prompts_on(0, 0)
    assert points["point_coords"].shape == (1, 1, 2, 2) and mask is None
    session.add_object_prompt(1, 0, points=point, labels=torch.ones(1, 1, 1))
    assert session.prompts_on(0, 0)[0]["point_coords"].shape == (1, 1, 1, 2)
    session.add_object_prompt(1, 2, mask=torch.ones(1, 1, 224, 224))
    session.add_object_prompt(1, 0, mask=torch.ones(1, 1, 224, 224))
    assert session.prompts_on(0, 0)[0] is None
    assert session.prompted_frames() == [0, 2] == session.prompted_frames(1)
    session.mark_new_inputs([1])
    assert session.has_pending_prompts()
    with pytest.raises(ValueError, match="unknown object id 7"):
        session.prompted_frames(7)


def test_refine_makes_a_tracked_frame_a_prompted_one(video_model, video_processor):
    session = _session(video_processor)
    video_model(inference_session=session, frame_idx=0)
    video_model(inference_session=session, frame_idx=1)
    session.add_object_prompt(1, 1, mask=torch.ones(1, 1, 224, 224))
    assert session.was_tracked(0, 1)
    session.refine(1, 1)
    assert not session.was_tracked(0, 1) and session.prompts_on(0, 1) == (None, None)


def test_plan_pass_starts_from_the_prompted_frames(video_processor):
    session = _session(video_processor, num_frames=6)
    session.add_object_prompt(2, 3, mask=torch.ones(1, 1, 224, 224))
    assert [list(p) for p in session.plan_pass("both")] == [[0, 1, 2, 3, 4, 5]]
    assert [list(p) for p in session.plan_pass("backward")] == [[3, 2, 1, 0]]
    assert [list(p) for p in session.plan_pass("both", start_frame=2, max_frames=1)] == [[2, 3], [2, 1]]
    both = session.plan_pass("both", also_prompted=[4], start_frame=4, repeat_start=False)
    assert [list(p) for p in both] == [[4, 5], [3, 2, 1, 0]]


def test_open_frame_checks_the_frame_and_the_objects(video_model, video_processor):
    session = video_processor.init_video_session(video=vs.video(3), inference_device="cpu")
    with pytest.raises(ValueError, match="no objects to track"):
        session.open_frame(0, None, memory_window=6)
    assert session.memory_window == 6
    session.add_object_prompt(1, 0, mask=torch.ones(1, 1, 224, 224))
    with pytest.raises(ValueError, match="give frame_idx"):
        session.open_frame(None, None, memory_window=6)
    with pytest.raises(ValueError, match="out of range"):
        session.open_frame(3, None, memory_window=6)
    assert session.open_frame(2, None, memory_window=6) == 2
