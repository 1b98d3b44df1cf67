"""`pipeline("mask-generation", ...)`: automatic mask generation behind the reference's pipeline call.

An adapter over `Sam3TrackerMaskGenerator` (one crop, the whole image): the call's keyword
arguments are the pipeline's, its output the pipeline's dict, `{"masks": [(H, W) bool], "scores":
(N,)}`, plus `bounding_boxes` / `rle_mask` when asked for. The click grid covers the whole image
at any aspect ratio (the reference's covers only part of a non-square one; README, "Differences").
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .dtypes import as_dtype
from .mask_generation import Sam3TrackerMaskGenerator
from .models.sam3_tracker import Sam3TrackerModel
from .processing.image import load_image
from .processing.masks import masks_to_boxes
from .processing.tracker import Sam3TrackerProcessor
from .scalars import is_int

__all__ = ["MaskGenerationPipeline", "pipeline", "mask_to_rle"]

TASKS = ("mask-generation",)


def mask_to_rle(mask: torch.Tensor) -> dict[str, Any]:
    """Uncompressed RLE of an (H, W) bool mask, column-major, starting with a run of zeros (the
    COCO convention): {"size": [H, W], "counts": [run lengths]}."""
    flat = mask.t().flatten().to(torch.int8)
    change = torch.nonzero(flat[1:] != flat[:-1]).flatten() + 1
    bounds = [0, *change.tolist(), flat.numel()]
    counts = [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if flat.numel() and bool(flat[0]):
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def _device(device: int | str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cpu")
    if is_int(device):
        return torch.device("cpu") if device < 0 else torch.device("cuda", int(device))
    return torch.device(device)


class MaskGenerationPipeline:
    """Segment everything in an image: `pipe(image, points_per_batch=64)`.

    Call arguments (all optional): points_per_batch, points_per_crop (the grid is
    points_per_crop^2 clicks), pred_iou_thresh, stability_score_thresh, stability_score_offset,
    mask_threshold, crops_nms_thresh, output_bboxes_mask, output_rle_mask. Only the whole image is
    one crop (`crops_n_layers=0`).
    """

    task = "mask-generation"

    def __init__(self, model: Sam3TrackerModel, processor: Sam3TrackerProcessor | None = None) -> None:
        self.model = model
        self.processor = processor

    def __call__(
        self,
        image: Any,
        points_per_batch: int = 64,
        points_per_crop: int = 32,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        crops_nms_thresh: float = 0.7,
        crops_n_layers: int = 0,
        output_bboxes_mask: bool = False,
        output_rle_mask: bool = False,
    ) -> dict[str, Any]:
        """image: a PIL image, numpy HWC array, torch tensor or image file path.

        Returns {"masks": list of (H, W) bool tensors, "scores": (N,) predicted IoUs}, best first;
        with `output_bboxes_mask` also "bounding_boxes" (N, 4) xyxy pixels (x2, y2 exclusive), with `output_rle_mask`
        "rle_mask" (one `mask_to_rle` dict per mask).
        """
        if crops_n_layers != 0:
            raise ValueError(f"crops_n_layers={crops_n_layers} is not supported; only 0 (the whole image)")
        if isinstance(image, (str, os.PathLike)):
            image = load_image(image)
        generator = Sam3TrackerMaskGenerator(
            self.model,
            self.processor,
            points_per_side=points_per_crop,
            points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset,
            mask_threshold=mask_threshold,
            box_nms_thresh=crops_nms_thresh,
        )
        records = generator.generate(image)
        masks = [torch.from_numpy(r["segmentation"]) for r in records]
        out: dict[str, Any] = {
            "masks": masks,
            "scores": torch.tensor([r["predicted_iou"] for r in records], dtype=torch.float32),
        }
        if output_bboxes_mask:
            out["bounding_boxes"] = (
                masks_to_boxes(torch.stack(masks)) if masks else torch.zeros(0, 4, dtype=torch.float32)
            )
        if output_rle_mask:
            out["rle_mask"] = [mask_to_rle(m) for m in masks]
        return out


def pipeline(
    task: str,
    model: str | os.PathLike | Sam3TrackerModel | None = None,
    processor: Sam3TrackerProcessor | str | os.PathLike | None = None,
    device: int | str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    **model_kwargs: Any,
) -> MaskGenerationPipeline:
    """The reference's `pipeline(...)` for the one task sam3_core serves, "mask-generation".

    model: a loaded `Sam3TrackerModel`, or a hub id / folder to load it from (e.g. "facebook/sam3").
    device: an index (0 → "cuda:0", -1 → CPU), a name or a torch.device; dtype: e.g. torch.bfloat16.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not available; sam3_core serves {list(TASKS)}")
    if model is None:
        raise ValueError(
            "pipeline('mask-generation') needs model= (a Sam3TrackerModel, a hub id or a folder)"
        )
    if isinstance(model, (str, os.PathLike)):
        if isinstance(processor, (str, os.PathLike)) or processor is None:
            processor = Sam3TrackerProcessor.from_pretrained(processor or model)
        model = Sam3TrackerModel.from_pretrained(model, device=_device(device), dtype=dtype, **model_kwargs)
    elif not isinstance(model, Sam3TrackerModel):
        raise TypeError(f"model must be a Sam3TrackerModel, a hub id or a folder; got {type(model).__name__}")
    else:
        if device is not None:
            model = model.to(_device(device))
        if dtype is not None:
            model = model.to(as_dtype(dtype))
        if isinstance(processor, (str, os.PathLike)):
            processor = Sam3TrackerProcessor.from_pretrained(processor)
    return MaskGenerationPipeline(model, processor)
