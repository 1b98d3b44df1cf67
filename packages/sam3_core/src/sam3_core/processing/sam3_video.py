"""`Sam3VideoProcessor`: videos and phrases in, per-frame instances (ids, scores, boxes, masks) out.

Composed of the concept processor (`Sam3Processor`: tokenizer, single-image preprocessing for
streamed frames) and the video tracker's processor (`Sam3TrackerVideoProcessor`: frames resized
once and kept as uint8, with the video section's normalisation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..video.concept_masks import object_wise_non_overlap, per_prompt
from ..video.concept_session import Sam3VideoInferenceSession
from .detector import Sam3Processor
from .masks import masks_to_boxes
from .saving import write_processor_config
from .video import Sam3TrackerVideoProcessor, open_session

__all__ = ["Sam3VideoProcessor"]

TEXT_MAX_LENGTH = 32  # tokens per phrase, as the reference pads them


class Sam3VideoProcessor:
    """Prepares videos and phrases for `Sam3VideoModel` and post-processes its outputs.

    Args:
        tokenizer: the CLIP tokenizer (`Sam3VideoProcessor.from_pretrained` loads the checkpoint's).
        size: side of the square model input in pixels (1008 for SAM 3).
        video_processor: the frame preprocessing (default: SAM 3's, at `size`).
        image_processor: the preprocessing of streamed frames (`processor(images=...)`, the
            `image_processor` section of processor_config.json, which may normalise otherwise than
            the video section); default: SAM 3's, at `size`, with `tokenizer`.
    """

    def __init__(
        self,
        tokenizer: Any = None,
        size: int = 1008,
        video_processor: Sam3TrackerVideoProcessor | None = None,
        image_processor: Sam3Processor | None = None,
    ) -> None:
        self.image_processor = (
            image_processor
            if image_processor is not None
            else Sam3Processor(tokenizer=tokenizer, size=size, text_max_length=TEXT_MAX_LENGTH)
        )
        self.video_processor = (
            video_processor if video_processor is not None else Sam3TrackerVideoProcessor(size=size)
        )
        if self.video_processor.size != self.image_processor.size:
            raise ValueError(
                f"the video processor resizes to {self.video_processor.size} px but size is "
                f"{self.image_processor.size}"
            )
        self.target_size = self.image_processor.size

    @property
    def tokenizer(self) -> Any:
        return self.image_processor.tokenizer

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> Sam3VideoProcessor:
        """Load from a checkpoint folder or hub id (`processor_config.json`, `tokenizer.json`)."""
        # streamed frames keep the image section's settings, as the reference's image processor does
        concept = Sam3Processor.from_pretrained(name_or_path, text_max_length=TEXT_MAX_LENGTH, **kwargs)
        video = Sam3TrackerVideoProcessor.from_pretrained(name_or_path, size=concept.size)
        return cls(size=concept.size, video_processor=video, image_processor=concept)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `processor_config.json` (image and video sections) and the tokenizer files."""
        config = self.video_processor._processor_config()
        config["processor_class"] = type(self).__name__
        path = write_processor_config(save_directory, config)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)
        return path.parent

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.target_size}, tokenizer={self.tokenizer is not None})"

    # -- inputs ---------------------------------------------------------------------------------

    def __call__(
        self,
        images: Any = None,
        original_sizes: Sequence[Sequence[int]] | Tensor | None = None,
        return_tensors: str | None = "pt",
        device: str | torch.device | None = None,
        **unused: Any,
    ) -> Any:
        """Preprocess streamed frames: pixel_values (B, 3, S, S) and original_sizes (B, 2), to pass
        as `model(inference_session=..., frame=out.pixel_values[0])` and to `postprocess_outputs`."""
        if images is None and original_sizes is None:
            raise ValueError("pass images (or original_sizes)")
        return self.image_processor(
            images=images, original_sizes=original_sizes, return_tensors=return_tensors, device=device
        )

    def init_video_session(
        self,
        video: Any = None,
        inference_device: str | torch.device = "cpu",
        inference_state_device: str | torch.device | None = None,
        processing_device: str | torch.device | None = None,
        video_storage_device: str | torch.device | None = None,
        max_vision_features_cache_size: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> Sam3VideoInferenceSession:
        """Start a text-prompted session on a video (or, with `video=None`, a stream of frames).

        Args:
            video: a list of frames (PIL images, HWC numpy arrays, tensors, paths), a (T, H, W, 3)
                array, or a folder of images; None to stream frames through `model(frame=...)`.
            inference_device: where the model runs.
            inference_state_device: where outputs and cached features live (default: inference_device).
            processing_device: where frames are resized (default: inference_device).
            video_storage_device: where streamed frames are kept (default: inference_device); a
                given video stays where it is and is read frame by frame.
            max_vision_features_cache_size: how many frames' backbone features to keep.
            dtype: the model's dtype (torch.float32 or torch.bfloat16).
        """
        return open_session(
            Sam3VideoInferenceSession,
            self.video_processor,
            video,
            processing_device if processing_device is not None else inference_device,
            inference_device=inference_device,
            inference_state_device=inference_state_device,
            video_storage_device=video_storage_device,
            dtype=dtype,
            max_vision_features_cache_size=max_vision_features_cache_size,
        )

    def add_text_prompt(
        self, inference_session: Sam3VideoInferenceSession, text: str | Sequence[str]
    ) -> Sam3VideoInferenceSession:
        """Add one phrase or a list of phrases to find and track (a repeated phrase is kept once).

        Returns the session.
        """
        if self.tokenizer is None:
            raise ValueError(
                "this processor has no tokenizer; load it with Sam3VideoProcessor.from_pretrained"
            )
        phrases = [text] if isinstance(text, str) else list(text)
        if not phrases:
            raise ValueError("text must be a phrase or a non-empty list of phrases")
        for phrase in phrases:
            prompt_id = inference_session.add_prompt(phrase)
            if prompt_id in inference_session.prompt_input_ids:
                continue
            tokens = self.tokenizer(phrase, max_length=TEXT_MAX_LENGTH)
            inference_session.set_prompt_tokens(prompt_id, tokens["input_ids"], tokens["attention_mask"])
        return inference_session

    # -- outputs --------------------------------------------------------------------------------

    def postprocess_outputs(
        self,
        inference_session: Sam3VideoInferenceSession,
        model_outputs: Any,
        original_sizes: Sequence[Sequence[int]] | Sequence[int] | Tensor | None = None,
    ) -> dict[str, Any]:
        """The frame's visible instances at the video's size.

        Objects with an empty mask, hidden on the frame or removed by hot-start are left out;
        within a phrase, a pixel claimed by several objects goes to the one with the highest
        tracker score.

        Args:
            inference_session: the session.
            model_outputs: a `Sam3VideoSegmentationOutput`.
            original_sizes: (height, width) of the frame, needed when streaming (the session then
                does not know the video's size), e.g. `processor(images=frame).original_sizes`.

        Returns:
            dict with object_ids (N,) int64 (ascending), scores (N,) detection probabilities,
            boxes (N, 4) float32 xyxy pixels (x2, y2 the last mask column / row, as the
            reference), masks (N, H, W) bool, and prompt_to_obj_ids: phrase -> its object ids.
        """
        height, width = self._video_size(inference_session, original_sizes)
        obj_id_to_mask = model_outputs["obj_id_to_mask"]
        obj_ids = sorted(obj_id_to_mask)
        hidden = set(model_outputs["suppressed_obj_ids"] or ()) | inference_session.hotstart_removed_obj_ids
        masks = torch.zeros(0, height, width, dtype=torch.bool)
        kept: list[int] = []
        scores = tracker_scores = torch.zeros(0)
        if obj_ids:
            low_res = torch.cat([obj_id_to_mask[o] for o in obj_ids])  # (N, 4h, 4w)
            compute = torch.promote_types(low_res.dtype, torch.float32)  # float64 stays float64
            masks = F.interpolate(
                low_res[:, None].to(compute), size=(height, width), mode="bilinear", align_corners=False
            )
            masks = masks[:, 0] > 0  # (N, H, W)
            visible = masks.flatten(1).any(dim=1).cpu().tolist()
            keep = [i for i, o in enumerate(obj_ids) if visible[i] and o not in hidden]
            kept = [obj_ids[i] for i in keep]
            masks = masks[torch.tensor(keep, dtype=torch.long, device=masks.device)]
            scores = torch.tensor([float(model_outputs["obj_id_to_score"][o]) for o in kept])
            tracker = model_outputs["obj_id_to_tracker_score"]
            tracker_scores = torch.tensor([float(tracker.get(o, 0.0)) for o in kept])
        boxes = masks_to_boxes(masks.cpu())
        boxes[:, 2:] -= (masks.shape[0] > 0) * 1.0  # last column / row, not one past it
        if len(kept) > 1:
            prompt_ids = [inference_session.obj_id_to_prompt_id[o] for o in kept]
            scores_col = tracker_scores[:, None].to(masks.device)
            masks = (
                per_prompt(
                    masks[:, None].float(),
                    prompt_ids,
                    lambda group, idx: object_wise_non_overlap(
                        group, scores_col[idx.to(masks.device)], background=0.0
                    ),
                )[:, 0]
                > 0
            )
        prompt_to_obj_ids: dict[str, list[int]] = {}
        for o in kept:
            prompt_to_obj_ids.setdefault(
                inference_session.prompts[inference_session.obj_id_to_prompt_id[o]], []
            ).append(o)
        return {
            "object_ids": torch.tensor(kept, dtype=torch.int64),
            "scores": scores.float(),
            "boxes": boxes,
            "masks": masks,
            "prompt_to_obj_ids": prompt_to_obj_ids,
        }

    @staticmethod
    def _video_size(session: Sam3VideoInferenceSession, original_sizes: Any) -> tuple[int, int]:
        if session.video_height is not None and session.video_width is not None:
            return int(session.video_height), int(session.video_width)
        if original_sizes is None:
            raise ValueError(
                "the session does not know the video's size (frames were streamed); pass "
                "original_sizes=[[height, width]] (e.g. processor(images=frame).original_sizes)"
            )
        if isinstance(original_sizes, Tensor):
            original_sizes = original_sizes.tolist()
        first = original_sizes[0]
        if isinstance(first, (list, tuple)):
            return int(first[0]), int(first[1])
        return int(original_sizes[0]), int(original_sizes[1])
