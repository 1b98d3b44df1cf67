"""Golden cases of the video tracker (`Sam3TrackerVideoModel` / `Sam3TrackerVideoProcessor`).

The scenarios (tests/fixtures/video_scenarios.py) drive the reference here and our model in the
tests through the same public API. Low-resolution mask logits are stored every 2nd pixel.
"""

from __future__ import annotations

import torch
import video_scenarios as vs
from safetensors.torch import load_file

from golden._float64 import interpolate_in_float64

SIZE = 224  # the tiny config's image size


def reference_model(ctx, dtype=torch.float32):
    """The reference `Sam3TrackerVideoModel` with the tiny checkpoint (hub keys mapped as ours)."""
    from transformers import Sam3TrackerVideoModel

    model = Sam3TrackerVideoModel(ctx.reference_config()).eval()
    state = {}
    for key, value in load_file(str(ctx.checkpoint_dir / "model.safetensors")).items():
        if key.startswith("detector_model.vision_encoder.backbone."):
            state[key[len("detector_model.") :]] = value
        elif key.startswith("tracker_neck."):
            state["vision_encoder.neck." + key[len("tracker_neck.") :]] = value
        elif key.startswith("tracker_model."):
            state[key[len("tracker_model.") :]] = value
    model.load_state_dict(state, strict=True)
    if dtype == torch.float64:
        interpolate_in_float64(type(model))
    return model.to(dtype)


# A video processor config that differs from the image processor's (the frames normalised with
# ImageNet statistics, the prompts' image processor with SAM's 0.5): the `video_config_differs_f64` case.
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def reference_processor(video_mean=(0.5,) * 3, video_std=(0.5,) * 3):
    """The processor the hub's `processor_config.json` describes, at the tiny model's size (or with
    other statistics for the video frames)."""
    from transformers import Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3TrackerVideoProcessor

    size = {"height": SIZE, "width": SIZE}
    return Sam3TrackerVideoProcessor(
        image_processor=Sam3ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(
            size=size, image_mean=list(video_mean), image_std=list(video_std)
        ),
    )


def generate(ctx) -> None:
    model = reference_model(ctx)
    processor = reference_processor()

    # Video preprocessing: the session's frames, every 4th pixel (exact uint8 values).
    frames = vs.video()
    session = processor.init_video_session(video=frames)
    pixels = torch.stack([session.processed_frames[i] for i in range(len(frames))])
    u8 = (pixels * 127.5 + 127.5).round().to(torch.uint8)
    assert torch.equal((u8.float() - 127.5) / 127.5, pixels), "video pixel values are not a uint8 image"
    ctx.save(
        "preprocess_video",
        {"pixels_u8": u8[:, :, ::4, ::4].contiguous()},
        {"original_size": [int(session.video_height), int(session.video_width)], "stride": 4},
    )

    for name, (scenario, num_frames) in vs.SCENARIOS.items():
        outputs = scenario(model, processor, vs.video(num_frames))
        tensors, meta = vs.record(outputs)
        ctx.save(name, tensors, meta)

    generate_f64(ctx)

    # bf16: the reference in bf16 on the same scenario as `one_object`.
    model_bf16 = reference_model(ctx, torch.bfloat16)
    tensors, meta = vs.record(vs.one_object(model_bf16, processor, vs.video(), dtype=torch.bfloat16))
    ctx.save("one_object_bf16", tensors, meta)


def generate_f64(ctx) -> None:
    """The `_f64` cases: the reference in float64 (tests compare at 1e-9: logic, not rounding)."""
    model = reference_model(ctx, torch.float64)
    processor = reference_processor()
    for name, (scenario, num_frames) in vs.F64_SCENARIOS.items():
        outputs = scenario(model, processor, vs.video(num_frames), dtype=torch.float64)
        tensors, meta = vs.record(outputs, stride=vs.F64_STRIDE, dtype=torch.float64)
        ctx.save(name, tensors, meta)
    processor = reference_processor(IMAGENET_MEAN, IMAGENET_STD)
    outputs = vs.objects_on_different_frames(model, processor, vs.video(), dtype=torch.float64)
    tensors, meta = vs.record(outputs, stride=vs.F64_STRIDE, dtype=torch.float64)
    ctx.save(
        "video_config_differs_f64", tensors, {**meta, "video_mean": IMAGENET_MEAN, "video_std": IMAGENET_STD}
    )
