"""Text-prompted video in the SDK: `ConceptVideoTracker` finds every instance of one or more
phrases in a video and tracks them all (sam3_core's `Sam3VideoModel`), over the models the SDK
has already loaded, and lets clicked objects share the session with the phrases' objects.

    frame --one backbone pass--> detector neck --Sam3Model heads, per phrase--> detections
                                 tracker neck  --video tracker--> every object's mask
    detections x tracked masks --detection-to-track logic (sam3_core)--> new / kept / removed objects

The model is a `Sam3VideoModel` composed of the `Sam3Model` detector and the
`Sam3TrackerVideoModel` the SDK already holds (both built around one ViT trunk), so no weight is
held twice. Two additions for interactive sessions, both inert on a session of phrases alone
(whose results are then exactly the core model's):

- each frame's detections are cached per phrase (`DetectionCache`, bounded in bytes), so
  propagating again does not run the detector on frames it has already seen with those phrases;
- objects the user prompted (clicked, or phrase objects refined or found in an earlier pass) are
  protected from the hot-start removal and keep-alive suppression meant for fresh detections,
  and a detection overlapping a clicked object is taken to be that object (no duplicate).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sam3_core import (
    Sam3Model,
    Sam3TrackerVideoModel,
    Sam3VideoInferenceSession,
    Sam3VideoModel,
    Sam3VideoProcessor,
    Sam3VideoSegmentationOutput,
    Sam3VisionOutput,
)
from sam3_core.checkpoint_files import read_config, resolve_checkpoint_dir
from sam3_core.video import concept_tracker as ct
from sam3_core.video.concept_masks import mask_iou
from torch import Tensor

from .video_io import VideoReader
from .video_results import VideoFrameMasks
from .video_tracker import ModelFrames, VideoTracker

__all__ = [
    "ConceptVideoModel",
    "ConceptVideoState",
    "ConceptVideoTracker",
    "DetectionCache",
    "init_concept_state",
]

DEFAULT_DETECTION_CACHE_BYTES = 256 * 2**20  # detections kept for re-propagation, per session


class DetectionCache:
    """Each frame's detections per phrase (`concept_tracker.Detections`), the oldest frames
    dropped beyond `max_bytes` (a dropped frame is detected again when it is next needed)."""

    def __init__(self, max_bytes: int = DEFAULT_DETECTION_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._frames: OrderedDict[int, dict[str, ct.Detections]] = OrderedDict()
        self.nbytes = 0

    @staticmethod
    def _size(dets: ct.Detections) -> int:
        return sum(
            t.numel() * t.element_size() for t in (dets.boxes, dets.masks, dets.scores, dets.prompt_ids)
        )

    def get(self, frame_idx: int, phrase: str) -> ct.Detections | None:
        return self._frames.get(frame_idx, {}).get(phrase)

    def put(self, frame_idx: int, phrase: str, dets: ct.Detections) -> None:
        per_phrase = self._frames.setdefault(frame_idx, {})
        old = per_phrase.get(phrase)
        self.nbytes += self._size(dets) - (self._size(old) if old is not None else 0)
        per_phrase[phrase] = dets
        while self.nbytes > self.max_bytes and len(self._frames) > 1:
            _, dropped = self._frames.popitem(last=False)
            self.nbytes -= sum(self._size(d) for d in dropped.values())

    def forget_phrase(self, phrase: str) -> None:
        for per_phrase in self._frames.values():
            dets = per_phrase.pop(phrase, None)
            if dets is not None:
                self.nbytes -= self._size(dets)

    def __len__(self) -> int:
        """Frames with cached detections."""
        return len(self._frames)


class ConceptVideoState(Sam3VideoInferenceSession):
    """A `Sam3VideoInferenceSession` with what an interactive SDK session adds: the detection
    cache, the objects protected from the detection-to-track removals, removed phrase objects
    kept as hidden tracks (so that the detector does not find them again), and phrases taken back.

    Object ids count from 1, as clicked objects' do (0 is the background of index masks): each
    is the core model's id + 1, the objects being found in the same order.
    """

    def __init__(self, *args: Any, detection_cache_bytes: int = DEFAULT_DETECTION_CACHE_BYTES, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_obj_id = 0  # the first object found gets id 1
        self.detections = DetectionCache(detection_cache_bytes)
        self.protected_obj_ids: set[int] = set()  # never removed or suppressed by hot-start rules
        self.clicked_obj_ids: set[int] = set()  # objects from clicks, not from a phrase
        self.hidden_obj_ids: set[int] = set()  # removed phrase objects, still followed, never shown
        self.inactive_prompt_ids: set[int] = set()  # phrases taken back (ids are never reused)
        self.concept_frames: set[int] = set()  # frames the detection-to-track logic has processed
        self.current_frame: int | None = None
        self.current_detections: ct.Detections | None = None

    @property
    def active_phrases(self) -> list[str]:
        return [p for i, p in self.prompts.items() if i not in self.inactive_prompt_ids]

    def phrase_of(self, obj_id: int) -> str | None:
        """The phrase an object was found by (None for clicked objects)."""
        prompt_id = self.obj_id_to_prompt_id.get(obj_id)
        return None if prompt_id is None or obj_id in self.clicked_obj_ids else self.prompts.get(prompt_id)


@dataclass
class _FrameVision:
    """The detector's features of one frame, with the frame they belong to (for the cache)."""

    frame_idx: int
    vision: Sam3VisionOutput


class ConceptVideoModel(Sam3VideoModel):
    """`Sam3VideoModel` over already loaded parts, with the SDK session's additions (module doc).

    Build it with `compose`; on a plain `Sam3VideoInferenceSession` it is the core model.
    """

    @classmethod
    def compose(
        cls,
        config: Any,
        detector: Sam3Model,
        tracker: Sam3TrackerVideoModel,
        tracker_neck: torch.nn.Module,
    ) -> ConceptVideoModel:
        """The model around `detector`, `tracker` (its frames' features come from `tracker_neck`
        on the detector's backbone map) and the tracker's neck: nothing is copied or read again.
        The detector and the tracker must share one backbone."""
        if detector.vision_encoder.backbone is not getattr(tracker.vision_encoder, "backbone", None):
            raise ValueError(
                "the detector and the video tracker must share one backbone (one trunk in memory)"
            )
        with torch.device("meta"):  # the parts below replace every module: build without memory
            model = cls(config)
        model.detector_model, model.tracker_model, model.tracker_neck = detector, tracker, tracker_neck
        stray = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
        if stray:
            raise ValueError(f"the composed model has tensors of its own that were not given: {stray[:5]}")
        return model.eval()

    def with_settings(self, **overrides: Any) -> ConceptVideoModel:
        """The same parts with other detection-to-track settings (e.g. `new_det_thresh`)."""
        config = dataclasses.replace(self.config, **overrides)
        config.validate()
        return type(self).compose(config, self.detector_model, self.tracker_model, self.tracker_neck)

    # -- the SDK session's additions (no-ops on a plain core session) --------------------------

    def frame_features(self, session: Sam3VideoInferenceSession, frame_idx: int) -> Any:
        vision = super().frame_features(session, frame_idx)
        return _FrameVision(frame_idx, vision) if isinstance(session, ConceptVideoState) else vision

    def run_detection(self, session: Sam3VideoInferenceSession, vision: Any) -> ct.Detections:
        if not isinstance(vision, _FrameVision):
            return super().run_detection(session, vision)
        per_prompt = {}
        for prompt_id, phrase in session.prompts.items():
            if prompt_id in session.inactive_prompt_ids:
                continue
            dets = session.detections.get(vision.frame_idx, phrase)
            if dets is None:
                dets = self.detect_phrase(session, vision.vision, prompt_id)
                session.detections.put(vision.frame_idx, phrase, dets)
            per_prompt[prompt_id] = dets
        if not per_prompt:
            raise ValueError("no phrases in the session; add one with add_text")
        size = (self.low_res_mask_size, self.low_res_mask_size)
        merged = ct.Detections.merge(per_prompt, size, self.device)
        session.current_detections = merged
        return merged

    @torch.inference_mode()
    def detect_phrase(self, session: Sam3VideoInferenceSession, vision: Sam3VisionOutput, prompt_id: int):
        """One phrase's detections on a frame (what the core's `run_detection` does per phrase)."""
        mask = session.prompt_attention_masks[prompt_id]
        if prompt_id not in session.prompt_embeddings:
            session.prompt_embeddings[prompt_id] = self.detector_model.get_text_features(
                session.prompt_input_ids[prompt_id], mask
            )
        out = self.detector_model(
            vision_embeds=vision, text_embeds=session.prompt_embeddings[prompt_id], attention_mask=mask
        )
        probs = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()  # (1, Q)
        return ct.filter_detections(probs[0], out.pred_boxes[0], out.pred_masks[0], prompt_id, self.settings)

    def propagate_tracks(
        self, session: Sam3VideoInferenceSession, frame_idx: int, reverse: bool
    ) -> tuple[Tensor, Tensor]:
        masks, scores = super().propagate_tracks(session, frame_idx, reverse)
        dets = getattr(session, "current_detections", None)
        if (
            isinstance(session, ConceptVideoState)
            and dets is not None
            and len(dets)
            and session.clicked_obj_ids
        ):
            # a detection over a clicked object is that object: drop it before matching
            clicked = [i for i, o in enumerate(session.obj_ids) if o in session.clicked_obj_ids]
            ious = mask_iou(dets.masks > 0, masks[clicked] > 0)  # (N, C)
            keep = ~(ious >= self.settings.assoc_iou_thresh).any(dim=1)
            for f in dataclasses.fields(dets):
                setattr(dets, f.name, getattr(dets, f.name)[keep.to(dets.scores.device)])
        return masks, scores

    def track_frame(
        self, session: Sam3VideoInferenceSession, frame_idx: int, reverse: bool, streaming: bool
    ) -> tuple[dict[int, Tensor], dict[int, float]]:
        if not isinstance(session, ConceptVideoState):
            return super().track_frame(session, frame_idx, reverse, streaming)
        s = self.settings
        for obj_id in session.protected_obj_ids & set(session.obj_ids):
            # never hot: first seen `hotstart_delay` frames back; unmatched frames forgotten
            session.obj_first_frame_idx[obj_id] = frame_idx + (
                s.hotstart_delay if reverse else -s.hotstart_delay
            )
            session.unmatched_frame_inds.pop(obj_id, None)
            session.trk_keep_alive[obj_id] = abs(s.max_trk_keep_alive) + 2
            session.obj_id_to_score.setdefault(obj_id, 1.0)
        session.current_frame, session.current_detections = frame_idx, None
        masks, scores = super().track_frame(session, frame_idx, reverse, streaming)
        session.suppressed_obj_ids[frame_idx] -= session.protected_obj_ids
        session.concept_frames.add(frame_idx)
        session.current_detections = None
        return masks, scores


def init_concept_state(
    tracker: VideoTracker, reader: VideoReader, detection_cache_bytes: int = DEFAULT_DETECTION_CACHE_BYTES
) -> ConceptVideoState:
    """A state for SAM 3's video tracker over `reader`'s frames (decoded when read) that phrases
    can join later: until then it tracks clicks exactly as the tracker's own state does."""
    state = ConceptVideoState(
        inference_device=tracker.model.device,
        video_storage_device="cpu",
        dtype=tracker.model.dtype,
        frame_normalization=tracker.processor.frame_normalization,
        detection_cache_bytes=detection_cache_bytes,
    )
    state.video_height, state.video_width = reader.size
    state.use_frame_source(ModelFrames(reader, tracker.processor), len(reader))
    return state


class ConceptVideoTracker:
    """Phrases (and clicks) → every instance's masks, frame by frame, with stable object ids.

    >>> concepts = ConceptVideoTracker.from_parts(detector, video_tracker, checkpoint_dir)
    >>> state = concepts.init_state(open_video("clip.mp4"))
    >>> concepts.add_text(state, ["person", "dog"])
    >>> for frame_masks in concepts.propagate(state): ...
    """

    def __init__(
        self, model: ConceptVideoModel, processor: Sam3VideoProcessor, tracker: VideoTracker
    ) -> None:
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
        model = ConceptVideoModel.compose(config, detector, tracker.model, tracker.model.vision_encoder.neck)
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
    ) -> ConceptVideoState:
        """A fresh state over `reader`'s frames (decoded when read), for phrases and clicks alike."""
        return init_concept_state(self.tracker, reader, detection_cache_bytes)

    def add_text(self, state: ConceptVideoState, text: str | list[str]) -> list[str]:
        """Register phrases (a phrase taken back earlier comes back). Returns the phrases given,
        whitespace-normalised."""
        phrases = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
        if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
            raise ValueError(f"text must be a phrase or a non-empty list of phrases, got {text!r}")
        phrases = [" ".join(p.split()) for p in phrases]
        self.processor.add_text_prompt(state, phrases)
        state.inactive_prompt_ids -= {i for i, p in state.prompts.items() if p in phrases}
        return phrases

    def step(
        self, state: ConceptVideoState, frame: int, reverse: bool = False
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
        hidden = getattr(state, "hidden_obj_ids", set())
        clicked = getattr(state, "clicked_obj_ids", set())
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
