"""`ImagePredictor`: one object from clicks, a box and/or a mask (the tracker's prompt decoder over
the shared image features)."""

from __future__ import annotations

import numpy as np
import torch
from sam3_core import Sam3TrackerModel, Sam3TrackerProcessor

from .features import FeatureStore, ImageFeatures
from .images import ImageLike
from .prompts import check_box, check_mask, check_points
from .results import ObjectMasks, masks_to_boxes

__all__ = ["ImagePredictor"]

CONFIDENT_LOGIT = 10.0  # a prompt mask becomes logits of +-this: the decoder reads it as certain


class ImagePredictor:
    """Points, boxes and masks → `ObjectMasks`, numpy in and out.

    >>> predictor = ImagePredictor(tracker, processor, FeatureStore(tracker, processor))
    >>> obj = predictor.predict("truck.jpg", points=[(500, 375)], labels=[1])

    The backbone runs once per image (kept in `features`); each prompt then costs only the decoder.
    """

    def __init__(
        self, tracker: Sam3TrackerModel, processor: Sam3TrackerProcessor, features: FeatureStore
    ) -> None:
        self.tracker = tracker
        self.processor = processor
        self.features = features

    def set_image(self, image: ImageLike | ImageFeatures) -> ImageFeatures:
        """The features of `image`, with its backbone pass done now (later prompts only decode)."""
        entry = self.features.get(image)
        self.features.tracker_embeddings(entry)
        return entry

    def predict(
        self,
        image: ImageLike | ImageFeatures,
        points: list[tuple[float, float]] | np.ndarray | None = None,
        labels: list[int] | np.ndarray | None = None,
        box: tuple[float, float, float, float] | None = None,
        mask: np.ndarray | None = None,
        multimask: bool | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> ObjectMasks:
        """Segment one object from clicks, a box and/or a mask.

        points: (N, 2) (x, y) pixels of the image; labels: (N,) 1 positive, 0 negative (default all 1).
        box: (x1, y1, x2, y2) pixels. mask: (H, W) bool at the image size, a rough region to refine.
        mask_logits: (h, w) low-resolution logits of an earlier result (`ObjectMasks.low_res_logits[i]`).
        multimask: return 3 candidates (best first); default: only for a single click without a box.
        Returns `ObjectMasks` (masks at the image size, predicted-IoU scores, xyxy boxes).
        """
        entry = self.features.get(image)
        size = entry.size
        pts, labs = check_points(points, labels, size)
        box_arr = check_box(box, size)
        mask_arr = check_mask(mask, size)
        if pts is None and box_arr is None and mask_arr is None and mask_logits is None:
            raise ValueError("give at least one prompt: points, a box or a mask")
        if multimask is None:
            multimask = box_arr is None and pts is not None and len(pts) == 1 and mask_arr is None
        return self._decode(entry, pts, labs, box_arr, mask_arr, mask_logits, multimask)

    @torch.inference_mode()
    def _decode(
        self,
        entry: ImageFeatures,
        pts: np.ndarray | None,
        labs: np.ndarray | None,
        box: np.ndarray | None,
        mask: np.ndarray | None,
        mask_logits: np.ndarray | None,
        multimask: bool,
    ) -> ObjectMasks:
        embeddings = self.features.tracker_embeddings(entry)
        inputs_masks = None
        if mask_logits is not None:
            inputs_masks = [np.asarray(mask_logits, dtype=np.float32)]
        elif mask is not None:
            inputs_masks = [np.where(mask, CONFIDENT_LOGIT, -CONFIDENT_LOGIT).astype(np.float32)]
        inputs = self.processor(
            input_points=None if pts is None else [[pts.tolist()]],
            input_labels=None if labs is None else [[labs.tolist()]],
            input_boxes=None if box is None else [[box.tolist()]],
            input_masks=inputs_masks,
            original_sizes=[entry.size],
            device=self.tracker.device,
        )
        out = self.tracker(
            image_embeddings=embeddings,
            input_points=inputs.get("input_points"),
            input_labels=inputs.get("input_labels"),
            input_boxes=inputs.get("input_boxes"),
            input_masks=inputs.get("input_masks"),
            multimask_output=multimask,
        )
        logits = out.pred_masks[0, 0].float()  # (M, h, w)
        scores = out.iou_scores[0, 0].float()  # (M,)
        order = torch.argsort(scores, descending=True)
        logits, scores = logits[order], scores[order]
        masks = self.processor.post_process_masks(logits[None, None], [entry.size])[0][0]  # (M, H, W)
        masks_np = masks.cpu().numpy()
        return ObjectMasks(
            masks=masks_np,
            scores=scores.clamp(0, 1).cpu().numpy(),
            boxes=masks_to_boxes(masks_np),
            prompt={
                "points": None if pts is None else pts.tolist(),
                "labels": None if labs is None else labs.tolist(),
                "box": None if box is None else box.tolist(),
            },
            low_res_logits=logits.cpu().numpy(),
        )
