"""The ViT backbone and both FPN necks against the reference's golden outputs."""

from __future__ import annotations

import pytest
import torch
from golden_io import load_golden, max_abs_diff
from sam3_core import Sam3VisionConfig, Sam3VisionModel
from sam3_core.checkpoint import build_and_load
from tiny_checkpoint import make_state_dict

FP32_TOL = 1e-4
# bf16 keeps 8 mantissa bits (relative step 2^-8 ≈ 0.4%): activations of magnitude ~1-10 after
# four layers and an FPN drift by a few hundredths from the fp32 reference.
BF16_TOL = 0.15


def pixels(golden: dict[str, torch.Tensor]) -> torch.Tensor:
    return (golden["pixels_u8"].float() - 127.5) / 127.5


def compare_vision(
    out, golden: dict[str, torch.Tensor], strides: dict[str, int], tracker=None
) -> dict[str, float]:
    diffs = {"last_hidden_state": max_abs_diff(out.last_hidden_state, golden["last_hidden_state"])}
    for i, (fmap, pos) in enumerate(zip(out.fpn_hidden_states, out.fpn_position_encoding)):
        s = strides.get(str(i), 1)
        diffs[f"fpn_{i}"] = max_abs_diff(fmap[:, :, ::s, ::s], golden[f"fpn_{i}"])
        diffs[f"pos_{i}"] = max_abs_diff(pos[: golden[f"pos_{i}"].shape[0], :, ::s, ::s], golden[f"pos_{i}"])
    return diffs


@pytest.fixture(scope="module")
def detector_vision(tiny_checkpoint_dir):
    return Sam3VisionModel.from_pretrained(tiny_checkpoint_dir, neck="detector")


def test_detector_backbone_and_neck_match_reference(detector_vision):
    golden, meta = load_golden("vision", "tiny_combined_fp32")
    with torch.no_grad():
        out = detector_vision(pixels(golden))
    assert len(out.fpn_hidden_states) == 4
    diffs = compare_vision(out, golden, meta["strides"])
    assert max(diffs.values()) <= FP32_TOL, diffs


def test_tracker_neck_matches_reference(tiny_checkpoint_dir):
    golden, meta = load_golden("vision", "tiny_combined_fp32")
    model = Sam3VisionModel.from_pretrained(tiny_checkpoint_dir, neck="tracker")
    with torch.no_grad():
        out = model(pixels(golden)[1:])
    for i, fmap in enumerate(out.fpn_hidden_states):
        s = meta["strides"].get(str(i), 1)
        assert max_abs_diff(fmap[:, :, ::s, ::s], golden[f"tracker_fpn_{i}"]) <= FP32_TOL, i


def test_batch_entries_are_independent(detector_vision):
    golden, _ = load_golden("vision", "tiny_combined_fp32")
    with torch.no_grad():
        both = detector_vision(pixels(golden)).fpn_hidden_states[2]
        second = detector_vision(pixels(golden)[1:]).fpn_hidden_states[2]
    assert max_abs_diff(both[1:], second) <= FP32_TOL


def test_bf16_close_to_reference_bf16_and_fp32(tiny_checkpoint_dir):
    golden32, _ = load_golden("vision", "tiny_combined_fp32")
    golden16, _ = load_golden("vision", "tiny_combined_bf16")
    model = Sam3VisionModel.from_pretrained(tiny_checkpoint_dir, neck="detector", dtype=torch.bfloat16)
    assert model.backbone.layers[0].attention.q_proj.weight.dtype == torch.bfloat16
    with torch.no_grad():
        out = model(pixels(golden32).to(torch.bfloat16))
    assert out.fpn_hidden_states[2].dtype == torch.bfloat16
    assert max_abs_diff(out.last_hidden_state, golden32["last_hidden_state"]) <= BF16_TOL
    assert max_abs_diff(out.fpn_hidden_states[2][:1], golden16["fpn_2"]) <= BF16_TOL
    assert max_abs_diff(out.fpn_hidden_states[2][:1], golden32["fpn_2"][:1]) <= BF16_TOL


def test_second_size_matches_reference():
    """Another shape of backbone: head dim 24, a window that does not divide the grid, tiled position
    embeddings, a 32-wide FPN."""
    golden, meta = load_golden("vision", "small_vision_fp32")
    config = Sam3VisionConfig.from_dict(meta["config"])
    state = {k: torch.from_numpy(v) for k, v in make_state_dict(meta["manifest"], seed=meta["seed"]).items()}
    model = build_and_load(Sam3VisionModel, config, state)
    with torch.no_grad():
        out = model(pixels(golden))
    diffs = compare_vision(out, golden, {})
    assert max(diffs.values()) <= FP32_TOL, diffs


def test_wrong_pixel_shapes_are_refused(detector_vision):
    with pytest.raises(ValueError, match="pixel_values must be"):
        detector_vision(torch.zeros(1, 224, 224))
    with pytest.raises(ValueError, match="patch grid"):
        detector_vision(torch.zeros(1, 3, 112, 112))
