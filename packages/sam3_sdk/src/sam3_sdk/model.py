"""`Sam3`: one loaded checkpoint, task-oriented calls, and a bounded cache of image features."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sam3_core import Sam3TrackerModel, Sam3TrackerProcessor
from sam3_core.processing.image import preprocess_images

from .images import ImageLike, as_rgb_array
from .prompts import check_box, check_boxes, check_mask, check_points, check_threshold
from .results import Instances, ObjectMasks, masks_to_boxes

if TYPE_CHECKING:
    from .sessions import ImageSession

__all__ = ["Sam3", "ImageFeatures"]

DEFAULT_MODEL = os.environ.get("SAM3_MODEL", "facebook/sam3")


@dataclass
class ImageFeatures:
    """What one image costs the backbone, kept so that new prompts only run the heads."""

    key: str  # content hash of the RGB pixels
    image: np.ndarray  # (H, W, 3) uint8
    backbone_map: torch.Tensor | None = None  # (1, C, H/14, W/14): the one backbone pass, shared by all heads
    tracker_embeddings: list[torch.Tensor] | None = None  # the tracker decoder's three feature maps
    detector_embeds: Any = None  # the detector's FPN features (`vision_embeds`)

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
        cache_size: int = 3,
        text_cache_size: int = 64,
        hub_kwargs: dict | None = None,
    ) -> None:
        self.tracker = tracker
        self.tracker_processor = tracker_processor
        self.checkpoint = checkpoint
        self.cache_size = cache_size
        self.text_cache_size = text_cache_size
        self._hub_kwargs = hub_kwargs or {}
        self._cache: OrderedDict[str, ImageFeatures] = OrderedDict()
        self._text_cache: OrderedDict[tuple, Any] = OrderedDict()
        self._detector = None
        self._detector_processor = None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        cache_size: int = 3,
        **hub_kwargs: Any,
    ) -> Sam3:
        """Load a SAM 3 checkpoint (hub id or folder). `device` defaults to CUDA when available.

        The point/box tracker loads now; the concept detector on the first `segment_concept`,
        sharing the tracker's image backbone (one copy in memory, one pass per image).
        """
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        tracker = Sam3TrackerModel.from_pretrained(name_or_path, device=device, dtype=dtype, **hub_kwargs)
        processor = Sam3TrackerProcessor.from_pretrained(name_or_path, **hub_kwargs)
        return cls(tracker, processor, checkpoint=name_or_path, cache_size=cache_size, hub_kwargs=hub_kwargs)

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
    def _backbone_map(self, entry: ImageFeatures) -> torch.Tensor:
        if entry.backbone_map is None:
            pixels, _ = preprocess_images(entry.image, self.tracker_processor.size, device=self.device)
            vision = self.tracker.vision_encoder
            entry.backbone_map = vision.backbone_map(pixels.to(self.tracker.dtype))
        return entry.backbone_map

    @torch.inference_mode()
    def _tracker_embeddings(self, entry: ImageFeatures) -> list[torch.Tensor]:
        if entry.tracker_embeddings is None:
            vision = self.tracker.vision_encoder.from_backbone_map(self._backbone_map(entry))
            entry.tracker_embeddings = self.tracker.image_embeddings_from_vision(vision)
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

    def generate_masks(
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
        from sam3_core.mask_generation import Sam3TrackerMaskGenerator

        for name, value in (("points_per_side", points_per_side), ("points_per_batch", points_per_batch)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("pred_iou_thresh", pred_iou_thresh), ("stability_score_thresh", stability_score_thresh),
                            ("box_nms_thresh", box_nms_thresh)):  # fmt: skip
            check_threshold(value, name)
        if not isinstance(min_mask_region_area, int) or min_mask_region_area < 0:
            raise ValueError(
                f"min_mask_region_area must be a non-negative integer, got {min_mask_region_area!r}"
            )
        entry = image if isinstance(image, ImageFeatures) else self.features(image)
        generator = Sam3TrackerMaskGenerator(
            self.tracker, self.tracker_processor, points_per_side=points_per_side,
            points_per_batch=points_per_batch, pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh, box_nms_thresh=box_nms_thresh,
            min_mask_region_area=min_mask_region_area,
        )  # fmt: skip
        with torch.inference_mode():
            records = generator.generate(entry.image, image_embeddings=self._tracker_embeddings(entry))
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

    def image_session(self, image: ImageLike) -> ImageSession:
        """An interactive session on one image: the backbone runs once, each click only the decoder."""
        from .sessions import ImageSession

        return ImageSession(self, image)

    # -- concept prompts ----------------------------------------------------------------------

    @property
    def detector(self):
        """The concept detector (`sam3_core.Sam3Model`), loaded on first use with the tracker's backbone."""
        if self._detector is None:
            from sam3_core import Sam3Model, Sam3Processor

            detector = Sam3Model.from_pretrained(
                self.checkpoint,
                device=self.device,
                dtype=self.tracker.dtype,
                backbone=self.tracker.vision_encoder.backbone,  # one backbone, not read again
                **self._hub_kwargs,
            )
            processor = Sam3Processor.from_pretrained(self.checkpoint, **self._hub_kwargs)
            if processor.size != self.tracker_processor.size:
                raise ValueError(
                    f"the detector expects {processor.size} px images but the tracker {self.tracker_processor.size} px"
                )
            self._detector, self._detector_processor = detector, processor
        return self._detector

    @property
    def detector_processor(self):
        _ = self.detector
        return self._detector_processor

    @torch.inference_mode()
    def _detector_embeds(self, entry: ImageFeatures):
        if entry.detector_embeds is None:
            entry.detector_embeds = self.detector.vision_encoder.from_backbone_map(self._backbone_map(entry))
        return entry.detector_embeds

    @torch.inference_mode()
    def _text_embeds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        key = (tuple(input_ids.flatten().tolist()), tuple(attention_mask.flatten().tolist()))
        cached = self._text_cache.get(key)
        if cached is None:
            cached = self.detector.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            self._text_cache[key] = cached
            while len(self._text_cache) > max(1, self.text_cache_size):
                self._text_cache.popitem(last=False)
        else:
            self._text_cache.move_to_end(key)
        return cached

    def segment_concept(
        self,
        image: ImageLike | ImageFeatures,
        text: str | None = None,
        boxes: list[tuple[float, float, float, float]] | np.ndarray | None = None,
        box_labels: list[int] | None = None,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
    ) -> Instances:
        """Find every instance of a concept: a short noun phrase and/or exemplar boxes.

        text: e.g. "yellow school bus". boxes: (x1, y1, x2, y2) pixel boxes around examples;
        box_labels: 1 (an example of the concept) or 0 (a counter-example), default all 1.
        threshold: minimum instance score in [0, 1]; mask_threshold: mask probability cut-off.
        Returns `Instances`, best first.
        """
        entry = image if isinstance(image, ImageFeatures) else self.features(image)
        threshold = check_threshold(threshold, "threshold")
        mask_threshold = check_threshold(mask_threshold, "mask_threshold")
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text must be a string, got {type(text).__name__}")
            if not text.strip():
                raise ValueError("text is empty; give a short noun phrase such as 'yellow school bus'")
            text = " ".join(text.split())
        box_arr = check_boxes(boxes, entry.size)
        if text is None and box_arr is None:
            raise ValueError("give a text prompt, exemplar boxes, or both")
        labels = None
        if box_arr is not None:
            labels = [1] * len(box_arr) if box_labels is None else list(box_labels)
            if len(labels) != len(box_arr) or any(v not in (0, 1) for v in labels):
                raise ValueError(
                    f"box_labels must be one 1 (positive) or 0 (negative) per box: {len(box_arr)} boxes, "
                    f"labels {box_labels!r}"
                )
        elif box_labels is not None:
            raise ValueError("box_labels were given without boxes")
        processor = self.detector_processor
        if text is not None and processor.tokenizer is not None:
            n_tokens = len(processor.tokenizer.encode(text, max_length=10**6))
            limit = processor.tokenizer.max_length
            if n_tokens > limit:
                warnings.warn(
                    f"the prompt has {n_tokens} tokens; the model reads {limit}, so it was truncated",
                    stacklevel=2,
                )
        inputs = processor(
            text=text,
            input_boxes=None if box_arr is None else [box_arr.tolist()],
            input_boxes_labels=None if labels is None else [labels],
            original_sizes=[entry.size],
        ).to(self.device)
        return self._detect(
            entry,
            inputs,
            threshold,
            mask_threshold,
            prompt={
                "text": text,
                "boxes": (None if box_arr is None else box_arr.tolist()),
                "box_labels": labels,
            },
        )

    @torch.inference_mode()
    def _detect(self, entry, inputs, threshold, mask_threshold, prompt) -> Instances:
        text_embeds = self._text_embeds(inputs["input_ids"], inputs["attention_mask"])
        out = self.detector(
            vision_embeds=self._detector_embeds(entry),
            text_embeds=text_embeds,
            attention_mask=inputs["attention_mask"],
            input_boxes=inputs.get("input_boxes"),
            input_boxes_labels=inputs.get("input_boxes_labels"),
        )
        found = self.detector_processor.post_process_instance_segmentation(
            out, threshold=threshold, mask_threshold=mask_threshold, target_sizes=[entry.size]
        )[0]
        order = torch.argsort(found["scores"], descending=True)
        return Instances(
            masks=found["masks"][order].bool().cpu().numpy(),
            scores=found["scores"][order].float().cpu().numpy(),
            boxes=found["boxes"][order].float().cpu().numpy(),
            prompt=prompt,
        )

    # -- video (appended: video tracking) -----------------------------------------------------

    @property
    def video_tracker(self):
        """The video tracker (`sam3_core.Sam3TrackerVideoModel`), loaded on first use with the tracker's
        image backbone (one copy in memory)."""
        if getattr(self, "_video_tracker", None) is None:
            from sam3_core import Sam3TrackerVideoModel, Sam3TrackerVideoProcessor

            model = Sam3TrackerVideoModel.from_pretrained(
                self.checkpoint,
                device=self.device,
                dtype=self.tracker.dtype,
                backbone=self.tracker.vision_encoder.backbone,  # one backbone, not read again
                **self._hub_kwargs,
            )
            self._video_processor = Sam3TrackerVideoProcessor.from_pretrained(
                self.checkpoint, **self._hub_kwargs
            )
            self._video_tracker = model
        return self._video_tracker

    @property
    def video_processor(self):
        _ = self.video_tracker
        return self._video_processor

    def video_session(self, video, fps: float | None = None):
        """An interactive `VideoSession` on a video (file path, folder of frames, list of images or a
        (T, H, W, 3) array): add / refine / remove objects, propagate forward, backward or both ways."""
        from .video import VideoSession

        return VideoSession(self, video, fps=fps)

    def track_object(
        self, video, prompts: dict, direction: str = "forward", progress=None, fps: float | None = None
    ):
        """Track prompted objects through a video, yielding each frame's masks (`VideoFrameMasks`).

        prompts: {obj_id: dict(frame=0, points=[(x, y)], labels=[1], box=(x1, y1, x2, y2), mask=(H, W) bool)}
        in pixels of the video frame. direction: "forward", "backward" or "both" (see
        `VideoSession.propagate`). progress(done, total) is called after each frame. Frames are
        decoded lazily and results are not kept, so memory stays bounded on long videos.
        """
        from .video import VideoSession, check_video_prompts

        prompts = check_video_prompts(prompts)
        session = VideoSession(self, video, fps=fps, keep_results=False)
        for obj_id, prompt in prompts.items():
            frame = prompt.get("frame", 0)
            session.add_object(
                frame=frame, points=prompt.get("points"), labels=prompt.get("labels"), box=prompt.get("box"),
                mask=prompt.get("mask"), obj_id=obj_id,
            )  # fmt: skip

        def frames():
            try:
                yield from session.propagate(direction, progress=progress)
            finally:
                session.close()

        return frames()
