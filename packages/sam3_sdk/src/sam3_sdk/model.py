"""`Sam3`: one loaded checkpoint and task-oriented calls, composed from the predictors.

The facade owns the models and one `FeatureStore` (one backbone pass per image); each task is a
small predictor over them: `ImagePredictor` (points, boxes, masks), `MaskGenerator` (everything),
`ConceptPredictor` (text and exemplar boxes; the detector loads on first use), `VideoTracker`
(video; the video model loads on first use: SAM 3's tracker, or another checkpoint's such as
EdgeTAM's with `video_model=`) and `ConceptVideoTracker` (phrases in video: the detector and SAM
3's video tracker composed, nothing loaded twice). The lazily loaded models are built in one
place, `_load_detector`, `_load_video_predictor` and `_load_concept_video_predictor`.

Names: `*_model` is a `sam3_core` model, `*_processor` its processor, `*_predictor` the SDK's task
object over them: `image_model` / `image_processor` (SAM 3's point/box tracker on images),
`detector` / `detector_processor` (concepts), `video_model` / `video_processor` / `video_predictor`
(clicks in video), `concept_video_predictor` (phrases in video). The old names `tracker`,
`tracker_processor`, `video_tracker` and `concept_video_tracker` still work for this release, with a
DeprecationWarning.

A SAM3-LiteText checkpoint (SAM 3's image encoder and detector heads with a small text encoder, no
tracker) loads its detector at once and runs concept segmentation alone; clicks and video take SAM
3's tracker heads from another checkpoint (`tracker_model="facebook/sam3"`), built around the
LiteText checkpoint's backbone.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from sam3_core import (
    Sam3LiteTextModel,
    Sam3Model,
    Sam3Processor,
    Sam3TrackerModel,
    Sam3TrackerProcessor,
    Sam3TrackerVideoModel,
    Sam3TrackerVideoProcessor,
)
from sam3_core.checkpoint import read_config, resolve_checkpoint_dir

from .concept_predictor import ConceptPredictor
from .concept_video import ConceptVideoTracker
from .features import FeatureStore, ImageFeatures
from .image_predictor import ImagePredictor
from .images import ImageLike
from .mask_generator import MaskGenerator
from .results import Instances, ObjectMasks
from .sessions import ImageSession
from .tracking import track_concept, track_object
from .video import VideoSession
from .video_io import VideoLike, VideoReader
from .video_results import VideoFrameMasks
from .video_tracker import VideoTracker

__all__ = ["DEFAULT_MODEL", "ImageFeatures", "Sam3"]

DEFAULT_MODEL = os.environ.get("SAM3_MODEL", "facebook/sam3")
# Concept-only checkpoints: a detector (with its own text encoder) and no tracker.
CONCEPT_ONLY_MODEL_TYPES = {"sam3_lite_text": Sam3LiteTextModel}
TRACKER_HINT = 'tracker_model="facebook/sam3"'  # how to add SAM 3's tracker to such a checkpoint


def _deprecated_alias(old: str, new: str) -> property:
    """A read-only attribute `old` that warns and returns `new` (kept one release)."""

    def get(self: Sam3) -> Any:
        warnings.warn(f"Sam3.{old} is deprecated; use Sam3.{new}", DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated: use `{new}`.")


class Sam3:
    """SAM 3 for people who want masks, not tensors.

    >>> sam = Sam3.from_pretrained("facebook/sam3")
    >>> obj = sam.segment_object("truck.jpg", points=[(500, 375)], labels=[1])
    >>> obj.mask.shape, obj.score
    """

    def __init__(
        self,
        image_model: Sam3TrackerModel | None,
        image_processor: Sam3TrackerProcessor | None,
        checkpoint: str | os.PathLike | None = None,
        cache_size: int = 3,
        text_cache_size: int = 64,
        hub_kwargs: dict | None = None,
        video_model: str | os.PathLike | VideoTracker | None = None,
        concept_config: dict | None = None,
        detector: Sam3Model | None = None,
        detector_processor: Sam3Processor | None = None,
        tracker_checkpoint: str | os.PathLike | None = None,
    ) -> None:
        """image_model / image_processor: SAM 3's point/box tracker on images, or None when the
        checkpoint has none (then `detector` and `detector_processor` must be given, and clicks and
        video raise). video_model: the checkpoint (or a loaded `VideoTracker`) of video tracking;
        None: SAM 3's. tracker_checkpoint: where SAM 3's tracker and video tracker weights are read;
        default `checkpoint`."""
        if image_model is None and detector is None:
            raise ValueError("Sam3 needs an image model (SAM 3's tracker), a detector, or both")
        self.image_model = image_model
        self.image_processor = image_processor
        self.checkpoint = checkpoint
        if tracker_checkpoint is None and image_model is not None:
            tracker_checkpoint = checkpoint
        self.tracker_checkpoint = tracker_checkpoint
        self._hub_kwargs = hub_kwargs or {}
        if image_model is not None:
            self.feature_store = FeatureStore(image_model, image_processor, cache_size)
        else:  # concept segmentation only: the detector's vision encoder runs the backbone
            self.feature_store = FeatureStore(
                None, detector_processor, cache_size, vision=detector.vision_encoder
            )
        with_model = image_model is not None
        self._image_predictor = (
            ImagePredictor(image_model, image_processor, self.feature_store) if with_model else None
        )
        self._mask_generator = (
            MaskGenerator(image_model, image_processor, self.feature_store) if with_model else None
        )
        self._detector: Sam3Model | None = detector  # the lazily loaded models and their predictors
        self._detector_processor: Sam3Processor | None = detector_processor
        self._concept_predictor: ConceptPredictor | None = None
        # video tracking: None → SAM 3's tracker around the trunk; else a checkpoint (e.g. EdgeTAM's)
        self.video_checkpoint = None if isinstance(video_model, VideoTracker) else video_model
        self._video_predictor: VideoTracker | None = (
            video_model if isinstance(video_model, VideoTracker) else None
        )
        self._sam3_video_predictor: VideoTracker | None = None  # SAM 3's, when video_model is another's
        self._concept_video_predictor: ConceptVideoTracker | None = None
        self.concept_config = dict(concept_config or {})
        self.cache_size = cache_size
        self.text_cache_size = text_cache_size
        # Handler threads that ask for a model at once load it once: the first loads, the others wait.
        self._loading = threading.RLock()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        cache_size: int = 3,
        video_model: str | os.PathLike | None = None,
        concept_config: dict | None = None,
        tracker_model: str | os.PathLike | None = None,
        **hub_kwargs: Any,
    ) -> Sam3:
        """Load a SAM 3 checkpoint (a hub id or a folder; for random weights, the folder of
        `sam3_sdk.testing.resolve_name("tiny-random")`). `device` defaults to CUDA when available.

        A SAM3-LiteText checkpoint ("yonigozlan/sam3-litetext-s0", any folder whose config is a
        `sam3_lite_text` model) segments concepts with its small text encoder; it has no tracker,
        so clicks and video need `tracker_model`, a SAM 3 checkpoint ("facebook/sam3") whose
        tracker heads are built around the LiteText backbone.

        The point/box tracker loads now; the concept detector on the first `segment_concept`,
        sharing the tracker's image backbone (one copy in memory, one pass per image).
        video_model: the checkpoint `video_session` / `track_object` track with (loaded on first
        use), e.g. "yonigozlan/edgetam-video-1" for EdgeTAM; default: SAM 3's own video tracker.
        concept_config: settings of text-prompted video tracking that differ from the checkpoint's
        (fields of `sam3_core.Sam3VideoConfig`, e.g. {"new_det_thresh": 0.5}).
        """
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model_type = read_config(resolve_checkpoint_dir(name_or_path, **hub_kwargs)).get("model_type")
        options = dict(cache_size=cache_size, hub_kwargs=hub_kwargs, video_model=video_model,
                       concept_config=concept_config)  # fmt: skip
        if model_type in CONCEPT_ONLY_MODEL_TYPES:
            detector_class = CONCEPT_ONLY_MODEL_TYPES[model_type]
            return cls._from_concept_checkpoint(detector_class, name_or_path, device, dtype, tracker_model,
                                                options)  # fmt: skip
        if tracker_model is not None:
            raise ValueError(
                f"tracker_model={tracker_model!r} is for checkpoints without a tracker (SAM3-LiteText); "
                f"{name_or_path!r} is a {model_type!r} checkpoint with its own"
            )
        image_model = Sam3TrackerModel.from_pretrained(name_or_path, device=device, dtype=dtype, **hub_kwargs)
        processor = Sam3TrackerProcessor.from_pretrained(name_or_path, **hub_kwargs)
        return cls(image_model, processor, checkpoint=name_or_path, **options)

    @classmethod
    def _from_concept_checkpoint(cls, detector_class, path, device, dtype, tracker_model, options) -> Sam3:
        """A detector-only checkpoint (SAM3-LiteText), with SAM 3's tracker heads from `tracker_model`
        built around its backbone when given. options: `Sam3`'s other keyword arguments."""
        hub_kwargs = options["hub_kwargs"]
        detector = detector_class.from_pretrained(path, device=device, dtype=dtype, **hub_kwargs)
        detector_processor = Sam3Processor.from_pretrained(path, **hub_kwargs)
        image_model = image_processor = None
        if tracker_model is not None:
            image_model = Sam3TrackerModel.from_pretrained(
                tracker_model,
                device=device,
                dtype=dtype,
                backbone=detector.vision_encoder.backbone,
                **hub_kwargs,
            )
            image_processor = Sam3TrackerProcessor.from_pretrained(tracker_model, **hub_kwargs)
            if detector_processor.size != image_processor.size:
                raise ValueError(
                    f"the detector of {path} expects {detector_processor.size} px images but the tracker of "
                    f"{tracker_model} {image_processor.size} px"
                )
        return cls(
            image_model, image_processor, checkpoint=path, detector=detector,
            detector_processor=detector_processor, tracker_checkpoint=tracker_model, **options,
        )  # fmt: skip

    def _no_tracker(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"{what} needs SAM 3's tracker, which {self.checkpoint} does not have (a concept-only "
            f"checkpoint); load it with Sam3.from_pretrained({str(self.checkpoint)!r}, {TRACKER_HINT}) "
            "to add the tracker heads around its image encoder"
        )

    @property
    def image_predictor(self) -> ImagePredictor:
        """The `ImagePredictor` (points, boxes, masks) over `image_model` and the shared features."""
        if self._image_predictor is None:
            raise self._no_tracker("segment_object (clicks, boxes, masks)")
        return self._image_predictor

    @property
    def mask_generator(self) -> MaskGenerator:
        if self._mask_generator is None:
            raise self._no_tracker("generate_masks")
        return self._mask_generator

    @property
    def device(self) -> torch.device:
        return (self.image_model if self.image_model is not None else self._detector).device

    @property
    def dtype(self) -> torch.dtype:
        return (self.image_model if self.image_model is not None else self._detector).dtype

    @property
    def cache_size(self) -> int:
        """Images whose features are kept (at least one is, whatever the setting)."""
        return self._cache_size

    @cache_size.setter
    def cache_size(self, value: int) -> None:
        self._cache_size = value
        self.feature_store.cache_size = value

    @property
    def text_cache_size(self) -> int:
        """Text prompts whose features are kept."""
        return self._text_cache_size

    @text_cache_size.setter
    def text_cache_size(self, value: int) -> None:
        self._text_cache_size = value
        if self._concept_predictor is not None:
            self._concept_predictor.text_cache_size = value

    # -- model loading: the detector and the video tracker, on first use, around the tracker's trunk

    def _load_detector(self) -> tuple[Sam3Model, Sam3Processor]:
        detector = Sam3Model.from_pretrained(
            self.checkpoint, device=self.device, dtype=self.image_model.dtype,
            backbone=self.image_model.vision_encoder.backbone,  # built around the one trunk, not read again
            **self._hub_kwargs,
        )  # fmt: skip
        processor = Sam3Processor.from_pretrained(self.checkpoint, **self._hub_kwargs)
        return detector, processor

    def _load_video_predictor(self) -> VideoTracker:
        if self.video_checkpoint is not None:
            return VideoTracker.from_pretrained(
                self.video_checkpoint, device=self.device, dtype=self.dtype, **self._hub_kwargs
            )
        return self._load_sam3_video_predictor()

    def _load_concept_video_predictor(self) -> ConceptVideoTracker:
        video = self.video_predictor
        if video.name != "SAM 3":  # the session tracks with another model; phrases need SAM 3's
            if self._sam3_video_predictor is None:
                self._sam3_video_predictor = self._load_sam3_video_predictor()
            video = self._sam3_video_predictor
        # the settings of text-prompted video are the tracker checkpoint's (a SAM 3 `sam3_video`
        # config); the phrases are the detector's, tokenized by its own tokenizer
        tokenizer = self.detector_processor.tokenizer if self.tracker_checkpoint != self.checkpoint else None
        return ConceptVideoTracker.from_parts(
            self.detector, video, self.tracker_checkpoint, config_overrides=self.concept_config,
            tokenizer=tokenizer, **self._hub_kwargs,
        )  # fmt: skip

    def _load_sam3_video_predictor(self) -> VideoTracker:
        if self.tracker_checkpoint is None:
            raise self._no_tracker(
                "video tracking with SAM 3's tracker (track_object, track_concept, video_session)"
            )
        model = Sam3TrackerVideoModel.from_pretrained(
            self.tracker_checkpoint, device=self.device, dtype=self.dtype,
            backbone=self.feature_store.vision.backbone,  # built around the one trunk, not read again
            **self._hub_kwargs,
        )  # fmt: skip
        processor = Sam3TrackerVideoProcessor.from_pretrained(self.tracker_checkpoint, **self._hub_kwargs)
        return VideoTracker(model, processor)

    # -- image features ---------------------------------------------------------------------

    def features(self, image: ImageLike) -> ImageFeatures:
        """The cached features of `image` (computed on first use; the cache keeps `cache_size` images)."""
        return self.feature_store.get(image)

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
        """Segment one object from clicks, a box and/or a mask (see `ImagePredictor.predict`).

        points: (x, y) pixels of the image; labels: 1 positive, 0 negative (default all 1).
        box: (x1, y1, x2, y2) pixels. mask: (H, W) bool at the image size, a rough region to refine.
        mask_logits: (h, w) low-resolution logits of an earlier result (`ObjectMasks.low_res_logits[i]`).
        multimask: return 3 candidates (best first); default: only for a single click without a box.
        Returns `ObjectMasks` (masks at the image size, predicted-IoU scores, xyxy boxes).
        """
        return self.image_predictor.predict(
            image, points=points, labels=labels, box=box, mask=mask, multimask=multimask,
            mask_logits=mask_logits,
        )  # fmt: skip

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
        """Segment everything (see `MaskGenerator.generate`): a grid of clicks, filtered by predicted
        IoU and stability, then box NMS. Returns `Instances` sorted by predicted IoU."""
        return self.mask_generator.generate(
            image, points_per_side=points_per_side, points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh,
            box_nms_thresh=box_nms_thresh, min_mask_region_area=min_mask_region_area,
        )  # fmt: skip

    def image_session(self, image: ImageLike) -> ImageSession:
        """An interactive session on one image: the backbone runs once, each click only the decoder."""
        return ImageSession(self.image_predictor, image)

    # -- concept prompts ----------------------------------------------------------------------

    @property
    def detector(self) -> Sam3Model:
        """The concept detector (`sam3_core.Sam3Model`), loaded on first use around `image_model`'s backbone."""
        if self._detector is None:
            with self._loading:  # another thread may have loaded it meanwhile
                if self._detector is None:
                    detector, processor = self._load_detector()
                    if processor.size != self.image_processor.size:
                        raise ValueError(
                            f"the detector expects {processor.size} px images but the tracker "
                            f"{self.image_processor.size} px"
                        )
                    self._detector_processor, self._detector = processor, detector
        return self._detector

    @property
    def detector_processor(self) -> Sam3Processor:
        _ = self.detector
        return self._detector_processor

    @property
    def concept_predictor(self) -> ConceptPredictor:
        """The `ConceptPredictor` over `detector` and the shared features (made on first use)."""
        if self._concept_predictor is None:
            with self._loading:
                if self._concept_predictor is None:
                    self._concept_predictor = ConceptPredictor(
                        self.detector, self.detector_processor, self.feature_store,
                        text_cache_size=self.text_cache_size,
                    )  # fmt: skip
        return self._concept_predictor

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
        Returns `Instances`, best first (of length 0 when nothing scores above `threshold`).
        """
        return self.concept_predictor.predict(
            image, text=text, boxes=boxes, box_labels=box_labels, threshold=threshold,
            mask_threshold=mask_threshold,
        )  # fmt: skip

    # -- video --------------------------------------------------------------------------------

    @property
    def video_predictor(self) -> VideoTracker:
        """The `VideoTracker` of `video_session` and `track_object`, loaded on first use: SAM 3's
        video tracker built around `image_model`'s backbone (one copy in memory), or the
        `video_checkpoint`'s (e.g. EdgeTAM)."""
        if self._video_predictor is None:
            with self._loading:
                if self._video_predictor is None:
                    self._video_predictor = self._load_video_predictor()
        return self._video_predictor

    @property
    def video_model(self) -> Sam3TrackerVideoModel:
        """The video model of `video_predictor` (`sam3_core.Sam3TrackerVideoModel`, or `EdgeTamVideoModel`)."""
        return self.video_predictor.model

    @property
    def video_processor(self) -> Sam3TrackerVideoProcessor:
        return self.video_predictor.processor

    @property
    def concept_video_predictor(self) -> ConceptVideoTracker:
        """The text-prompted video predictor (`ConceptVideoTracker`: `detector` and SAM 3's video
        model composed around the one backbone), made on first use."""
        if self._concept_video_predictor is None:
            with self._loading:
                if self._concept_video_predictor is None:
                    self._concept_video_predictor = self._load_concept_video_predictor()
        return self._concept_video_predictor

    tracker = _deprecated_alias("tracker", "image_model")
    tracker_processor = _deprecated_alias("tracker_processor", "image_processor")
    video_tracker = _deprecated_alias("video_tracker", "video_model")
    concept_video_tracker = _deprecated_alias("concept_video_tracker", "concept_video_predictor")

    def video_session(self, video: VideoLike | VideoReader, fps: float | None = None) -> VideoSession:
        """An interactive `VideoSession` on a video (file path, folder of frames, list of images or a
        (T, H, W, 3) array): find objects by phrases (`add_text`), add / refine / remove objects by
        clicks, propagate forward, backward or both ways. Phrases load the detector on first use."""
        concept = (lambda: self.concept_video_predictor) if self.video_predictor.name == "SAM 3" else None
        return VideoSession(self.video_predictor, video, fps=fps, concept=concept)

    def track_concept(
        self,
        video: VideoLike | VideoReader,
        text: str | list[str],
        direction: str = "forward",
        progress: Callable[[int, int], Any] | None = None,
        fps: float | None = None,
    ) -> Iterator[VideoFrameMasks]:
        """Find every instance of a phrase (or of each phrase of a list, e.g. ["person", "dog"])
        in a video and track them all, yielding each frame's `VideoFrameMasks`: stable object ids,
        `phrases` (object id -> phrase), detection scores. See `tracking.track_concept` for `direction`.
        Frames are decoded lazily and results are not kept: memory stays bounded on long videos.
        """
        if self.tracker_checkpoint is None:  # said now, not at the first frame
            raise self._no_tracker("track_concept")
        return track_concept(
            self.concept_video_predictor, video, text, direction=direction, progress=progress, fps=fps
        )

    def track_object(
        self,
        video: VideoLike | VideoReader,
        prompts: dict,
        direction: str = "forward",
        progress: Callable[[int, int], Any] | None = None,
        fps: float | None = None,
    ) -> Iterator[VideoFrameMasks]:
        """Track prompted objects through a video, yielding each frame's masks (`VideoFrameMasks`).

        prompts: {obj_id: dict(frame=0, points=[(x, y)], labels=[1], box=(x1, y1, x2, y2), mask=(H, W) bool)}
        in pixels of the video frame. direction: "forward", "backward" or "both" (see
        `VideoSession.propagate`). progress(done, total) is called after each frame. Frames are
        decoded lazily and results are not kept, so memory stays bounded on long videos.
        """
        return track_object(
            self.video_predictor, video, prompts, direction=direction, progress=progress, fps=fps
        )
