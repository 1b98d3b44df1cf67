"""`Sam3Model` against the reference's golden outputs on the tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden_io import max_abs_diff
from sam3_core import Sam3Model
from sam3_core.checkpoint import CheckpointError
from test_images import make_image

AREA = "detector"
CASES = ["text", "boxes", "text_negative_box", "batch_text", "batch_mixed"]
OUTPUTS = ["pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg"]
TOL = 1e-4
# float64 goldens (`<case>_f64`): both implementations in float64 round at ~1e-12, so anything above
# 1e-9 is a difference in what is computed, not rounding (fp32's 1e-4 can hide a 1 % error on
# logits of size ~0.01).
TOL_F64 = 1e-9
DTYPES = [torch.float32, torch.float64]


IMAGES = (make_image(150, 200, seed=1), make_image(240, 180, seed=5))


def _inputs(processor, meta):
    return processor(images=[IMAGES[i] for i in meta["images"]], **meta["kwargs"])


def _diffs(out, tensors, stride) -> dict[str, float]:
    got = {k: getattr(out, k) for k in OUTPUTS}
    got["pred_masks"] = got["pred_masks"][:, :, ::stride, ::stride]
    return {k: max_abs_diff(got[k], tensors[k]) for k in OUTPUTS}


@pytest.fixture(scope="module")
def detector_model_f64(tiny_checkpoint_dir) -> Sam3Model:
    return Sam3Model.from_pretrained(tiny_checkpoint_dir, dtype=torch.float64)


def _as(inputs, dtype: torch.dtype) -> dict:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items() if hasattr(v, "dtype")}


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_forward_matches_reference(
    case, dtype, detector_model, detector_model_f64, detector_processor, golden
):
    f64 = dtype == torch.float64
    tensors, meta = golden(AREA, f"{case}_f64" if f64 else case)
    inputs = _inputs(detector_processor, meta)
    if not f64:
        for key in ("input_ids", "attention_mask", "input_boxes_labels"):
            if key in tensors:
                assert torch.equal(inputs[key], tensors[key]), key
        if "input_boxes" in tensors:
            assert max_abs_diff(inputs["input_boxes"], tensors["input_boxes"]) <= 1e-6
        assert max_abs_diff(inputs["pixel_values"][:, :, ::8, ::8], tensors["pixel_values_strided"]) <= 1e-5
    model = detector_model_f64 if f64 else detector_model
    with torch.no_grad():
        out = model(**_as(inputs, dtype))
    assert out.pred_logits.dtype == dtype
    diffs = _diffs(out, tensors, meta["mask_stride"])
    tol = TOL_F64 if f64 else TOL
    assert all(d <= tol for d in diffs.values()), diffs


@pytest.mark.parametrize("case", ["text", "batch_text"])
def test_float64_post_processing_keeps_the_reference_instances(
    case, detector_model_f64, detector_processor, golden
):
    # every decision (kept instances, binarised masks) as the reference's, scores and boxes to 1e-9
    tensors, meta = golden(AREA, f"post_process_{case}_f64")
    inputs = _inputs(
        detector_processor, {"images": meta["images"], "kwargs": golden(AREA, f"{case}_f64")[1]["kwargs"]}
    )
    with torch.no_grad():
        out = detector_model_f64(**_as(inputs, torch.float64))
    results = detector_processor.post_process_instance_segmentation(
        out,
        threshold=meta["threshold"],
        mask_threshold=meta["mask_threshold"],
        target_sizes=meta["target_sizes"],
    )
    assert len(results) == len(meta["images"])
    for i, inst in enumerate(results):
        shape = tensors[f"mask_shape_{i}"].tolist()
        assert inst["masks"].shape[0] == shape[0], "kept instances differ"
        if not shape[0]:
            continue  # (the reference's empty result is (0, 64, 64), ours (0, H, W) at the target size)
        assert list(inst["masks"].shape) == shape
        expected = np.unpackbits(tensors[f"masks_{i}"].numpy())[: int(np.prod(shape))].reshape(shape)
        assert np.array_equal(inst["masks"].cpu().numpy().astype(np.uint8), expected)
        assert max_abs_diff(inst["scores"], tensors[f"scores_{i}"]) <= TOL_F64
        assert max_abs_diff(inst["boxes"], tensors[f"boxes_{i}"]) <= TOL_F64


def test_embedding_reuse_gives_same_numbers(detector_model, detector_processor, golden):
    tensors, meta = golden(AREA, "text")
    image_inputs = detector_processor(images=IMAGES[0])
    text_inputs = detector_processor(text=meta["kwargs"]["text"])
    assert set(text_inputs) == {"input_ids", "attention_mask"}
    with torch.no_grad():
        vision_embeds = detector_model.get_vision_features(pixel_values=image_inputs.pixel_values)
        text_embeds = detector_model.get_text_features(**text_inputs)
        direct = detector_model(**image_inputs, **text_inputs)
        from_vision = detector_model(vision_embeds=vision_embeds, **text_inputs)
        from_text = detector_model(
            pixel_values=image_inputs.pixel_values,
            text_embeds=text_embeds,
            attention_mask=text_inputs.attention_mask,
        )
        from_both = detector_model(
            vision_embeds=vision_embeds,
            text_embeds=text_embeds.pooler_output,
            attention_mask=text_inputs.attention_mask,
        )
    for out in (from_vision, from_text, from_both):
        for key in OUTPUTS:
            assert torch.equal(getattr(out, key), getattr(direct, key)), key
    diffs = _diffs(from_both, tensors, meta["mask_stride"])
    assert all(d <= TOL for d in diffs.values()), diffs


def test_one_phrase_is_shared_by_a_batch_of_images(detector_model, detector_processor):
    images = detector_processor(images=list(IMAGES))
    with torch.no_grad():
        text_embeds = detector_model.get_text_features(**detector_processor(text="ear"))
        batched = detector_model(pixel_values=images.pixel_values, text_embeds=text_embeds)
        single = detector_model(pixel_values=images.pixel_values[1:], text_embeds=text_embeds)
    assert batched.pred_logits.shape[0] == 2
    assert torch.allclose(batched.pred_logits[1:], single.pred_logits, atol=1e-5)


def test_bfloat16_runs_close_to_fp32(tiny_checkpoint_dir, detector_processor, golden):
    """bf16 weights and activations: logits within 0.1 and boxes within 0.02 of the fp32 reference;
    mask and semantic logits within 5% of the largest fp32 logit (about 0.5 here; measured 0.25-0.37)."""
    tensors, meta = golden(AREA, "text_negative_box")
    model = Sam3Model.from_pretrained(tiny_checkpoint_dir, dtype=torch.bfloat16)
    inputs = _inputs(detector_processor, meta).to(dtype=torch.bfloat16)
    with torch.no_grad():
        out = model(**inputs)
    assert out.pred_masks.dtype == torch.bfloat16
    diffs = _diffs(out, tensors, meta["mask_stride"])
    limits = {"pred_logits": 0.1, "presence_logits": 0.1, "pred_boxes": 0.02}
    for key in ("pred_masks", "semantic_seg"):
        limits[key] = 0.05 * tensors[key].abs().max().item()
    assert all(diffs[k] <= limits[k] for k in OUTPUTS), diffs


def test_loads_single_model_layout(detector_model, tmp_path, tiny_checkpoint_dir):
    """A checkpoint holding only Sam3Model's own keys (no detector_model. prefix) loads too."""
    import json

    from safetensors.torch import save_file

    config = json.loads((tiny_checkpoint_dir / "config.json").read_text())["detector_config"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file(
        {k: v.contiguous() for k, v in detector_model.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )
    again = Sam3Model.from_pretrained(tmp_path)
    for (k, a), b in zip(detector_model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k

    state = {k: v for k, v in detector_model.state_dict().items() if not k.startswith("dot_product_scoring.")}
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing: dot_product_scoring"):
        Sam3Model.from_pretrained(tmp_path)


def test_checkpoint_key_mapping():
    assert Sam3Model.map_checkpoint_key("detector_model.detr_decoder.query_embed.weight") == (
        "detr_decoder.query_embed.weight"
    )
    assert Sam3Model.map_checkpoint_key("tracker_model.mask_decoder.iou_token.weight") is None
    assert Sam3Model.map_checkpoint_key("tracker_neck.fpn_layers.0.proj1.weight") is None
    assert Sam3Model.map_checkpoint_key("text_projection.weight") == "text_projection.weight"


def test_forward_argument_errors(detector_model, detector_processor):
    inputs = detector_processor(images=IMAGES[0], text="cat")
    with pytest.raises(ValueError, match="exactly one of pixel_values or vision_embeds"):
        detector_model(input_ids=inputs.input_ids)
    with pytest.raises(ValueError, match="exactly one of input_ids or text_embeds"):
        detector_model(pixel_values=inputs.pixel_values)
    with pytest.raises(ValueError, match="input_boxes_labels has shape"):
        detector_model(
            **inputs, input_boxes=torch.rand(1, 2, 4), input_boxes_labels=torch.ones(1, 3, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="input_boxes must be"):
        detector_model(**inputs, input_boxes=torch.rand(1, 2, 3))
