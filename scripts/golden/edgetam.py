"""Golden cases of EdgeTAM video tracking (`EdgeTamVideoModel` / `Sam2VideoProcessor`).

A tiny EdgeTAM (tests/fixtures/tiny_edgetam/config.json) with random weights: the key manifest is
written here from the reference model's `state_dict()`, and the weights are rebuilt from their seed
by the shared random-checkpoint writer, in the reference venv and in the tests alike. The video
scenarios (tests/fixtures/edgetam_scenarios.py) are the SAM 3 tracker's, replayed through the same
public API. Also one frame of a full-width EdgeTAM (the real config, random weights, a smaller
input), computed by the reference and kept small.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import edgetam_scenarios
import torch
import video_scenarios as vs
from safetensors.torch import load_file
from tiny_checkpoint import HERE, write_tiny_checkpoint

from golden._float64 import interpolate_in_float64

TINY_EDGETAM_DIR = HERE / "tiny_edgetam"
SIZE = 128  # the tiny config's image size
MASK_SIZE = 32


def reference_config(config_dict: dict):
    from transformers import EdgeTamVideoConfig

    return EdgeTamVideoConfig.from_dict(config_dict)


def reference_model(checkpoint_dir: Path, dtype=torch.float32):
    from transformers import EdgeTamVideoModel

    config = reference_config(json.loads((checkpoint_dir / "config.json").read_text()))
    model = EdgeTamVideoModel(config).eval()
    state = load_file(str(checkpoint_dir / "model.safetensors"))
    own = model.state_dict()
    # the random writer stores every tensor as float32; BatchNorm counters are int64 in the model
    state = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    if dtype == torch.float64:
        interpolate_in_float64(type(model))
    return model.to(dtype)


def reference_processor(size: int = SIZE, mask_size: int = MASK_SIZE):
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    return Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(
            size={"height": size, "width": size}, mask_size={"height": mask_size, "width": mask_size}
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
    )


def write_manifest() -> None:
    config = reference_config(json.loads((TINY_EDGETAM_DIR / "config.json").read_text()))
    from transformers import EdgeTamVideoModel

    state = EdgeTamVideoModel(config).state_dict()
    (TINY_EDGETAM_DIR / "manifest.json").write_text(
        json.dumps({k: list(v.shape) for k, v in state.items()}, indent=0)
    )


def generate(ctx) -> None:
    write_manifest()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_tiny_checkpoint(Path(tmp) / "tiny_edgetam", source_dir=TINY_EDGETAM_DIR)
        model = reference_model(ckpt)
        processor = reference_processor()

        session = processor.init_video_session(video=vs.video(3))
        pixels = torch.stack([session.processed_frames[i] for i in range(3)])
        ctx.save("preprocess_video", {"pixels": pixels[:, :, ::4, ::4].contiguous()}, {"stride": 4})

        for name, (scenario, num_frames) in edgetam_scenarios.SCENARIOS.items():
            outputs = scenario(model, processor, vs.video(num_frames))
            tensors, meta = vs.record(outputs)
            ctx.save(name, tensors, meta)

        generate_f64(ctx, ckpt)

        model_bf16 = reference_model(ckpt, torch.bfloat16)
        tensors, meta = vs.record(vs.one_object(model_bf16, processor, vs.video(), dtype=torch.bfloat16))
        ctx.save("one_object_bf16", tensors, meta)


def generate_f64(ctx, checkpoint_dir: Path | None = None) -> None:
    """The `_f64` cases: the reference EdgeTAM in float64 (tests compare at 1e-9)."""
    with tempfile.TemporaryDirectory() as tmp:
        if checkpoint_dir is None:
            checkpoint_dir = write_tiny_checkpoint(Path(tmp) / "tiny_edgetam", source_dir=TINY_EDGETAM_DIR)
        model = reference_model(checkpoint_dir, torch.float64)
        processor = reference_processor()
        for name, (scenario, num_frames) in edgetam_scenarios.F64_SCENARIOS.items():
            outputs = scenario(model, processor, vs.video(num_frames), dtype=torch.float64)
            tensors, meta = vs.record(outputs, stride=vs.F64_STRIDE, dtype=torch.float64)
            ctx.save(name, tensors, meta)
