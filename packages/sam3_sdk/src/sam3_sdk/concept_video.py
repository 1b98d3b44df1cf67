"""Text-prompted video in the SDK: `ConceptVideoTracker` finds every instance of one or more
phrases in a video and tracks them all with sam3_core's `Sam3VideoModel`, composed of the models
the SDK has already loaded, and turns its outputs into `VideoFrameMasks`.

    frame --one backbone pass--> detector neck --Sam3Model heads, per phrase--> detections
                                 tracker neck  --video tracker--> every object's mask
    detections x tracked masks --detection-to-track logic (sam3_core)--> new / kept / removed objects

The model is a `Sam3VideoModel` over the `Sam3Model` detector and the `Sam3TrackerVideoModel` the
SDK already holds (both built around one ViT trunk), so no weight is held twice. What an
interactive session adds (a per-frame detection cache bounded in bytes, clicked objects beside
the phrases' objects, refined / hidden objects, phrases taken back, objects protected from the
hot-start removals) is the core session's (`Sam3VideoInferenceSession`, options and methods);
on a session of phrases alone the results are exactly the core model's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sam3_core import (
    Sam3Model,
    Sam3VideoInferenceSession,
    Sam3VideoModel,
    Sam3VideoProcessor,
    Sam3VideoSegmentationOutput,
)
from sam3_core.checkpoint_files import read_config, resolve_checkpoint_dir

from .video_io import VideoReader
from .video_results import VideoFrameMasks
from .video_tracker import ModelFrames, VideoTracker

__all__ = ["ConceptVideoTracker", "init_concept_state"]

DEFAULT_DETECTION_CACHE_BYTES = 256 * 2**20  # detections kept for re-propagation, per session


def init_concept_state(
    tracker: VideoTracker, reader: VideoReader, detection_cache_bytes: int = DEFAULT_DETECTION_CACHE_BYTES
) -> Sam3VideoInferenceSession:
    """A state for SAM 3's video tracker over `reader`'s frames (decoded when read) that phrases
    can join later: until then it tracks clicks exactly as the tracker's own state does.

    Object ids count from 1, as clicked objects' do (0 is the background of index masks): each
    is the core model's id + 1, the objects being found in the same order."""
    height, width = reader.size
    state = Sam3VideoInferenceSession(
        video_height=height,
        video_width=width,
        inference_device=tracker.model.device,
        video_storage_device="cpu",
        dtype=tracker.model.dtype,
        frame_normalization=tracker.processor.frame_normalization,
        detection_cache_bytes=detection_cache_bytes,
        first_obj_id=1,
    )
    state.use_frame_source(ModelFrames(reader, tracker.processor), len(reader))
    return state


class ConceptVideoTracker:
    """Phrases (and clicks) → every instance's masks, frame by frame, with stable object ids.

    >>> concepts = ConceptVideoTracker.from_parts(detector, video_tracker, checkpoint_dir)
    >>> state = concepts.init_state(open_video("clip.mp4"))
    >>> concepts.add_text(state, ["person", "dog"])
    >>> for frame_masks in concepts.propagate(state): ...
    """

    def __init__(self, model: Sam3VideoModel, processor: Sam3VideoProcessor, tracker: VideoTracker) -> None:
        self.model = model
        self.processor = processor
        self.tracker = tracker  # the same video model as `model.tracker_model`, for click prompts

    @classmethod
    def from_parts(
        cls,
        detector: Sam3Model,
        tracker: VideoTracker,
        checkpoint: Any,
        config_overrides: dict | None = None,
        tokenizer: Any = None,
        **hub_kwargs: Any,
    ) -> ConceptVideoTracker:
        """Compose over a loaded detector and SAM 3 video tracker sharing one backbone.

        checkpoint: the folder or hub id of the video tracker, a SAM 3 checkpoint (its config.json
        holds the detection-to-track settings; `config_overrides` changes them, e.g.
        {"new_det_thresh": 0.5}).
        tokenizer: the detector's tokenizer when the detector comes from another checkpoint (e.g.
            SAM3-LiteText's); default the checkpoint's.
        """
        if tracker.name != "SAM 3":
            raise ValueError(
                f"text prompts need SAM 3's own video tracker, not {tracker.name}'s; track phrases with a "
                "SAM 3 checkpoint"
            )
        folder = resolve_checkpoint_dir(checkpoint, **hub_kwargs)
        config = Sam3VideoModel.config_from_checkpoint_dict(
            {**read_config(folder), **(config_overrides or {})}
        )
        model = Sam3VideoModel(
            config, detector=detector, tracker=tracker.model, tracker_neck=tracker.model.vision_encoder.neck
        )
        if tokenizer is None:
            tokenizer = Sam3VideoProcessor.from_pretrained(folder, **hub_kwargs).tokenizer
        processor = Sam3VideoProcessor(
            tokenizer=tokenizer,
            size=tracker.processor.size,
            video_processor=tracker.processor,
        )
        return cls(model, processor, tracker)

    def with_settings(self, **overrides: Any) -> ConceptVideoTracker:
        """The same models with other detection-to-track settings (fields of `Sam3VideoConfig`)."""
        return type(self)(self.model.with_settings(**overrides), self.processor, self.tracker)

    def init_state(
        self, reader: VideoReader, detection_cache_bytes: int = DEFAULT_DETECTION_CACHE_BYTES
    ) -> Sam3VideoInferenceSession:
        """A fresh state over `reader`'s frames (decoded when read), for phrases and clicks alike."""
        return init_concept_state(self.tracker, reader, detection_cache_bytes)

    def add_text(self, state: Sam3VideoInferenceSession, text: str | list[str]) -> list[str]:
        """Register phrases (a phrase taken back earlier comes back). Returns the phrases given,
        whitespace-normalised."""
        phrases = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
        if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
            raise ValueError(f"text must be a phrase or a non-empty list of phrases, got {text!r}")
        phrases = [" ".join(p.split()) for p in phrases]
        self.processor.add_text_prompt(state, phrases)
        return phrases

    def step(
        self, state: Sam3VideoInferenceSession, frame: int, reverse: bool = False
    ) -> Sam3VideoSegmentationOutput:
        """Detect and track on one frame (new instances join, as when propagating)."""
        return self.model(inference_session=state, frame_idx=frame, reverse=reverse)

    def propagate(
        self,
        state: Sam3VideoInferenceSession,
        start_frame: int = 0,
        max_frames: int | None = None,
        reverse: bool = False,
    ) -> Iterator[Sam3VideoSegmentationOutput]:
        """The core's `propagate_in_video_iterator` (reverse starts at `start_frame - 1`)."""
        return self.model.propagate_in_video_iterator(
            inference_session=state,
            start_frame_idx=start_frame,
            max_frame_num_to_track=max_frames,
            reverse=reverse,
        )

    def frame_masks(
        self, state: Sam3VideoInferenceSession, out: Sam3VideoSegmentationOutput
    ) -> VideoFrameMasks:
        """One frame's visible objects at the video's size: phrase objects through the core's
        post-processing; clicked objects (scored by the tracker) added after them."""
        hidden, clicked = state.hidden_obj_ids, state.clicked_obj_ids
        masks_by_id = {o: m for o, m in out.obj_id_to_mask.items() if o not in hidden}
        phrase_out = dict(
            obj_id_to_mask={o: m for o, m in masks_by_id.items() if o not in clicked},
            obj_id_to_score=out.obj_id_to_score,
            obj_id_to_tracker_score=out.obj_id_to_tracker_score,
            suppressed_obj_ids=out.suppressed_obj_ids,
        )
        res = self.processor.postprocess_outputs(state, phrase_out)
        ids = [int(o) for o in res["object_ids"].tolist()]
        masks = [res["masks"].cpu().numpy()]
        scores = [res["scores"].float().cpu().numpy()]
        phrases = {o: p for p, objs in res["prompt_to_obj_ids"].items() for o in objs}
        own = sorted(o for o in masks_by_id if o in clicked and o not in (out.suppressed_obj_ids or ()))
        if own:
            low_res = torch.cat([masks_by_id[o] for o in own])[:, None].float()  # (C, 1, 4h, 4w)
            size = [state.video_height, state.video_width]
            clicked_masks = self.tracker.processor.post_process_masks([low_res], original_sizes=[size])[0][
                :, 0
            ]
            ids += own
            masks.append(clicked_masks.cpu().numpy())
            scores.append(np.array([out.obj_id_to_tracker_score.get(o, 0.0) for o in own], np.float32))
        return VideoFrameMasks(
            frame_idx=int(out.frame_idx),
            object_ids=ids,
            masks=np.concatenate(masks),
            scores=np.concatenate(scores),
            phrases=phrases,
        )
