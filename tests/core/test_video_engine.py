"""The tracking engine: a pure step (no session state) that the video model is a thin layer over."""

from __future__ import annotations

import pytest
import torch
import video_scenarios as vs
from sam3_core import Sam3TrackerVideoModel, Sam3TrackerVideoProcessor
from sam3_core.video.memory_policy import MemoryPolicy, MemorySelection
from test_videos import make_video


@pytest.fixture(scope="module")
def model(tiny_checkpoint_dir):
    return Sam3TrackerVideoModel.from_pretrained(tiny_checkpoint_dir)


@pytest.fixture(scope="module")
def processor(tiny_checkpoint_dir):
    return Sam3TrackerVideoProcessor.from_pretrained(tiny_checkpoint_dir)


def _clicked_session(processor, frames, point):
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_inputs_to_inference_session(session, 0, 1, input_points=[[[point]]], input_labels=[[[1]]])
    return session


def test_step_by_hand_gives_the_models_output(model, processor):
    """Features + a memory picked from the session's stored outputs, through the engine by hand,
    give exactly what the model returns for a tracked frame, and the memory it stores."""
    session = _clicked_session(processor, vs.video(6), vs.ELLIPSE)
    for frame_idx in range(3):
        model(inference_session=session, frame_idx=frame_idx)
    frame_idx = 3
    with torch.inference_mode():
        cond, tracked = session.object_outputs(0)
        memory = model.memory_policy.select(
            frame_idx, dict(cond), dict(tracked), reverse=False, num_frames=6, streaming=False
        )
        # prompted frame 0 (slot 0) and tracked frames 1, 2 (slots 2, 1); pointers of frames 0-2
        assert sorted(t for t, _ in memory.memories) == [0, 1, 2]
        assert sorted(offset for offset, _ in memory.pointers) == [1, 2, 3]
        maps, pos = model.get_image_features(session.get_frame(frame_idx)[None])
        engine = model.tracking_engine()
        step = engine.track_step(maps, pos, memory)
        new_memory, new_pos = engine.encode_memory(
            maps[-1], step.high_res_masks, step.object_score_logits, from_prompts=False
        )
    out = model(inference_session=session, frame_idx=frame_idx)
    assert torch.equal(out.pred_masks, step.pred_masks)
    assert torch.equal(out.object_score_logits, step.object_score_logits.squeeze(-1))
    stored = session.object_outputs(0)[1][frame_idx]
    assert torch.equal(stored["object_pointer"], step.object_pointer)
    assert torch.equal(stored["maskmem_features"], new_memory)
    assert torch.equal(stored["maskmem_pos_enc"], new_pos)
    # the memory matters: without it (as on a first prompt) the masks differ
    with torch.inference_mode():
        unconditioned = engine.track_step(maps, pos, None)
    assert not torch.equal(unconditioned.pred_masks, step.pred_masks)


def _track(model, session, frame_idx):
    out = model(inference_session=session, frame_idx=frame_idx)
    return out.pred_masks.clone(), out.object_score_logits.clone()


def test_two_sessions_interleaved_match_each_alone(model, processor):
    videos = [(vs.video(5), vs.ELLIPSE), (make_video(5, vs.HEIGHT, vs.WIDTH, seed=3), vs.RECTANGLE)]
    alone = []
    for frames, point in videos:
        session = _clicked_session(processor, frames, point)
        alone.append([_track(model, session, t) for t in range(5)])
    sessions = [_clicked_session(processor, frames, point) for frames, point in videos]
    interleaved: list[list] = [[], []]
    for t in range(5):
        for i, session in enumerate(sessions):
            interleaved[i].append(_track(model, session, t))
    assert not torch.equal(alone[0][4][0], alone[1][4][0])  # the two videos really differ
    for ours, theirs in zip(interleaved, alone, strict=True):
        for (masks, scores), (masks_alone, scores_alone) in zip(ours, theirs, strict=True):
            assert torch.equal(masks, masks_alone) and torch.equal(scores, scores_alone)


def _out(tag: int) -> dict:
    return {"maskmem_features": f"memory {tag}", "object_pointer": f"pointer {tag}"}


def test_memory_policy_picks_from_plain_outputs():
    policy = MemoryPolicy(num_maskmem=3, max_cond_frames=2, max_object_pointers=4)
    cond = {0: _out(0), 1: _out(1), 9: _out(9)}
    tracked = {3: _out(3), 4: _out(4)}

    forward = policy.select(2, cond, tracked, reverse=False, num_frames=10, streaming=False)
    # the two closest prompted frames (1 before, 9 after) in slot 0; slot 2 (frame 0) falls back to
    # the unselected prompted frame 0; slot 1 (frame 1) is already among the prompted ones
    assert [(t, out["maskmem_features"]) for t, out in forward.memories] == [
        (0, "memory 1"),
        (0, "memory 9"),
        (2, "memory 0"),
    ]
    assert forward.pointers == [(2, "pointer 0"), (1, "pointer 1")]  # prompted frames already passed
    assert forward.max_pointer_offset == 3

    backward = policy.select(2, cond, tracked, reverse=True, num_frames=10, streaming=False)
    assert [(t, out["maskmem_features"]) for t, out in backward.memories] == [
        (0, "memory 1"),
        (0, "memory 9"),
        (2, "memory 4"),
        (1, "memory 3"),
    ]
    assert backward.pointers == [(7, "pointer 9"), (1, "pointer 3"), (2, "pointer 4")]

    short = policy.select(2, cond, tracked, reverse=False, num_frames=3, streaming=False)
    assert short.max_pointer_offset == 2  # no farther back than the video is long


def test_objects_batched_match_each_alone(model, processor):
    """A frame's tracked objects go through the memory attention and the heads together; objects
    whose memories differ in length are grouped apart. Each result equals the one-object step on
    the same memory, and the model's output is the batched one."""
    session = processor.init_video_session(video=vs.video(6), inference_device="cpu")
    clicks = [vs.ELLIPSE, vs.RECTANGLE, [20.0, 20.0]]
    processor.add_inputs_to_inference_session(
        session, 0, [1, 2, 3], input_points=[[[c] for c in clicks]], input_labels=[[[1]] * 3]
    )
    for frame_idx in range(3):
        model(inference_session=session, frame_idx=frame_idx)
    frame_idx = 3
    with torch.inference_mode():
        maps, pos = model.get_image_features(session.get_frame(frame_idx)[None])
        plan = session.plan_frame(frame_idx, reverse=False, streaming=False, policy=model.memory_policy)
        assert [o.action for o in plan.objects] == ["track"] * 3
        memories = [o.memory for o in plan.objects]
        short = MemorySelection(
            memories[2].memories[:1], memories[2].pointers[:1], memories[2].max_pointer_offset
        )
        engine = model.tracking_engine()
        batched = engine.track_objects(maps, pos, memories)
        alone = [engine.track_step(maps, pos, memory) for memory in memories]
        grouped = engine.track_objects(maps, pos, [*memories[:2], short])
        short_alone = engine.track_step(maps, pos, short)
    out = model(inference_session=session, frame_idx=frame_idx)
    for k, (ours, theirs) in enumerate(zip(batched, alone, strict=True)):
        assert torch.allclose(ours.pred_masks, theirs.pred_masks, atol=1e-4, rtol=0)
        assert torch.allclose(ours.object_pointer, theirs.object_pointer, atol=1e-5, rtol=0)
        assert torch.allclose(ours.high_res_masks, theirs.high_res_masks, atol=1e-4, rtol=0)
        assert torch.equal(out.pred_masks[k : k + 1], ours.pred_masks)
    assert not torch.equal(batched[0].pred_masks, batched[1].pred_masks)
    assert torch.allclose(grouped[2].pred_masks, short_alone.pred_masks, atol=1e-4, rtol=0)
    assert not torch.allclose(grouped[2].pred_masks, batched[2].pred_masks, atol=1e-3)
    assert torch.allclose(grouped[0].pred_masks, batched[0].pred_masks, atol=1e-4, rtol=0)


def test_engine_is_built_once_from_parts_not_the_model(model, tiny_checkpoint_dir):
    """One engine per model, holding the model's parts (no callback into the model); replacing a
    part (as the checkpoint loader does) builds it again over the new part."""
    engine = model.engine
    assert model.engine is engine and model.tracking_engine() is engine
    parts = vars(engine.modules).values()
    assert not any(part is model for part in parts)
    assert engine.modules.heads.prompt_encoder is model.prompt_encoder
    assert engine.modules.no_object_pointer is model.no_object_pointer
    other = Sam3TrackerVideoModel.from_pretrained(tiny_checkpoint_dir)
    assert other.engine.modules.no_object_pointer is other.no_object_pointer  # loaded, not the meta one
    other.no_object_pointer = torch.nn.Parameter(torch.ones_like(other.no_object_pointer))
    assert other.engine.modules.no_object_pointer is other.no_object_pointer
    other.to(torch.float64)  # .to() may give parameters new tensor objects: the engine follows
    assert other.engine.modules.no_object_pointer is other.no_object_pointer
    assert other.engine.modules.no_object_pointer.dtype == torch.float64
