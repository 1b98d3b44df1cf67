"""`MaskGenerator`: segment everything in an image (a grid of clicks through the tracker's decoder,
over the shared image features)."""

from __future__ import annotations

import numpy as np
import torch
from sam3_core import Sam3TrackerMaskGenerator, Sam3TrackerModel, Sam3TrackerProcessor

from .features import FeatureStore, ImageFeatures
from .images import ImageLike
from .prompts import check_threshold, is_int
from .results import Instances, masks_to_boxes

__all__ = ["MaskGenerator"]


class MaskGenerator:
    """Every object in an image as `Instances`, from the cached backbone pass of the image.

    >>> generator = MaskGenerator(tracker, processor, FeatureStore(tracker, processor))
    >>> found = generator.generate("street.jpg", points_per_side=16)
    """

    def __init__(
        self, tracker: Sam3TrackerModel, processor: Sam3TrackerProcessor, features: FeatureStore
    ) -> None:
        self.tracker = tracker
        self.processor = processor
        self.features = features

    def generate(
        self,
        image: ImageLike | ImageFeatures,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        box_nms_thresh: float = 0.7,
        min_mask_region_area: int = 0,
    ) -> Instances:
        """Segment everything: a grid of clicks, filtered by predicted IoU and stability, then box NMS.

        points_per_side: the grid has points_per_side² clicks; points_per_batch: clicks decoded at once.
        pred_iou_thresh, stability_score_thresh, box_nms_thresh: in [0, 1].
        min_mask_region_area: when > 0, holes and islands smaller than this (pixels) are removed.
        Returns `Instances` sorted by predicted IoU; `extra` holds stability_score and point_coords.
        """
        for name, value in (("points_per_side", points_per_side), ("points_per_batch", points_per_batch)):
            if not is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("pred_iou_thresh", pred_iou_thresh), ("stability_score_thresh", stability_score_thresh),
                            ("box_nms_thresh", box_nms_thresh)):  # fmt: skip
            check_threshold(value, name)
        if not is_int(min_mask_region_area) or min_mask_region_area < 0:
            raise ValueError(
                f"min_mask_region_area must be a non-negative integer, got {min_mask_region_area!r}"
            )
        # numpy scalars are accepted; the core and the result's prompt get plain Python numbers
        points_per_side, points_per_batch = int(points_per_side), int(points_per_batch)
        min_mask_region_area = int(min_mask_region_area)
        pred_iou_thresh, stability_score_thresh = float(pred_iou_thresh), float(stability_score_thresh)
        box_nms_thresh = float(box_nms_thresh)
        entry = self.features.get(image)
        generator = Sam3TrackerMaskGenerator(
            self.tracker, self.processor, points_per_side=points_per_side,
            points_per_batch=points_per_batch, pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh, box_nms_thresh=box_nms_thresh,
            min_mask_region_area=min_mask_region_area,
        )  # fmt: skip
        with torch.inference_mode():
            records = generator.generate(
                entry.image, image_embeddings=self.features.tracker_embeddings(entry)
            )
        h, w = entry.size
        masks = np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, h, w), bool)
        return Instances(
            masks=masks,
            scores=[r["predicted_iou"] for r in records],
            boxes=masks_to_boxes(masks),
            prompt={"points_per_side": points_per_side},
            extra={
                "stability_score": [r["stability_score"] for r in records],
                "point_coords": [r["point_coords"] for r in records],
            },
        )
