"""The shared image-feature store: one backbone pass per image, kept for every head.

The tracker and the concept detector share one ViT backbone. `FeatureStore.get(image)` gives the
image's `ImageFeatures` entry (bounded LRU cache, keyed by pixel content); each head then asks the
store for its own view of the one backbone map: the tracker's decoder embeddings or the
detector's FPN features, each computed once per image and kept on the entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from sam3_core import (
    Sam3TrackerModel,
    Sam3TrackerProcessor,
    Sam3VisionModel,
    Sam3VisionOutput,
)

from .cache import LRUCache
from .images import ImageLike, as_rgb_array

__all__ = ["FeatureStore", "ImageFeatures"]


@dataclass
class ImageFeatures:
    """What one image costs the backbone, kept so that new prompts only run the heads."""

    key: str  # content hash of the RGB pixels
    image: np.ndarray  # (H, W, 3) uint8
    backbone_map: torch.Tensor | None = None  # (1, C, H/14, W/14): the one backbone pass, shared by all heads
    tracker_embeddings: list[torch.Tensor] | None = None  # the tracker decoder's three feature maps
    detector_embeds: Sam3VisionOutput | None = None  # the detector's FPN features (`vision_embeds`)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image in pixels."""
        return int(self.image.shape[0]), int(self.image.shape[1])


class FeatureStore:
    """The last `cache_size` images' features, computed from the shared backbone on first use.

    tracker: the point/box tracker (its vision encoder holds the shared backbone), or None for a
        checkpoint without one (SAM3-LiteText alone): then only detector features are made.
    processor: makes the backbone's input (`pixel_values`); its `size` (pixels) is the input size.
    vision: the vision encoder whose backbone runs; default the tracker's.
    """

    def __init__(
        self,
        tracker: Sam3TrackerModel | None,
        processor: Sam3TrackerProcessor,
        cache_size: int = 3,
        vision: Sam3VisionModel | None = None,
    ) -> None:
        if tracker is None and vision is None:
            raise ValueError("FeatureStore needs a tracker or a vision encoder to run the backbone")
        self.tracker = tracker
        self.processor = processor
        self.vision = tracker.vision_encoder if vision is None else vision
        self._entries: LRUCache[str, ImageFeatures] = LRUCache(max(1, cache_size))

    @property
    def cache_size(self) -> int:
        return self._entries.maxsize

    @cache_size.setter
    def cache_size(self, value: int) -> None:
        self._entries.maxsize = max(1, value)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, image: ImageLike | ImageFeatures) -> ImageFeatures:
        """The entry of `image` (PIL, numpy, path), made on first use without running the backbone;
        an `ImageFeatures` is returned as it is."""
        if isinstance(image, ImageFeatures):
            return image
        rgb = as_rgb_array(image)
        key = hashlib.sha1(rgb.tobytes() + str(rgb.shape).encode()).hexdigest()
        entry = self._entries.get(key)
        if entry is None:
            entry = ImageFeatures(key=key, image=rgb)
            self._entries.put(key, entry)
        return entry

    @torch.inference_mode()
    def backbone_map(self, entry: ImageFeatures) -> torch.Tensor:
        """(1, C, h, w) output of the shared backbone for `entry` (computed once)."""
        if entry.backbone_map is None:
            # The processor applies its config's size, resample, rescale and normalisation.
            weight = next(self.vision.parameters())
            pixels = self.processor(images=entry.image, device=weight.device)["pixel_values"]
            entry.backbone_map = self.vision.backbone_map(pixels.to(weight.dtype))
        return entry.backbone_map

    @torch.inference_mode()
    def tracker_embeddings(self, entry: ImageFeatures) -> list[torch.Tensor]:
        """The tracker's mask-decoder inputs for `entry` (three maps, finest first; computed once)."""
        if self.tracker is None:
            raise RuntimeError("no point/box tracker is loaded: its image embeddings cannot be made")
        if entry.tracker_embeddings is None:
            vision = self.tracker.vision_encoder.from_backbone_map(self.backbone_map(entry))
            entry.tracker_embeddings = self.tracker.image_embeddings_from_vision(vision)
        return entry.tracker_embeddings

    @torch.inference_mode()
    def detector_embeds(self, entry: ImageFeatures, detector_vision: Sam3VisionModel) -> Sam3VisionOutput:
        """The detector's FPN features for `entry` from its vision encoder's neck (computed once);
        `detector_vision` must share the tracker's backbone."""
        if entry.detector_embeds is None:
            entry.detector_embeds = detector_vision.from_backbone_map(self.backbone_map(entry))
        return entry.detector_embeds
