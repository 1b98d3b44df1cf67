"""Golden case of EdgeTAM at its real widths: the hub config's defaults (RepViT-M1, 256-wide heads,
256 + 256 perceiver latents, 1024 px), random weights from the shared writer, two frames of a
small video (a click on frame 0, frame 1 tracked through the compressed memory). Only the
low-resolution mask logits (every 8th pixel) and object scores are stored; the key manifest is
stored with them so the tests rebuild the same checkpoint.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import video_scenarios as vs
from sam3_sdk.testing import write_random_checkpoint

from golden.edgetam import reference_model

# The hub's config.json of EdgeTAM, reduced to what differs from the config classes' defaults.
FULL_CONFIG = {
    "model_type": "edgetam_video",
    "vision_config": {
        "model_type": "edgetam_vision_model",
        "backbone_config": {
            "model_type": "timm_wrapper",
            "architecture": "repvit_m1",
            "num_classes": 0,
            "model_args": {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]},
        },
    },
}
STRIDE = 8


def run(model, processor, dtype=torch.float32):
    """One click on frame 0 of a 2-frame video, then frame 1 tracked."""
    s = processor.init_video_session(video=vs.video(2), inference_device="cpu", dtype=dtype)
    processor.add_inputs_to_inference_session(s, 0, 1, input_points=[[[vs.ELLIPSE]]], input_labels=[[[1]]])
    outs = [model(inference_session=s, frame_idx=0)]
    outs += list(model.propagate_in_video_iterator(s))
    tensors = {}
    for i, out in enumerate(outs):
        tensors[f"masks_{i:03d}"] = out.pred_masks[..., ::STRIDE, ::STRIDE].float().clone()
        tensors[f"scores_{i:03d}"] = out.object_score_logits.float().clone()
    return tensors


def generate(ctx) -> None:
    from transformers import EdgeTamVideoConfig, EdgeTamVideoModel

    config = EdgeTamVideoConfig.from_dict(FULL_CONFIG)
    manifest = {k: list(v.shape) for k, v in EdgeTamVideoModel(config).state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_random_checkpoint(Path(tmp) / "full", config=FULL_CONFIG, manifest=manifest)
        model = reference_model(ckpt)
        tensors = run(model, _processor())
    ctx.save("one_click_two_frames", tensors, {"config": FULL_CONFIG, "manifest": manifest, "stride": STRIDE})


def _processor():
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    return Sam2VideoProcessor(image_processor=Sam2ImageProcessor(), video_processor=Sam2VideoVideoProcessor())
