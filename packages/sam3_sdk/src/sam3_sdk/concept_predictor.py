"""`ConceptPredictor`: every instance of a concept (a noun phrase and/or exemplar boxes) through the
concept detector, over the shared image features, with a bounded cache of text features."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sam3_core import Sam3Model, Sam3Processor
from sam3_core.processing.batch import BatchEncoding

from .cache import LRUCache
from .features import FeatureStore, ImageFeatures
from .images import ImageLike
from .prompts import check_boxes, check_threshold
from .results import Instances

__all__ = ["ConceptPredictor"]

TextKey = tuple[tuple[int, ...], tuple[int, ...]]  # (token ids, attention mask)


class ConceptPredictor:
    """Text and exemplar boxes → `Instances`, numpy in and out.

    detector: a `Sam3Model` whose vision encoder shares the feature store's backbone.
    text_cache_size: prompts whose text features are kept (a repeated phrase skips the text encoder).

    >>> concepts = ConceptPredictor(detector, processor, features)
    >>> found = concepts.predict("street.jpg", text="yellow school bus")
    """

    def __init__(
        self,
        detector: Sam3Model,
        processor: Sam3Processor,
        features: FeatureStore,
        text_cache_size: int = 64,
    ) -> None:
        self.detector = detector
        self.processor = processor
        self.features = features
        self._text_cache: LRUCache[TextKey, torch.Tensor] = LRUCache(max(1, text_cache_size))

    @property
    def text_cache_size(self) -> int:
        return self._text_cache.maxsize

    @text_cache_size.setter
    def text_cache_size(self, value: int) -> None:
        self._text_cache.maxsize = max(1, value)

    @torch.inference_mode()
    def text_embeds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The detector's text features of (1, L) token ids and mask, cached by the tokens."""
        key = (tuple(input_ids.flatten().tolist()), tuple(attention_mask.flatten().tolist()))
        cached = self._text_cache.get(key)
        if cached is None:
            cached = self.detector.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            self._text_cache.put(key, cached)
        return cached

    def predict(
        self,
        image: ImageLike | ImageFeatures,
        text: str | None = None,
        boxes: list[tuple[float, float, float, float]] | np.ndarray | None = None,
        box_labels: list[int] | None = None,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
    ) -> Instances:
        """Find every instance of a concept: a short noun phrase and/or exemplar boxes.

        text: e.g. "yellow school bus". boxes: (N, 4) (x1, y1, x2, y2) pixel boxes around examples;
        box_labels: 1 (an example of the concept) or 0 (a counter-example), default all 1.
        threshold: minimum instance score in [0, 1]; mask_threshold: mask probability cut-off.
        Returns `Instances`, best first (of length 0 when nothing scores above `threshold`).
        """
        entry = self.features.get(image)
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
        if text is not None and self.processor.tokenizer is not None:
            n_tokens = len(self.processor.tokenizer.encode(text, max_length=10**6))
            limit = self.processor.tokenizer.max_length
            if n_tokens > limit:
                warnings.warn(
                    f"the prompt has {n_tokens} tokens; the model reads {limit}, so it was truncated",
                    stacklevel=2,
                )
        inputs = self.processor(
            text=text,
            input_boxes=None if box_arr is None else [box_arr.tolist()],
            input_boxes_labels=None if labels is None else [labels],
            original_sizes=[entry.size],
        ).to(self.detector.device)
        prompt = {"text": text, "boxes": None if box_arr is None else box_arr.tolist(), "box_labels": labels}
        return self._detect(entry, inputs, threshold, mask_threshold, prompt)

    @torch.inference_mode()
    def _detect(
        self,
        entry: ImageFeatures,
        inputs: BatchEncoding,
        threshold: float,
        mask_threshold: float,
        prompt: dict,
    ) -> Instances:
        text_embeds = self.text_embeds(inputs["input_ids"], inputs["attention_mask"])
        out = self.detector(
            vision_embeds=self.features.detector_embeds(entry, self.detector.vision_encoder),
            text_embeds=text_embeds,
            attention_mask=inputs["attention_mask"],
            input_boxes=inputs.get("input_boxes"),
            input_boxes_labels=inputs.get("input_boxes_labels"),
        )
        found = self.processor.post_process_instance_segmentation(
            out, threshold=threshold, mask_threshold=mask_threshold, target_sizes=[entry.size]
        )[0]
        order = torch.argsort(found["scores"], descending=True)
        # The detector's boxes may reach past the image (x1 = -67 on a random checkpoint); the masks
        # cannot, so the boxes are clamped to the image as well.
        h, w = entry.size
        boxes = found["boxes"][order].float().cpu()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        return Instances(
            masks=found["masks"][order].bool().cpu().numpy(),
            scores=found["scores"][order].float().cpu().numpy(),
            boxes=boxes.numpy(),
            prompt=prompt,
        )
