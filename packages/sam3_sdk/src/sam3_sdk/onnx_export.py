"""`export_onnx`: our models as ONNX graphs, with a `manifest.json` that says what each one takes.

    from sam3_sdk import export_onnx
    manifest = export_onnx("facebook/sam3", "onnx/sam3")          # or `sam3 export onnx --model ...`

Graphs (each as `NAME.onnx` and, with fp16, `NAME_fp16.onnx`; see `onnx_graphs` for their tensors):

    click_decoder          prompt encoder + mask decoder, 3 candidate masks (multimask)
    click_decoder_single   the same, the one mask of `multimask_output=False`

Every graph runs in onnxruntime (CPU) and is checked against the PyTorch model in tests/export/.
A part that cannot be exported raises `OnnxExportRefused` naming the part and the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .onnx_graphs import CLICK_INPUTS, CLICK_OUTPUTS, ClickDecoder
from .onnx_io import OPSET, describe, export_graph, fp16_weights

__all__ = ["MANIFEST_NAME", "OnnxExportRefused", "click_decoder_example", "export_click_decoders"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
CLICK_DYNAMIC = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}


class OnnxExportRefused(RuntimeError):
    """A part of the model that cannot be exported to ONNX (the message names it and says why)."""


def click_decoder_example(tracker: nn.Module, num_points: int = 2) -> tuple[torch.Tensor, ...]:
    """Example inputs of the click decoder of `tracker` (random values of the right shapes)."""
    grid = tracker.prompt_encoder.image_embedding_size
    hidden = tracker.config.vision_config.fpn_hidden_size
    size = tracker.prompt_encoder.input_image_size
    gen = torch.Generator().manual_seed(0)
    embeddings = (
        torch.randn(1, hidden // 8, 4 * grid[0], 4 * grid[1], generator=gen),
        torch.randn(1, hidden // 4, 2 * grid[0], 2 * grid[1], generator=gen),
        torch.randn(1, hidden, *grid, generator=gen),
    )
    coords = torch.rand(1, num_points, 2, generator=gen) * size
    labels = torch.ones(1, num_points)
    mask = torch.zeros(1, 1, *tracker.prompt_encoder.mask_input_size)
    return (*embeddings, coords, labels, mask, torch.zeros(1))


def export_click_decoders(
    tracker: nn.Module, out_dir: str | os.PathLike, fp16: bool = True
) -> dict[str, dict[str, Any]]:
    """Write `click_decoder.onnx` (3 masks) and `click_decoder_single.onnx` (1 mask) of `tracker`
    (a `TrackerBase` model in fp32) into `out_dir`; returns their manifest entries by graph name."""
    out_dir = Path(out_dir)
    _check_fp32(tracker, "click decoder")
    example = click_decoder_example(tracker)
    entries = {}
    for name, multimask in (("click_decoder", True), ("click_decoder_single", False)):
        module = ClickDecoder(tracker, multimask)
        path = export_graph(
            module, example, out_dir / f"{name}.onnx", CLICK_INPUTS, CLICK_OUTPUTS, CLICK_DYNAMIC
        )
        with torch.no_grad():
            outputs = module(*example)
        entry = {
            "file": path.name,
            "multimask": multimask,
            "inputs": describe(CLICK_INPUTS, example, CLICK_DYNAMIC),
            "outputs": describe(CLICK_OUTPUTS, outputs),
            "point_labels": {
                "1": "positive click",
                "0": "negative click",
                "2": "box top-left corner (x1, y1)",
                "3": "box bottom-right corner (x2, y2)",
                "-1": "not a point (a learnt token; do NOT add one as padding: the graph appends it)",
                "-10": "padding (a zero token)",
            },
            "notes": (
                "One object on one image. A box is two points labelled 2 and 3 (put them after the "
                "clicks); the graph appends the 'not a point' token itself, as the PyTorch prompt "
                "encoder does, so the result equals model(input_points=clicks, input_boxes=box). "
                "mask_input is read only where has_mask_input is 1 (else it may be zeros)."
            ),
        }
        if fp16:
            half = fp16_weights(path, out_dir / f"{name}_fp16.onnx")
            entry["fp16_file"] = half.name
        entries[name] = entry
    return entries


def tracker_preprocessing(processor: Any) -> dict[str, Any]:
    """How an image becomes `pixel_values` and clicks become `point_coords` (the processor's recipe)."""
    size = processor.size
    return {
        "image": {
            "size": [size, size],
            "resize": (
                f"the RGB image, uint8, resized to {size}x{size} (aspect ratio NOT kept, no padding) with "
                f"{processor.resample} interpolation"
                + (", antialiased (torchvision's tensor resize)" if processor.resample != "nearest" else "")
            ),
            "resample": processor.resample,
            "antialias": processor.resample != "nearest",
            "rescale_factor": processor.rescale_factor,
            "mean": list(processor.image_mean),
            "std": list(processor.image_std),
            "formula": "pixel_values = (resized * rescale_factor - mean) / std per channel, layout (1, 3, S, S)",
        },
        "points": {
            "target_size": processor.target_size,
            "formula": (
                "x_model = x * float32(target_size / width), y_model = y * float32(target_size / height), "
                "with x, y in original-image pixels (float32 arithmetic); boxes alike, corner by corner"
            ),
        },
    }


def tracker_postprocessing(processor: Any) -> dict[str, Any]:
    """How `low_res_masks` becomes masks at the original image size (`post_process_masks`)."""
    return {
        "low_res_size": [processor.mask_size, processor.mask_size],
        "order": "the SDK sorts the candidates by iou_scores, highest first",
        "upsample": {
            "to": "the original image (height, width)",
            "mode": "bilinear",
            "align_corners": False,
            "antialias": False,
            "crop": None,
        },
        "threshold": 0.0,
        "formula": (
            "mask = interpolate(low_res_masks, size=(height, width), mode='bilinear', "
            "align_corners=False) > 0; no crop (the image was resized, not padded)"
        ),
        "multimask_default": (
            "the SDK uses click_decoder (3 candidates) for a single click without a box (with or without "
            "mask_input), else click_decoder_single"
        ),
    }


def write_manifest(out_dir: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    path = Path(out_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def base_manifest(model_name: str, model_type: str, refused: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {
        "version": MANIFEST_VERSION,
        "model": model_name,
        "model_type": model_type,
        "opset": OPSET,
        "torch": torch.__version__,
        "graphs": {},
        "refused": list(refused),
    }


def _check_fp32(model: nn.Module, part: str) -> None:
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise OnnxExportRefused(
            f"{part}: the model must be loaded in float32 for export, got {sorted(map(str, dtypes))} "
            "(the fp16 variants are made from the fp32 graphs)"
        )


PARTS = ("click_decoder",)  # every part, in export order


def export_onnx(
    model: str | os.PathLike,
    out: str | os.PathLike,
    parts: Sequence[str] | None = None,
    fp16: bool = True,
) -> dict[str, Any]:
    """Export the graphs of `model` (a hub id, a folder, or a random checkpoint's name such as
    `tiny-random`) into the folder `out`, with `manifest.json`; returns the manifest.

    parts: a subset of `PARTS` (default all that the model has). fp16: also write `*_fp16.onnx`.
    Raises `OnnxExportRefused` for a part that cannot be exported (named, with the reason).
    """
    from sam3_core import Sam3TrackerProcessor

    from .random_checkpoint import checkpoint_path

    unknown = sorted(set(parts or ()) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown parts {unknown}; expected some of {list(PARTS)}")
    wanted = list(parts) if parts else list(PARTS)
    folder = checkpoint_path(model)
    model_type, tracker = _load_tracker(folder)
    processor = Sam3TrackerProcessor.from_pretrained(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = base_manifest(str(model), model_type)
    manifest["preprocessing"] = tracker_preprocessing(processor)
    manifest["postprocessing"] = tracker_postprocessing(processor)
    if "click_decoder" in wanted:
        manifest["graphs"].update(export_click_decoders(tracker, out, fp16=fp16))
    write_manifest(out, manifest)
    return manifest


def _load_tracker(folder: str | os.PathLike) -> tuple[str, nn.Module]:
    """(model_type, the image tracker in fp32 on the CPU) of a checkpoint."""
    from sam3_core import EdgeTamVideoModel, Sam3TrackerModel
    from sam3_core.checkpoint_files import read_config, resolve_checkpoint_dir

    path = resolve_checkpoint_dir(folder, allow_patterns=("*.json",))
    model_type = read_config(path).get("model_type", "")
    if model_type == "edgetam_video":
        return model_type, EdgeTamVideoModel.from_pretrained(folder, device="cpu").eval()
    if model_type in ("sam3_video", "sam3_tracker", "sam3_tracker_video"):
        return model_type, Sam3TrackerModel.from_pretrained(folder, device="cpu").eval()
    raise OnnxExportRefused(
        f"{folder}: model_type {model_type!r} has no exportable image tracker; expected a SAM 3 "
        "checkpoint (sam3_video, sam3_tracker) or EdgeTAM's (edgetam_video)"
    )
