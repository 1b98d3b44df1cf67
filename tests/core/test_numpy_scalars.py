"""numpy scalars (`np.int64(3)`, `np.float32(40.5)`, what `np.argmax` and iterating an array give) are
accepted wherever sam3_core's public calls take a Python int or float, and are Python numbers from
there on: the same calls with Python numbers give exactly the same outputs (the same computation,
compared with torch.equal), and object ids / frame indices in outputs and session state are Python
ints. Bools (Python's or numpy's), strings and floats given for an int are still refused, the error
naming the value."""

from __future__ import annotations

import concept_scenarios as cs
import numpy as np
import pytest
import torch
import video_scenarios as vs
from concept_videos import write_concept_checkpoint
from sam3_core import (
    Sam3TrackerProcessor,
    Sam3VideoConfig,
    Sam3VideoModel,
    Sam3VideoProcessor,
)
from sam3_core.scalars import as_int, is_int, is_number
from sam3_core.video.planner import plan_pass, reverse_pass_before

i64, f32 = np.int64, np.float32


def _all_python_ints(values) -> bool:
    return all(type(v) is int for v in values)


def test_the_shared_checks():
    for value in (3, i64(3), np.int32(-2), np.uint8(7)):
        assert is_int(value) and is_number(value) and type(as_int("n", value)) is int
    for value in (2.5, f32(2.5), np.float64(1.0)):
        assert is_number(value) and not is_int(value)
    for value in (True, np.bool_(False), "3", None, 1 + 2j):
        assert not is_int(value) and not is_number(value)
    with pytest.raises(TypeError, match=r"frame_idx must be an int, got np\.True_ \(bool\)"):
        as_int("frame_idx", np.bool_(True))
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        as_int("n", i64(0), 1)


def _tracker_video_run(model, processor, frames, n):
    """A click for object 1 (frame 0), two objects on frame 2 (clicks, padded), a box for object 7 on
    frame 3, then propagation both ways; every number goes through `n` (int or a numpy type)."""
    s = processor.init_video_session(
        video=frames, inference_device="cpu", max_vision_features_cache_size=n(2)
    )
    add = processor.add_inputs_to_inference_session
    pt = lambda x, y: [n(x), n(y)]  # noqa: E731
    add(s, n(0), n(1), input_points=[[[pt(42, 28)]]], input_labels=[[[n(1)]]])
    outs = [model(inference_session=s, frame_idx=n(0))]
    add(
        s,
        n(2),
        [n(2), n(3)],
        input_points=[[[pt(42, 28), pt(10, 80)], [pt(88, 50)]]],
        input_labels=[[[n(1), n(0)], [n(1)]]],
    )
    outs.append(model(inference_session=s, frame_idx=n(2)))
    add(s, n(3), n(7), input_boxes=[[[n(70), n(35), n(110), n(68)]]])
    outs.append(model(inference_session=s, frame_idx=n(3)))
    outs += list(model.propagate_in_video_iterator(s, start_frame_idx=n(0), max_frame_num_to_track=n(1)))
    outs += list(
        model.propagate_in_video_iterator(s, start_frame_idx=n(3), max_frame_num_to_track=n(1), reverse=True)
    )
    return s, outs


def test_tracker_video_with_numpy_scalars_equals_python_ints(video_model, video_processor):
    frames = vs.video(4)
    python_session, expected = _tracker_video_run(video_model, video_processor, frames, int)
    session, outs = _tracker_video_run(video_model, video_processor, frames, i64)
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected, strict=True):
        assert got.frame_idx == want.frame_idx and type(got.frame_idx) is int
        assert got.object_ids == want.object_ids and _all_python_ints(got.object_ids)
        assert repr(got.object_ids) == repr(want.object_ids)  # [1, 2, 3, 7], not [np.int64(1), ...]
        assert torch.equal(got.pred_masks, want.pred_masks)
        assert torch.equal(got.object_score_logits, want.object_score_logits)
        assert got[i64(0)] is got[0]  # an output indexed like a tuple
    # the session's own keys: object ids and frame indices, Python ints
    assert session.obj_ids == [1, 2, 3, 7] and _all_python_ints(session.obj_ids)
    assert session.prompted_frames() == [0, 2, 3] and _all_python_ints(session.prompted_frames())
    assert all(_all_python_ints(p) for p in session.point_inputs_per_obj.values())
    assert repr(session) == repr(python_session)
    session.remove_object(i64(2))
    assert session.obj_ids == [1, 3, 7]


def test_float_points_and_labels_as_numpy_scalars(tracker_processor):
    image = vs.video(1)[0]
    kwargs = dict(images=image, input_points=[[[[40.5, 28.25]]]], input_labels=[[[1]]], return_tensors="pt")
    want = tracker_processor(**kwargs)
    got = tracker_processor(
        **{**kwargs, "input_points": [[[[f32(40.5), np.float64(28.25)]]]], "input_labels": [[[np.int32(1)]]]}
    )
    assert torch.equal(got["input_points"], want["input_points"])
    assert torch.equal(got["input_labels"], want["input_labels"])
    boxes = tracker_processor(
        images=image, input_boxes=[[[i64(20), f32(8.5), np.float64(70), np.uint16(50)]]]
    )
    assert torch.equal(
        boxes["input_boxes"],
        tracker_processor(images=image, input_boxes=[[[20, 8.5, 70, 50]]])["input_boxes"],
    )


def test_streamed_frames_and_sizes_as_numpy_scalars(video_model, video_processor):
    frames = vs.video(2)
    results = []
    for n in (int, i64):
        s = video_processor.init_video_session(inference_device="cpu")
        video_processor.add_inputs_to_inference_session(
            s, n(0), n(1), input_points=[[[[n(42), n(28)]]]], input_labels=[[[n(1)]]],
            original_size=(n(90), n(120)),
        )  # fmt: skip
        pixels = video_processor(images=frames[0], return_tensors="pt")["pixel_values"][0]
        out = video_model(inference_session=s, frame=pixels, frame_idx=n(0))
        assert type(out.frame_idx) is int and _all_python_ints(s.processed_frames)
        assert type(s.video_height) is int and (s.video_height, s.video_width) == (90, 120)
        results.append(out.pred_masks)
    assert torch.equal(results[0], results[1])


@pytest.fixture(scope="module")
def concept_dir(tmp_path_factory):
    return write_concept_checkpoint(tmp_path_factory.mktemp("tiny-sam3-concept-np"))


def _concept_run(model, processor, frames, n):
    s = processor.init_video_session(
        video=frames, inference_device="cpu", max_vision_features_cache_size=n(1)
    )
    processor.add_text_prompt(s, cs.PHRASES)
    outs = [model(inference_session=s, frame_idx=n(0))]
    outs += list(model.propagate_in_video_iterator(s, start_frame_idx=n(1), max_frame_num_to_track=n(2)))
    return s, [(out, processor.postprocess_outputs(s, out)) for out in outs]


def test_concept_video_with_numpy_scalars_equals_python_ints(concept_dir):
    processor = Sam3VideoProcessor.from_pretrained(concept_dir)
    model = Sam3VideoModel.from_pretrained(concept_dir, **cs.CONFIG_OVERRIDES)
    # the overrides as numpy scalars (np.float64 / np.int64 / np.bool_): the same config
    numpy_overrides = {k: np.asarray(v)[()] for k, v in cs.CONFIG_OVERRIDES.items()}
    assert any(type(v) is np.float64 for v in numpy_overrides.values())
    numpy_model = Sam3VideoModel.from_pretrained(concept_dir, **numpy_overrides)
    assert numpy_model.config.to_dict() == model.config.to_dict()
    frames = cs.video(4)
    _, expected = _concept_run(model, processor, frames, int)
    session, got = _concept_run(numpy_model, processor, frames, i64)
    assert any(out.object_ids for out, _ in expected), "no object found: the comparison would be empty"
    for (out, post), (want, want_post) in zip(got, expected, strict=True):
        assert out.frame_idx == want.frame_idx and type(out.frame_idx) is int
        assert out.object_ids == want.object_ids and _all_python_ints(out.object_ids)
        assert sorted(out.obj_id_to_mask) == sorted(want.obj_id_to_mask)
        for obj_id, mask in want.obj_id_to_mask.items():
            assert torch.equal(out.obj_id_to_mask[obj_id], mask)
        assert torch.equal(post["masks"], want_post["masks"]) and torch.equal(
            post["scores"], want_post["scores"]
        )
        assert post["prompt_to_obj_ids"] == want_post["prompt_to_obj_ids"]
    # interactive calls with numpy ids keep Python ints in the session's sets and dicts
    found = session.obj_ids[0]
    session.hide_object(i64(found))
    session.add_clicked_object(i64(50))
    session.refine(i64(found), i64(2))
    for ids in (session.hidden_obj_ids, session.clicked_obj_ids, session.protected_obj_ids, session.obj_ids):
        assert _all_python_ints(ids), ids
    assert session.max_obj_id == 50 and type(session.max_obj_id) is int


def test_planner_and_processor_settings_take_numpy_ints():
    assert plan_pass(i64(10), i64(3), i64(2)) == plan_pass(10, 3, 2)
    assert _all_python_ints(plan_pass(i64(10), i64(3), i64(2), reverse=True).frames)
    assert reverse_pass_before(i64(10), i64(5), i64(2)) == reverse_pass_before(10, 5, 2)
    processor = Sam3TrackerProcessor(size=i64(64), mask_size=i64(16), target_size=i64(64), resample=i64(2))
    assert repr(processor) == repr(Sam3TrackerProcessor(size=64, mask_size=16, target_size=64, resample=2))
    assert type(processor.size) is int and type(processor.target_size) is int
    config = Sam3VideoConfig.from_dict(None, hotstart_delay=i64(10), score_threshold_detection=f32(0.25))
    assert type(config.hotstart_delay) is int and type(config.score_threshold_detection) is float


@pytest.mark.parametrize(
    "value, shown",
    [
        (True, "True"),
        (np.bool_(True), r"np\.True_"),
        ("1", "'1'"),
        (1.0, r"1\.0"),
        (f32(1), r"np\.float32\(1\.0\)"),
    ],
)
def test_non_integers_are_still_refused_for_frame_indices(video_model, video_processor, value, shown):
    s = video_processor.init_video_session(video=vs.video(3), inference_device="cpu")
    points = dict(input_points=[[[[42, 28]]]], input_labels=[[[1]]])
    with pytest.raises(TypeError, match=rf"frame_idx must be an int, got {shown}"):
        video_processor.add_inputs_to_inference_session(s, value, 1, **points)
    video_processor.add_inputs_to_inference_session(s, 0, 1, **points)
    with pytest.raises(TypeError, match=rf"frame_idx must be an int, got {shown}"):
        video_model(inference_session=s, frame_idx=value)
    video_model(inference_session=s, frame_idx=0)
    with pytest.raises(TypeError, match=rf"start_frame_idx must be an int, got {shown}"):
        next(video_model.propagate_in_video_iterator(s, start_frame_idx=value))
    with pytest.raises(TypeError, match=rf"max_frame_num_to_track must be an int, got {shown}"):
        next(video_model.propagate_in_video_iterator(s, max_frame_num_to_track=value))


@pytest.mark.parametrize(
    "value, shown", [(True, "True"), (np.bool_(False), r"np\.False_"), ("a", "'a'"), (2.0, r"2\.0")]
)
def test_non_integers_are_still_refused_for_object_ids(video_processor, value, shown):
    s = video_processor.init_video_session(video=vs.video(2), inference_device="cpu")
    points = dict(input_points=[[[[42, 28]]]], input_labels=[[[1]]])
    with pytest.raises(ValueError, match=rf"obj_ids must be an int or a non-empty list of ints, got {shown}"):
        video_processor.add_inputs_to_inference_session(s, 0, value, **points)
    with pytest.raises(ValueError, match=rf"obj_ids must be ints, got \[{shown}\]"):
        video_processor.add_inputs_to_inference_session(s, 0, [value], **points)
    with pytest.raises(TypeError, match=rf"obj_id must be an int, got {shown}"):
        s.add_object_prompt(value, 0, mask=torch.zeros(1, 1, 8, 8))
    assert s.obj_ids == []


def test_bools_are_still_refused_as_point_numbers(tracker_processor):
    image = vs.video(1)[0]
    with pytest.raises(ValueError, match=r"input_labels\[0\]\[0\]\[0\] is np\.True_; expected a number"):
        tracker_processor(images=image, input_points=[[[[1, 2]]]], input_labels=[[[np.bool_(True)]]])
    with pytest.raises(ValueError, match=r"input_points\[0\]\[0\]\[0\]\[0\] is True; expected a number"):
        tracker_processor(images=image, input_points=[[[[True, 2]]]], input_labels=[[[1]]])
