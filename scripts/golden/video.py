"""Golden cases of the video tracker (`Sam3TrackerVideoModel` / `Sam3TrackerVideoProcessor`).

The scenarios (tests/fixtures/video_scenarios.py) drive the reference here and our model in the
tests through the same public API. Low-resolution mask logits are stored every 2nd pixel.
"""

from __future__ import annotations

import torch
import video_scenarios as vs
from safetensors.torch import load_file

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
    return model.to(dtype)


def reference_processor():
    """The processor the hub's `processor_config.json` describes, at the tiny model's size."""
    from transformers import Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3TrackerVideoProcessor

    size = {"height": SIZE, "width": SIZE}
    return Sam3TrackerVideoProcessor(
        image_processor=Sam3ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
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

    # bf16: the reference in bf16 on the same scenario as `one_object`.
    model_bf16 = reference_model(ctx, torch.bfloat16)
    tensors, meta = vs.record(vs.one_object(model_bf16, processor, vs.video(), dtype=torch.bfloat16))
    ctx.save("one_object_bf16", tensors, meta)
