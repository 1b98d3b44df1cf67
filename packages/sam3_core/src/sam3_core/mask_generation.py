"""Automatic mask generation: prompt the tracker with a grid of points and keep the good masks.

Like the original SAM automatic mask generator (and the reference's "mask-generation" pipeline):
a `points_per_side` x `points_per_side` grid of single positive clicks, decoded `points_per_batch`
at a time from one backbone pass, three candidate masks per click; masks are kept when their
predicted IoU and stability score pass the thresholds, duplicates are removed by box NMS, and
small disconnected regions and holes can be cleaned up. Records are sorted by predicted IoU.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .models.sam3_tracker import Sam3TrackerModel
from .processing.mask_cleanup import connected_components
from .processing.masks import masks_to_boxes
from .processing.tracker import Sam3TrackerProcessor

__all__ = ["Sam3TrackerMaskGenerator", "build_point_grid", "box_nms", "masks_to_boxes", "stability_scores"]


def build_point_grid(points_per_side: int) -> Tensor:
    """(n*n, 2) (x, y) points at the centres of an n x n grid over [0, 1]^2, row by row."""
    if points_per_side <= 0:
        raise ValueError(f"points_per_side must be positive, got {points_per_side}")
    side = (torch.arange(points_per_side, dtype=torch.float32) + 0.5) / points_per_side
    ys, xs = torch.meshgrid(side, side, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=-1)


def stability_scores(mask_logits: Tensor, threshold: float, offset: float) -> Tensor:
    """IoU of the masks binarised at threshold + offset and threshold - offset: (N, H, W) -> (N,)."""
    inter = (mask_logits > threshold + offset).flatten(1).sum(-1)
    union = (mask_logits > threshold - offset).flatten(1).sum(-1)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter, dtype=torch.float32))


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of xyxy boxes (N, 4) x (M, 4) -> (N, M), areas as (x1 - x0) * (y1 - y0)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(inter))


# SAM's generator suppresses duplicates by the IoU of boxes whose far corner is the last mask pixel;
# shrinking our exclusive boxes by this gives the same IoUs, so the same masks are kept.
LAST_PIXEL_CORNERS = (0.0, 0.0, 1.0, 1.0)


def box_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression (like torchvision's `nms`): indices kept, best score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps = (box_iou(boxes[order], boxes[order]) > iou_threshold).cpu()
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):  # one step per box (not per pixel); each step is a vector op
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.int64, device=order.device)]


def _passes(values: Tensor, threshold: float) -> Tensor:
    """(N,) bool: values above a quality threshold; a threshold of 0 or less filters nothing (as in
    SAM's generator and the reference's pipeline), so a score of exactly 0 is kept too."""
    if threshold <= 0:
        return torch.ones_like(values, dtype=torch.bool)
    return values > threshold


def remove_small_regions(masks: Tensor, min_area: int) -> Tensor:
    """Fill holes and drop islands of fewer than `min_area` pixels in (N, H, W) bool masks."""
    _, hole_areas = connected_components(~masks)
    masks = masks | ((hole_areas > 0) & (hole_areas < min_area))
    _, island_areas = connected_components(masks)
    return masks & ~((island_areas > 0) & (island_areas < min_area))


class Sam3TrackerMaskGenerator:
    """Segment everything in an image with a `Sam3TrackerModel`.

    Args:
        model: the tracker.
        processor: its processor (defaults to one for the model's input size).
        points_per_side: the click grid is points_per_side^2 points.
        points_per_batch: clicks decoded together (memory vs speed).
        pred_iou_thresh: keep masks whose predicted IoU is above this (0 or less: keep all, as
            SAM's generator does).
        stability_score_thresh: keep masks whose stability score is above this (0 or less: keep all).
        stability_score_offset: logit offset of the stability score.
        mask_threshold: logit threshold of the binary masks.
        box_nms_thresh: box IoU above which the lower-scored of two masks is dropped.
        min_mask_region_area: when > 0, fill holes and remove islands smaller than this many
            pixels (of the original image), then run NMS again.
        point_grid: (P, 2) click positions (x, y) as fractions of the image's width and height, in
            [0, 1]; replaces the points_per_side grid.
    """

    def __init__(
        self,
        model: Sam3TrackerModel,
        processor: Sam3TrackerProcessor | None = None,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        min_mask_region_area: int = 0,
        point_grid: Tensor | None = None,
    ) -> None:
        if points_per_batch <= 0:
            raise ValueError(f"points_per_batch must be positive, got {points_per_batch}")
        for name, value in (("pred_iou_thresh", pred_iou_thresh), ("box_nms_thresh", box_nms_thresh)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.model = model
        size = model.prompt_encoder.input_image_size
        self.processor = processor or Sam3TrackerProcessor(
            size=size, mask_size=model.prompt_encoder.mask_input_size[0]
        )
        if point_grid is None:
            self.point_grid = build_point_grid(points_per_side)
        else:
            point_grid = torch.as_tensor(point_grid, dtype=torch.float32).cpu()
            if point_grid.ndim != 2 or point_grid.shape[-1] != 2 or len(point_grid) == 0:
                raise ValueError(
                    f"point_grid must be (P, 2) (x, y) fractions, got shape {tuple(point_grid.shape)}"
                )
            if not bool(((point_grid >= 0) & (point_grid <= 1)).all()):
                raise ValueError("point_grid must lie in [0, 1] (fractions of the image's width and height)")
            self.point_grid = point_grid
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.min_mask_region_area = min_mask_region_area

    @torch.no_grad()
    def generate(self, image: Any, image_embeddings: list[Tensor] | None = None) -> list[dict[str, Any]]:
        """Masks of everything in `image` (PIL, numpy HWC, torch or a path).

        Returns records sorted by predicted IoU, best first, each with `segmentation` (H, W) bool
        numpy array, `area` (pixels), `bbox` [x, y, w, h], `predicted_iou`, `point_coords`
        [[x, y]] (original-image pixels), `stability_score` and `crop_box` [x, y, w, h].
        """
        masks, scores, stability, points, low_res = self._candidates(image, image_embeddings)
        boxes = masks_to_boxes(masks)  # (N, 4) xyxy, x2 / y2 exclusive
        corners = boxes.new_tensor(LAST_PIXEL_CORNERS)
        keep = box_nms(boxes - corners, scores, self.box_nms_thresh)
        masks, scores, points, boxes = masks[keep], scores[keep], points[keep], boxes[keep]
        if stability is None:  # not filtered on: scored only for the masks NMS kept
            stability = self._stability(low_res[keep.to(low_res.device)], masks.shape[-2:]).cpu()
        else:
            stability = stability[keep]
        if self.min_mask_region_area > 0 and len(masks):
            cleaned = remove_small_regions(masks, self.min_mask_region_area)
            changed = (cleaned != masks).flatten(1).any(-1)
            # Like SAM: prefer masks the cleanup did not touch when they now overlap.
            keep = box_nms(masks_to_boxes(cleaned) - corners, (~changed).float(), self.box_nms_thresh)
            masks, scores, stability, points = cleaned[keep], scores[keep], stability[keep], points[keep]
            boxes = masks_to_boxes(masks)
        order = torch.argsort(scores, descending=True, stable=True)
        h, w = masks.shape[-2:] if len(masks) else self._last_size
        records = []
        for i in order.tolist():
            x0, y0, x1, y1 = boxes[i].tolist()
            records.append(
                {
                    "segmentation": masks[i].cpu().numpy(),
                    "area": int(masks[i].sum()),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "predicted_iou": float(scores[i]),
                    "point_coords": [points[i].tolist()],
                    "stability_score": float(stability[i]),
                    "crop_box": [0, 0, w, h],
                }
            )
        return records

    def __call__(self, image: Any) -> dict[str, Any]:
        """The "mask-generation" pipeline's output: {"masks": [(H, W) bool tensors], "scores": (N,)}."""
        records = self.generate(image)
        return {
            "masks": [torch.from_numpy(r["segmentation"]) for r in records],
            "scores": torch.tensor([r["predicted_iou"] for r in records]),
        }

    def _upsample(self, logits: Tensor, size: tuple[int, int]) -> Tensor:
        """(N, h, w) low-resolution mask logits -> (N, H, W) at the original image size."""
        return F.interpolate(logits[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]

    def _stability(self, logits: Tensor, size: tuple[int, int]) -> Tensor:
        """(N,) stability scores of (N, h, w) low-resolution logits, measured at the image size."""
        if len(logits) == 0:
            return torch.zeros(0)
        return stability_scores(
            self._upsample(logits, size), self.mask_threshold, self.stability_score_offset
        )

    def _candidates(
        self, image: Any, embeddings: list[Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]:
        """All masks passing the IoU and stability filters: (N, H, W) bool masks at the original
        size, (N,) predicted IoUs, (N,) stability scores (None when that filter is off: they are
        then computed only for the masks NMS keeps), (N, 2) clicks in image pixels and the (N, h, w)
        low-resolution logits.

        `embeddings`: the image's `get_image_embeddings` output when already computed (then `image`
        only gives the original size: an (H, W, C) array or a PIL image)."""
        if embeddings is None:
            inputs = self.processor(images=image, device=self.model.device)
            height, width = (int(v) for v in inputs["original_sizes"][0])
            embeddings = self.model.get_image_embeddings(inputs["pixel_values"])
        else:
            width, height = (
                image.size
                if hasattr(image, "size") and not hasattr(image, "shape")
                else (image.shape[1], image.shape[0])
            )
        self._last_size = (height, width)
        size = self.processor.target_size
        grid_model = self.point_grid * size  # model-input pixels
        grid_image = self.point_grid * torch.tensor([width, height], dtype=torch.float32)
        filter_stability = self.stability_score_thresh > 0

        all_masks, all_scores, all_stability, all_points, all_low_res = [], [], [], [], []
        for start in range(0, len(grid_model), self.points_per_batch):
            pts = grid_model[start : start + self.points_per_batch]
            out = self.model(
                input_points=pts[None, :, None, :].to(self.model.device),
                input_labels=torch.ones(1, len(pts), 1, dtype=torch.int64, device=self.model.device),
                image_embeddings=embeddings,
                multimask_output=True,
            )
            logits = out.pred_masks[0].float().flatten(0, 1)  # (n*3, h, w)
            iou = out.iou_scores[0].float().flatten()
            point_idx = torch.arange(len(pts)).repeat_interleave(out.pred_masks.shape[2])
            keep = _passes(iou, self.pred_iou_thresh)
            if not keep.any():
                continue
            logits, iou, point_idx = logits[keep], iou[keep], point_idx[keep.cpu()]
            up = self._upsample(logits, (height, width))  # (n, H, W)
            masks = up > self.mask_threshold
            if filter_stability:
                stab = stability_scores(up, self.mask_threshold, self.stability_score_offset)
                keep = _passes(stab, self.stability_score_thresh)
                masks, logits, iou, point_idx = masks[keep], logits[keep], iou[keep], point_idx[keep.cpu()]
                all_stability.append(stab[keep].cpu())
            del up
            all_masks.append(masks.cpu())
            all_scores.append(iou.cpu())
            all_points.append(grid_image[start : start + self.points_per_batch][point_idx])
            all_low_res.append(logits)
        stability = torch.cat(all_stability) if filter_stability and all_stability else None
        if not all_masks:
            empty = torch.zeros(0)
            stability = empty if filter_stability else None
            return torch.zeros(0, height, width, dtype=torch.bool), empty, stability, torch.zeros(0, 2), empty
        return (
            torch.cat(all_masks),
            torch.cat(all_scores),
            stability,
            torch.cat(all_points),
            torch.cat(all_low_res),
        )
