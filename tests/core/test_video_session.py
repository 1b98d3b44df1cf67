"""The video session: bounded memory, helpers, the seed's usage, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import video_scenarios as vs
from golden_io import max_abs_diff
from sam3_core import Sam3TrackerVideoInferenceSession
from sam3_sdk.testing import held_nbytes, held_tensors


def _prompted(processor, model, num_frames=vs.NUM_FRAMES, **session_kwargs):
    session = processor.init_video_session(video=vs.video(num_frames), **session_kwargs)
    processor.add_inputs_to_inference_session(
        session, 0, 1, input_points=[[[vs.ELLIPSE]]], input_labels=[[[1]]]
    )
    model(inference_session=session, frame_idx=0)
    return session


# ---------------------------------------------------------------------------------------------
# Bounded memory
# ---------------------------------------------------------------------------------------------


def _tiny_frame(t: int) -> np.ndarray:
    """A 12x16 frame with a square moving one pixel every few frames."""
    frame = np.full((12, 16, 3), 40, dtype=np.uint8)
    x = 2 + (t // 3) % 10
    frame[4:9, x : x + 5] = (200, 120, 60)
    return frame


def test_long_stream_keeps_memory_bounded(video_model, video_processor):
    """Streamed frames: tensors and bytes held by the session stop growing once the memory window
    (and the feature cache) are full, and stay flat for the frames after."""
    config = video_model.config
    window = max(config.num_maskmem, config.max_object_pointers_in_encoder) - 1
    cache_size = 2
    # Frames 0..window fill the window; from frame window + 1 on, each frame's outputs replace the
    # oldest ones' (the feature cache filled long before).
    settled = window + 1
    num_frames = settled + 5
    session = video_processor.init_video_session(max_vision_features_cache_size=cache_size)
    counts, sizes = [], []
    for t in range(num_frames):
        inputs = video_processor(images=_tiny_frame(t))
        if t == 0:
            video_processor.add_inputs_to_inference_session(
                session, 0, 1, input_points=[[[[6, 6]]]], input_labels=[[[1]]], original_size=(12, 16)
            )
        out = video_model(inference_session=session, frame=inputs["pixel_values"][0])
        assert out.frame_idx == t
        counts.append(len(held_tensors(session)))
        sizes.append(held_nbytes(session))
    assert session.memory_window == window
    assert counts[settled:] == [counts[settled]] * (num_frames - settled), counts
    assert sizes[settled:] == [sizes[settled]] * (num_frames - settled), sizes
    assert counts[settled] > counts[1]  # it did grow while the window filled
    assert len(session.processed_frames) == window + 1
    assert len(session._vision_features) <= cache_size
    assert session.num_frames == num_frames


def test_long_video_prunes_tracked_outputs(video_model, video_processor):
    session = _prompted(video_processor, video_model, num_frames=40, keep_all_outputs=False)
    sizes = []
    for _ in video_model.propagate_in_video_iterator(session):
        sizes.append(held_nbytes(session))
    window = session.memory_window
    tracked = session.output_dict_per_obj[0]["non_cond_frame_outputs"]
    assert sorted(tracked) == list(range(39 - window, 40))
    assert 0 in session.output_dict_per_obj[0]["cond_frame_outputs"]  # prompted frames stay
    assert max(sizes[window + 3 :]) == sizes[window + 3]


def test_a_whole_video_keeps_all_outputs_by_default(video_model, video_processor):
    # As the reference: tracking resumed on any frame later reads that frame's tracked neighbours.
    session = _prompted(video_processor, video_model, num_frames=24)
    assert session.keep_all_outputs
    for _ in video_model.propagate_in_video_iterator(session):
        pass
    assert sorted(session.output_dict_per_obj[0]["non_cond_frame_outputs"]) == list(range(1, 24))
    assert not video_processor.init_video_session().keep_all_outputs  # streamed: bounded


def test_pruning_changes_resumed_tracking_and_keeping_all_does_not(video_model, video_processor):
    """The cause of a difference from the reference (issue 20): with pruning, a click on a frame
    far behind the last tracked one misses that frame's tracked neighbours (dropped), so the
    object is segmented from fewer memories than the reference reads. Keeping every output (the
    default for a whole video) gives what an unpruned session gives."""
    num_frames = 24  # longer than the memory window (15 frames), so pruning drops outputs

    def refine(keep_all):
        session = _prompted(video_processor, video_model, num_frames=num_frames, keep_all_outputs=keep_all)
        for _ in video_model.propagate_in_video_iterator(session):
            pass
        video_processor.add_inputs_to_inference_session(
            session, 5, 1, input_points=[[[vs.RECTANGLE]]], input_labels=[[[1]]]
        )
        return video_model(inference_session=session, frame_idx=5).pred_masks

    pruned, kept = refine(False), refine(True)
    assert (pruned - kept).abs().max() > 1e-3  # frames 1..4 were dropped: a different memory


def test_feature_cache_is_bounded(video_model, video_processor):
    session = _prompted(video_processor, video_model, max_vision_features_cache_size=3)
    for _ in video_model.propagate_in_video_iterator(session):
        assert len(session._vision_features) <= 3
    assert sorted(session._vision_features) == [7, 8, 9]


def test_a_given_video_is_read_on_demand_not_copied(video_model, video_processor):
    """The session resizes the caller's frames when the model reads them: it holds no copy of the
    video (its bytes do not grow with the length), and frame i is the processor's resize of frame i."""
    video = vs.video(12)
    session = _prompted(video_processor, video_model, num_frames=12)
    before = held_nbytes(session)
    resized, _ = video_processor.preprocess_video(video)
    for i in (0, 5, 11):
        assert torch.equal(session.processed_frames[i], resized[i])
    long_session = _prompted(video_processor, video_model, num_frames=40)
    assert held_nbytes(long_session) == before  # 40 frames cost what 12 do before tracking
    assert not any(t.shape[-2:] == resized.shape[-2:] for t in held_tensors(long_session))


def test_a_frame_of_another_size_is_refused_when_the_session_opens(video_processor):
    video = vs.video(4)
    video[2] = video[2][:-2]
    with pytest.raises(ValueError, match=r"video frame 2 is \d+x\d+ but frame 0 is"):
        video_processor.init_video_session(video=video)
    video[2] = "not/a/file.png"
    with pytest.raises(ValueError, match="video frame 2"):
        video_processor.init_video_session(video=video)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def test_object_bookkeeping_and_resets(video_model, video_processor):
    session = video_processor.init_video_session(video=vs.video(4))
    video_processor.add_inputs_to_inference_session(
        session, 0, [5, 9], input_points=[[[vs.ELLIPSE], [vs.RECTANGLE]]], input_labels=[[[1], [1]]]
    )
    assert session.obj_ids == [5, 9] and session.get_obj_num() == 2
    assert session.obj_id_to_idx(9) == 1 and session.obj_idx_to_id(0) == 5
    out = video_model(inference_session=session, frame_idx=0)
    assert out.object_ids == [5, 9] and out.pred_masks.shape == (2, 1, 64, 64)
    assert out.object_score_logits.shape == (2, 1)

    session.reset_tracking_data()
    assert session.obj_ids == [] and session.get_obj_num() == 0
    assert session.get_vision_features(0) is not None  # the cache survives
    session.reset_inference_session()
    assert session.get_vision_features(0) is None
    assert len(session.processed_frames) == 4  # the frames survive


def test_remove_object_keeps_the_others(video_model, video_processor, golden):
    expected, _ = golden("video", "two_objects_together")
    session = video_processor.init_video_session(video=vs.video())
    video_processor.add_inputs_to_inference_session(
        session,
        0,
        [2, 3],
        input_points=[[[vs.ELLIPSE, vs.BACKGROUND], [vs.RECTANGLE]]],
        input_labels=[[[1, 0], [1]]],
    )
    video_model(inference_session=session, frame_idx=0)
    session.remove_object(3)
    assert session.obj_ids == [2]
    with pytest.raises(ValueError, match="unknown object id 3"):
        session.remove_object(3)
    outputs = list(video_model.propagate_in_video_iterator(session))
    assert all(o.object_ids == [2] for o in outputs)
    for i, out in enumerate(outputs, start=1):  # object 2 is tracked exactly as with object 3 present
        assert max_abs_diff(out.pred_masks[:1, :, ::2, ::2], expected[f"masks_{i:03d}"][:1]) <= 1e-4


def test_seed_usage_and_post_processing(video_model, video_processor):
    session = video_processor.init_video_session(
        video=vs.video(5), inference_device="cpu", dtype=torch.float32
    )
    video_processor.add_inputs_to_inference_session(
        inference_session=session, frame_idx=0, obj_ids=1, input_points=[[[[42, 28]]]], input_labels=[[[1]]]
    )
    outputs = video_model(inference_session=session, frame_idx=0)
    masks = video_processor.post_process_masks(
        [outputs.pred_masks], original_sizes=[[session.video_height, session.video_width]], binarize=False
    )[0]
    assert masks.shape == (1, 1, vs.HEIGHT, vs.WIDTH) and masks.dtype == torch.float32
    segments = {}
    for out in video_model.propagate_in_video_iterator(session, show_progress_bar=True):
        segments[out.frame_idx] = video_processor.post_process_masks(
            [out.pred_masks], original_sizes=[[session.video_height, session.video_width]]
        )[0]
    assert sorted(segments) == [0, 1, 2, 3, 4]
    assert segments[2].dtype == torch.bool and segments[2].shape == (1, 1, vs.HEIGHT, vs.WIDTH)


def test_dtype_and_devices(video_processor):
    session = video_processor.init_video_session(
        video=vs.video(2), dtype=torch.bfloat16, inference_state_device="cpu"
    )
    assert session.dtype == torch.bfloat16 and session.get_frame(0).dtype == torch.bfloat16
    assert session.inference_state_device == torch.device("cpu")
    assert Sam3TrackerVideoInferenceSession(dtype="float32").dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_frame_index_out_of_range(video_model, video_processor):
    session = _prompted(video_processor, video_model, num_frames=4)
    with pytest.raises(ValueError, match=r"frame_idx 4 is out of range; the video has frames 0\.\.3"):
        video_model(inference_session=session, frame_idx=4)
    with pytest.raises(ValueError, match="frame_idx -1 is out of range"):
        video_model(inference_session=session, frame_idx=-1)
    with pytest.raises(ValueError, match="frame_idx 7 is out of range"):
        next(video_model.propagate_in_video_iterator(session, start_frame_idx=7))
    with pytest.raises(ValueError, match="max_frame_num_to_track must be >= 0"):
        next(video_model.propagate_in_video_iterator(session, max_frame_num_to_track=-2))
    with pytest.raises(ValueError, match="give frame_idx"):
        video_model(inference_session=session)


def test_prompts_past_the_end(video_processor):
    session = video_processor.init_video_session(video=vs.video(4))
    with pytest.raises(ValueError, match=r"frame_idx 4 is past the end of the video \(frames 0\.\.3\)"):
        video_processor.add_inputs_to_inference_session(
            session, 4, 1, input_points=[[[[1, 1]]]], input_labels=[[[1]]]
        )
    with pytest.raises(ValueError, match="frame_idx must be >= 0, got -1"):
        video_processor.add_inputs_to_inference_session(
            session, -1, 1, input_points=[[[[1, 1]]]], input_labels=[[[1]]]
        )


def test_unknown_object_and_bad_prompts(video_model, video_processor):
    session = video_processor.init_video_session(video=vs.video(3))
    with pytest.raises(ValueError, match=r"unknown object id 4; this session tracks objects \[\]"):
        session.remove_object(4)
    with pytest.raises(ValueError, match="no objects to track"):
        video_model(inference_session=session, frame_idx=0)
    with pytest.raises(ValueError, match="no prompted frame has been segmented"):
        next(video_model.propagate_in_video_iterator(session))
    with pytest.raises(ValueError, match="together"):
        video_processor.add_inputs_to_inference_session(session, 0, 1, input_points=[[[[1, 1]]]])
    with pytest.raises(ValueError, match="at least one prompt"):
        video_processor.add_inputs_to_inference_session(session, 0, 1)
    with pytest.raises(ValueError, match="cannot be combined"):
        video_processor.add_inputs_to_inference_session(
            session, 0, 1, input_boxes=[[[1, 1, 5, 5]]], input_masks=np.ones((4, 4), bool)
        )
    with pytest.raises(ValueError, match=r"describe 2 objects .* but 1 object ids \[1\]"):
        video_processor.add_inputs_to_inference_session(
            session, 0, 1, input_points=[[[[1, 1]], [[2, 2]]]], input_labels=[[[1], [1]]]
        )
    with pytest.raises(ValueError, match="got 1 masks for 2 object ids"):
        video_processor.add_inputs_to_inference_session(session, 0, [1, 2], input_masks=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="repeat an id"):
        video_processor.add_inputs_to_inference_session(
            session, 0, [1, 1], input_points=[[[[1, 1]], [[2, 2]]]], input_labels=[[[1], [1]]]
        )
    with pytest.raises(ValueError, match="box must come before"):
        video_processor.add_inputs_to_inference_session(
            session, 0, 1, input_boxes=[[[1, 1, 5, 5]]], clear_old_inputs=False
        )


def test_streaming_errors(video_model, video_processor):
    session = video_processor.init_video_session()
    frame = video_processor(images=vs.video(1)[0])["pixel_values"][0]
    with pytest.raises(ValueError, match="no objects to track"):
        video_model(inference_session=session, frame=frame)
    with pytest.raises(ValueError, match=r"original_size=\(height, width\) is needed"):
        video_processor.add_inputs_to_inference_session(
            session, 0, 1, input_points=[[[[1, 1]]]], input_labels=[[[1]]]
        )
    with pytest.raises(ValueError, match="no frames"):
        session.get_frame(0)


def test_video_input_errors(video_processor):
    with pytest.raises(ValueError, match="frame 1 is 10x12 but frame 0 is 90x120"):
        video_processor.init_video_session(video=[vs.video(1)[0], np.zeros((10, 12, 3), np.uint8)])
    with pytest.raises(ValueError, match="no frames"):
        video_processor.init_video_session(video=[])
    with pytest.raises(ValueError, match="does not decode video files"):
        video_processor.init_video_session(video="clip.mp4")
    with pytest.raises(ValueError, match="max_vision_features_cache_size must be at least 1"):
        video_processor.init_video_session(video=vs.video(1), max_vision_features_cache_size=0)
