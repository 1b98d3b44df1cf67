"""Golden cases of the image preprocessing, the ViT backbone and both FPN necks."""

from __future__ import annotations

import json

import numpy as np
import torch
from test_images import make_image
from tiny_checkpoint import make_state_dict

# A second, differently shaped vision config (not the combined tiny one) so that the backbone is
# checked at another size too: head dim 24, a 3-patch window that does not divide the 8x8 grid
# (padding), position embeddings learnt on a 4x4 grid and tiled to 8x8.
SMALL_VISION = {
    "model_type": "sam3_vision_model",
    "fpn_hidden_size": 32,
    "scale_factors": [4.0, 2.0, 1.0, 0.5],
    "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
    "backbone_config": {
        "model_type": "sam3_vit_model",
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "image_size": 112,
        "patch_size": 14,
        "pretrain_image_size": 56,
        "window_size": 3,
        "global_attn_indexes": [1],
        "rope_parameters": {"rope_type": "axial", "rope_theta": 10000.0},
    },
}


def as_uint8(pixel_values: torch.Tensor) -> torch.Tensor:
    """Pixel values are exactly (u - 127.5) / 127.5 for uint8 u: store u (4x smaller, lossless)."""
    u = (pixel_values * 127.5 + 127.5).round().to(torch.uint8)
    assert torch.equal((u.float() - 127.5) / 127.5, pixel_values), "pixel values are not a uint8 image"
    return u


def _preprocessing_cases(ctx) -> None:
    from transformers import Sam3ImageProcessor

    # 96 px: not the model size on purpose (the resize must follow `size`), and small to store.
    processor = Sam3ImageProcessor(size={"height": 96, "width": 96})
    rgb = make_image(150, 200, seed=1)
    gray = make_image(90, 60, seed=2, mode="L")
    rgba = make_image(64, 96, seed=3, mode="RGBA")
    arr = np.asarray(make_image(300, 120, seed=4))
    cases = {
        "pil_rgb": [rgb],
        "pil_gray": [gray],
        "pil_rgba": [rgba],
        "numpy_hwc": [arr],
        "numpy_rgba": [np.asarray(rgba)],
        "torch_chw": [torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()],
        "batch_mixed": [rgb, arr, gray],
    }
    for name, images in cases.items():
        out = processor(images=images, return_tensors="pt")
        ctx.save(
            f"preprocess_{name}",
            {"pixels_u8": as_uint8(out["pixel_values"])},
            {"original_sizes": [list(map(int, s)) for s in out["original_sizes"]]},
        )


def _run_vision(model, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(pixel_values)
    tensors = {"last_hidden_state": out.last_hidden_state}
    for i, (fmap, pos) in enumerate(zip(out.fpn_hidden_states, out.fpn_position_encoding)):
        tensors[f"fpn_{i}"] = fmap
        tensors[f"pos_{i}"] = pos
    return tensors


def generate(ctx) -> None:
    from transformers import Sam3ImageProcessor, Sam3VideoModel, Sam3VisionConfig, Sam3VisionModel

    _preprocessing_cases(ctx)

    # The combined tiny checkpoint: detector backbone + neck, and the tracker neck on the same backbone.
    config = ctx.reference_config()
    from safetensors.torch import load_file

    state = load_file(str(ctx.checkpoint_dir / "model.safetensors"))
    full = Sam3VideoModel(config).eval()
    full.load_state_dict(state, strict=True)
    vision = full.detector_model.vision_encoder
    processor = Sam3ImageProcessor(size={"height": 224, "width": 224})
    pixels = processor(
        images=[make_image(150, 200, seed=1), make_image(240, 180, seed=5)], return_tensors="pt"
    )["pixel_values"]
    tensors = _run_vision(vision, pixels)
    with torch.no_grad():
        spatial = tensors["last_hidden_state"].view(2, 16, 16, -1).permute(0, 3, 1, 2)
        tracker_maps, _ = full.tracker_neck(spatial)
    for i, fmap in enumerate(tracker_maps):
        tensors[f"tracker_fpn_{i}"] = fmap
    # Stored small: level 0 (64x64x128 per image) alone would be 4 MB. Every 4th (level 0) or
    # 2nd (level 1) pixel keeps all channels and still covers the whole map; the position encodings
    # do not depend on the image, so one batch entry is kept; the tracker neck keeps image 1.
    for i in range(4):
        tensors[f"pos_{i}"] = tensors[f"pos_{i}"][:1]
        tensors[f"tracker_fpn_{i}"] = tensors[f"tracker_fpn_{i}"][1:]
    for key, step in (
        ("fpn_0", 4),
        ("tracker_fpn_0", 4),
        ("pos_0", 4),
        ("fpn_1", 2),
        ("tracker_fpn_1", 2),
        ("pos_1", 2),
    ):
        tensors[key] = tensors[key][:, :, ::step, ::step].contiguous()
    ctx.save("tiny_combined_fp32", {"pixels_u8": as_uint8(pixels), **tensors}, {"strides": {"0": 4, "1": 2}})

    with torch.no_grad():
        vision_bf16 = Sam3VideoModel(config).eval()
        vision_bf16.load_state_dict(state, strict=True)
        vision_bf16 = vision_bf16.detector_model.vision_encoder.to(torch.bfloat16)
        out = vision_bf16(pixels.to(torch.bfloat16))
    ctx.save(
        "tiny_combined_bf16",
        {"last_hidden_state": out.last_hidden_state.float(), "fpn_2": out.fpn_hidden_states[2][:1].float()},
    )

    # A second vision size, loaded from weights made by the same seeded recipe.
    small_cfg = Sam3VisionConfig.from_dict(json.loads(json.dumps(SMALL_VISION)))
    small = Sam3VisionModel(small_cfg).eval()
    manifest = {k: list(v.shape) for k, v in small.state_dict().items()}
    small.load_state_dict({k: torch.from_numpy(v) for k, v in make_state_dict(manifest, seed=3).items()})
    small_proc = Sam3ImageProcessor(size={"height": 112, "width": 112})
    small_pixels = small_proc(images=[make_image(80, 130, seed=6)], return_tensors="pt")["pixel_values"]
    ctx.save(
        "small_vision_fp32",
        {"pixels_u8": as_uint8(small_pixels), **_run_vision(small, small_pixels)},
        {"config": SMALL_VISION, "manifest": manifest, "seed": 3},
    )
