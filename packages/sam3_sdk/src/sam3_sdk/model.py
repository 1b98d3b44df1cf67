"""`Sam3`: one loaded checkpoint, task-oriented calls, and a bounded cache of image features."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sam3_core.tracker import Sam3TrackerModel
from sam3_core.tracker_processing import Sam3TrackerProcessor

from .images import ImageLike, as_rgb_array
from .prompts import check_box, check_mask, check_points
from .results import ObjectMasks, masks_to_boxes

if TYPE_CHECKING:
    from .sessions import ImageSession

__all__ = ["Sam3", "ImageFeatures"]

DEFAULT_MODEL = os.environ.get("SAM3_MODEL", "facebook/sam3")


@dataclass
class ImageFeatures:
    """What one image costs the backbone, kept so that new prompts only run the heads."""

    key: str  # content hash of the RGB pixels
    image: np.ndarray  # (H, W, 3) uint8
    tracker_embeddings: list[torch.Tensor] | None = None  # the tracker decoder's three feature maps
    heads: dict[str, Any] = field(default_factory=dict)  # other heads' cached features

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


class Sam3:
    """SAM 3 for people who want masks, not tensors.

    >>> sam = Sam3.from_pretrained("facebook/sam3")
    >>> obj = sam.segment_object("truck.jpg", points=[(500, 375)], labels=[1])
    >>> obj.mask.shape, obj.score
    """

    def __init__(
        self,
        tracker: Sam3TrackerModel,
        tracker_processor: Sam3TrackerProcessor,
        checkpoint: str | os.PathLike | None = None,
        cache_size: int = 4,
    ) -> None:
        self.tracker = tracker
        self.tracker_processor = tracker_processor
        self.checkpoint = checkpoint
        self.cache_size = cache_size
        self._cache: OrderedDict[str, ImageFeatures] = OrderedDict()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        cache_size: int = 4,
        **hub_kwargs: Any,
    ) -> Sam3:
        """Load a SAM 3 checkpoint (hub id or folder). `device` defaults to CUDA when available."""
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        tracker = Sam3TrackerModel.from_pretrained(name_or_path, device=device, dtype=dtype, **hub_kwargs)
        processor = Sam3TrackerProcessor.from_pretrained(name_or_path, **hub_kwargs)
        return cls(tracker, processor, checkpoint=name_or_path, cache_size=cache_size)

    @property
    def device(self) -> torch.device:
        return self.tracker.device

    # -- image features ---------------------------------------------------------------------

    def features(self, image: ImageLike) -> ImageFeatures:
        """The cached features of `image` (computed on first use; the cache keeps `cache_size` images)."""
        rgb = as_rgb_array(image)
        key = hashlib.sha1(rgb.tobytes() + str(rgb.shape).encode()).hexdigest()
        entry = self._cache.get(key)
        if entry is None:
            entry = ImageFeatures(key=key, image=rgb)
            self._cache[key] = entry
            while len(self._cache) > max(1, self.cache_size):
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return entry

    @torch.inference_mode()
    def _tracker_embeddings(self, entry: ImageFeatures) -> list[torch.Tensor]:
        if entry.tracker_embeddings is None:
            pixels = self.tracker_processor(images=entry.image, device=self.device)["pixel_values"]
            entry.tracker_embeddings = self.tracker.get_image_embeddings(pixels)
        return entry.tracker_embeddings

    # -- visual prompts -----------------------------------------------------------------------

    def segment_object(
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

        points: (x, y) pixels of the image; labels: 1 positive, 0 negative (default all 1).
        box: (x1, y1, x2, y2) pixels. mask: (H, W) bool at the image size, a rough region to refine.
        mask_logits: (h, w) low-resolution logits of an earlier result (`ObjectMasks.low_res_logits[i]`).
        multimask: return 3 candidates (best first); default: only for a single click without a box.
        Returns `ObjectMasks` (masks at the image size, predicted-IoU scores, xyxy boxes).
        """
        entry = image if isinstance(image, ImageFeatures) else self.features(image)
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
    def _decode(self, entry, pts, labs, box, mask, mask_logits, multimask) -> ObjectMasks:
        embeddings = self._tracker_embeddings(entry)
        inputs_masks = None
        if mask_logits is not None:
            inputs_masks = [np.asarray(mask_logits, dtype=np.float32)]
        elif mask is not None:
            inputs_masks = [np.where(mask, 10.0, -10.0).astype(np.float32)]  # confident logits
        inputs = self.tracker_processor(
            input_points=None if pts is None else [[pts.tolist()]],
            input_labels=None if labs is None else [[labs.tolist()]],
            input_boxes=None if box is None else [[box.tolist()]],
            input_masks=inputs_masks,
            original_sizes=[entry.size],
            device=self.device,
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
        masks = self.tracker_processor.post_process_masks(logits[None, None], [entry.size])[0][0]  # (M, H, W)
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

    def image_session(self, image: ImageLike) -> ImageSession:
        """An interactive session on one image: the backbone runs once, each click only the decoder."""
        from .sessions import ImageSession

        return ImageSession(self, image)
