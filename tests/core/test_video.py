"""Parity of the video tracker with the reference (golden outputs of scripts/golden/video.py)."""

from __future__ import annotations

import pytest
import torch
import video_scenarios as vs
from golden_io import max_abs_diff
from sam3_core import Sam3TrackerVideoModel, Sam3TrackerVideoProcessor

TOL = 1e-4  # fp32 mask logits and object scores, on every frame
# float64 on both sides: rounding differences are ~1e-14 here (measured), so anything above 1e-9 is
# a difference in what is computed, however small (random-weight logits are often ~1e-2).
F64_TOL = 1e-9
BF16_TOL = 0.1  # bf16 vs fp32 mask logits (|logits| up to ~2.3 here); the reference's bf16 is as far


def _check_steps(ours: dict, meta: dict, golden: dict, golden_meta: dict, tol: float) -> float:
    assert meta["frame_idx"] == golden_meta["frame_idx"]
    assert meta["object_ids"] == golden_meta["object_ids"]
    assert set(ours) == set(golden)
    worst = 0.0
    for key in sorted(golden):
        diff = max_abs_diff(ours[key], golden[key])
        assert diff <= tol, f"{key}: max abs diff {diff:.2e} > {tol}"
        worst = max(worst, diff)
    return worst


@pytest.mark.parametrize("name", list(vs.SCENARIOS))
def test_scenario_matches_reference(name, video_model, video_processor, golden):
    scenario, num_frames = vs.SCENARIOS[name]
    tensors, meta = vs.record(scenario(video_model, video_processor, vs.video(num_frames)))
    expected, expected_meta = golden("video", name)
    _check_steps(tensors, meta, expected, expected_meta, TOL)


@pytest.fixture(scope="module")
def video_model_f64(tiny_checkpoint_dir):
    return Sam3TrackerVideoModel.from_pretrained(tiny_checkpoint_dir, dtype=torch.float64)


@pytest.mark.parametrize("name", list(vs.F64_SCENARIOS))
def test_scenario_matches_reference_in_float64(name, video_model_f64, video_processor, golden):
    scenario, num_frames = vs.F64_SCENARIOS[name]
    outputs = scenario(video_model_f64, video_processor, vs.video(num_frames), dtype=torch.float64)
    tensors, meta = vs.record(outputs, stride=vs.F64_STRIDE, dtype=torch.float64)
    expected, expected_meta = golden("video", name)
    assert all(v.dtype == torch.float64 for v in expected.values())
    _check_steps(tensors, meta, expected, expected_meta, F64_TOL)
    for key in expected:  # every decision: the binarised masks (away from the 1e-9 band around 0)
        if key.startswith("masks"):
            clear = expected[key].abs() > F64_TOL
            assert torch.equal((tensors[key] > 0)[clear], (expected[key] > 0)[clear]), key


def test_video_processor_config_of_its_own_matches_reference_in_float64(video_model_f64, golden):
    """Frames normalised with the video section's statistics (ImageNet), prompts mapped with the
    image section's; the reference run with the same two configs."""
    expected, expected_meta = golden("video", "video_config_differs_f64")
    processor = Sam3TrackerVideoProcessor(
        size=224, video_mean=expected_meta["video_mean"], video_std=expected_meta["video_std"]
    )
    assert processor.image_mean != processor.video_mean
    outputs = vs.objects_on_different_frames(video_model_f64, processor, vs.video(), dtype=torch.float64)
    tensors, meta = vs.record(outputs, stride=vs.F64_STRIDE, dtype=torch.float64)
    _check_steps(tensors, meta, expected, expected_meta, F64_TOL)
    # the video statistics matter: with the image's, the masks are far from these
    sam_stats, _ = golden("video", "objects_on_different_frames_f64")
    assert max(max_abs_diff(sam_stats[k], expected[k]) for k in expected if k.startswith("masks")) > 1e-2


def test_late_objects_need_every_tracked_output(video_model_f64, video_processor, golden):
    """Issue 20: pruning tracked outputs changes the objects tracked before a late prompt (their
    memory on the prompt's frame lost its dropped neighbours); the default keeps them all."""
    frames = vs.video(vs.LATE_OBJECTS_FRAMES)
    processor = video_processor
    init = processor.init_video_session
    processor.init_video_session = lambda **kw: init(**kw, keep_all_outputs=False)
    try:
        pruned, _ = vs.record(
            vs.late_objects(video_model_f64, processor, frames, dtype=torch.float64),
            stride=vs.F64_STRIDE,
            dtype=torch.float64,
        )
    finally:
        del processor.init_video_session
    expected, _ = golden("video", "late_objects_f64")
    worst = max(max_abs_diff(pruned[k], expected[k]) for k in expected if k.startswith("masks"))
    assert worst > 1e-3, worst


def test_masks_are_not_trivial(golden):
    # The goldens must exercise both present and absent pixels, or the parity tests prove little.
    expected, _ = golden("video", "one_object")
    masks = torch.stack([v for k, v in expected.items() if k.startswith("masks")])
    assert (masks > 0).float().mean() > 0.05 and (masks < 0).float().mean() > 0.05
    assert masks.std() > 0.3


def test_video_preprocessing_matches_reference(video_processor, golden):
    expected, meta = golden("video", "preprocess_video")
    frames, size = video_processor.preprocess_video(vs.video())
    assert list(size) == meta["original_size"]
    assert frames.dtype == torch.uint8
    step = meta["stride"]
    assert torch.equal(frames[:, :, ::step, ::step], expected["pixels_u8"])


def test_session_stores_frames_as_uint8(video_processor):
    session = video_processor.init_video_session(video=vs.video(3))
    assert all(f.dtype == torch.uint8 and f.shape == (3, 224, 224) for f in session.processed_frames.values())
    pixels = session.get_frame(1)
    assert pixels.dtype == torch.float32 and -1 <= pixels.min() and pixels.max() <= 1


def test_bf16_session_runs_and_stays_close(tiny_checkpoint_dir, video_processor, golden):
    model = Sam3TrackerVideoModel.from_pretrained(tiny_checkpoint_dir, dtype=torch.bfloat16)
    outputs = vs.one_object(model, video_processor, vs.video(), dtype=torch.bfloat16)
    assert all(o.pred_masks.dtype == torch.bfloat16 for o in outputs)
    tensors, meta = vs.record(outputs)
    fp32, fp32_meta = golden("video", "one_object")
    ref_bf16, ref_meta = golden("video", "one_object_bf16")
    _check_steps(tensors, meta, fp32, fp32_meta, BF16_TOL)
    _check_steps(tensors, meta, ref_bf16, ref_meta, BF16_TOL)
    for key in fp32:
        if key.startswith("masks"):
            agree = ((tensors[key] > 0) == (fp32[key] > 0)).float().mean()
            assert agree > 0.99, f"{key}: only {agree:.3f} of the pixels agree with fp32"


def test_checkpoint_key_mapping():
    m = Sam3TrackerVideoModel.map_checkpoint_key
    assert m("detector_model.vision_encoder.backbone.layers.0.mlp.fc1.weight") == (
        "vision_encoder.backbone.layers.0.mlp.fc1.weight"
    )
    assert m("detector_model.vision_encoder.neck.fpn_layers.0.proj1.weight") is None
    assert m("detector_model.text_encoder.x") is None
    assert m("tracker_neck.fpn_layers.0.proj1.weight") == "vision_encoder.neck.fpn_layers.0.proj1.weight"
    # the memory modules are kept (the image tracker drops them)
    assert m("tracker_model.memory_encoder.projection.weight") == "memory_encoder.projection.weight"
    assert m("tracker_model.object_pointer_proj.proj_in.weight") == "object_pointer_proj.proj_in.weight"


def test_memory_weights_are_loaded(video_model, tiny_checkpoint_dir):
    from safetensors.torch import load_file

    state = load_file(str(tiny_checkpoint_dir / "model.safetensors"))
    for hub_key in (
        "tracker_model.memory_attention.layers.1.cross_attn_image.k_proj.weight",
        "tracker_model.memory_encoder.memory_fuser.layers.0.scale",
        "tracker_model.memory_temporal_positional_encoding",
        "tracker_model.occlusion_spatial_embedding_parameter",
    ):
        ours = video_model.state_dict()[Sam3TrackerVideoModel.map_checkpoint_key(hub_key)]
        assert torch.equal(ours, state[hub_key]), hub_key
