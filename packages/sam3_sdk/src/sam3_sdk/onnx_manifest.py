"""The text of `manifest.json` besides the graphs' tensors: how images, clicks and phrases are
prepared for the graphs, and how their outputs become the SDK's masks (each recipe read from the
processors, so a checkpoint's own settings are the ones written)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "MANIFEST_NAME",
    "base_manifest",
    "concept_postprocessing",
    "text_preprocessing",
    "tracker_postprocessing",
    "tracker_preprocessing",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


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


def base_manifest(
    model_name: str, model_type: str, opset: int, refused: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    return {
        "version": MANIFEST_VERSION,
        "model": model_name,
        "model_type": model_type,
        "opset": opset,
        "torch": torch.__version__,
        "graphs": {},
        "refused": list(refused),
    }


def text_preprocessing(processor: Any) -> dict[str, Any]:
    """How phrases become `input_ids` / `attention_mask` (the detector processor's tokenizer)."""
    return {
        "tokenizer": "CLIP BPE (the checkpoint's tokenizer files; sam3_core.Sam3Processor.tokenizer)",
        "max_length": processor.text_max_length,
        "formula": (
            "phrases are whitespace-normalised, tokenised with start/end tokens, padded or truncated "
            f"to {processor.text_max_length} tokens; attention_mask 1 for tokens, 0 for padding (int64)"
        ),
    }


def concept_postprocessing(processor: Any) -> dict[str, Any]:
    """How the concept heads' outputs become instances (`post_process_instance_segmentation`)."""
    return {
        "scores": "sigmoid(pred_logits) * sigmoid(presence_logits), per phrase and query",
        "keep": "queries scoring above the threshold (the SDK's default 0.5)",
        "boxes": "pred_boxes (xyxy in [0, 1]) times (width, height, width, height) of the original image",
        "masks": (
            "sigmoid(pred_masks) upsampled to the original (height, width), bilinear, align_corners=False, "
            "then > mask_threshold (the SDK's default 0.5)"
        ),
        "mask_size": [processor.mask_size, processor.mask_size],
    }
