"""The documented output fields against the reference, and ours → reference round trips: the
reference loaded the folders our save_pretrained wrote (scripts/golden/api.py) and its outputs
must equal ours on the same inputs."""

from __future__ import annotations

import torch
from golden_io import max_abs_diff
from test_images import make_image

TOL = 1e-4


def _image(meta):
    h, w, seed = meta["image"]
    return make_image(h, w, seed=seed)


def test_detector_text_embeds_and_reference_boxes(golden, detector_model, detector_processor):
    tensors, meta = golden("api", "detector_fields")
    text_inputs = detector_processor(text=meta["text"])
    assert torch.equal(text_inputs["input_ids"], tensors["input_ids"])
    inputs = detector_processor(images=[_image(meta)] * 2, text=meta["text"])
    with torch.no_grad():
        text = detector_model.get_text_features(**text_inputs)
        out = detector_model(**inputs)
    assert text.keys()[:2] == ["text_embeds", "last_hidden_state"]
    for name in ("text_embeds", "last_hidden_state", "pooler_output"):
        assert max_abs_diff(getattr(text, name), tensors[name]) <= TOL, name
    for name in ("pred_logits", "pred_boxes", "decoder_reference_boxes"):
        assert max_abs_diff(getattr(out, name), tensors[name]) <= TOL, name


def test_tracker_hidden_states_tuple_and_bf16_masks(golden, tracker_model, tracker_processor):
    tensors, meta = golden("api", "tracker_fields")
    inputs = tracker_processor(images=_image(meta), input_points=meta["points"], input_labels=meta["labels"])
    with torch.no_grad():
        out = tracker_model(**inputs, output_hidden_states=True)
        as_tuple = tracker_model(**inputs, return_dict=False)
    assert out.keys() == meta["keys"]
    assert isinstance(as_tuple, tuple) and len(as_tuple) == meta["tuple_length"]
    assert torch.equal(as_tuple[1], out.pred_masks)
    hidden = [tensors[f"vision_hidden_states.{i}"] for i in range(len(out.vision_hidden_states))]
    assert len(hidden) == sum(k.startswith("vision_hidden_states.") for k in tensors)
    for i, (ours, theirs) in enumerate(zip(out.vision_hidden_states, hidden, strict=True)):
        assert max_abs_diff(ours, theirs) <= TOL, f"vision_hidden_states[{i}]"
    assert max_abs_diff(out.pred_masks, tensors["pred_masks"]) <= TOL
    assert max_abs_diff(out.iou_scores, tensors["iou_scores"]) <= TOL

    # bf16 logits stay bf16: the reference upsamples them in bf16; from identical inputs we agree
    masks = tracker_processor.post_process_masks(
        tensors["pred_masks"].to(torch.bfloat16), inputs["original_sizes"], binarize=False
    )[0]
    assert str(masks.dtype) == meta["bf16_masks_dtype"] == "torch.bfloat16"
    assert max_abs_diff(masks[:, :, ::3, ::3], tensors["bf16_masks"]) == 0.0


def test_video_tracker_saved_by_us_runs_in_the_reference(golden, video_model, video_processor):
    tensors, meta = golden("api", "video_round_trip")
    image = make_image(150, 200, seed=1)
    session = video_processor.init_video_session(video=[image] * 3, inference_device="cpu")
    video_processor.add_inputs_to_inference_session(
        inference_session=session, frame_idx=0, obj_ids=1, input_points=meta["points"], input_labels=[[[1]]]
    )
    with torch.no_grad():
        video_model(inference_session=session, frame_idx=0)
        frames = {
            f"frame.{o.frame_idx}": o.pred_masks for o in video_model.propagate_in_video_iterator(session)
        }
    assert sorted(frames) == sorted(tensors)
    for name, masks in frames.items():
        assert max_abs_diff(masks, tensors[name]) <= TOL, name
