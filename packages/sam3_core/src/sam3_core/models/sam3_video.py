"""`Sam3VideoModel`: find every instance of one or more phrases in a video and track them all.

A composition of the concept detector and the video tracker over one image backbone:

    frame --ViT (once)--> backbone map --detector neck--> Sam3Model heads, per phrase --> detections
                                       --tracker neck--> tracker features (cached in the session)
    objects already tracked --Sam3TrackerVideoModel (memory attention, no memory yet)--> masks
    detections x tracked masks --concept_tracker--> new objects, removals, re-conditioning,
        suppression --> memories encoded, new objects prompted with their detection masks
    --> per-frame output: object id -> low-resolution mask logits, scores

Usage (the reference's API):

    processor = Sam3VideoProcessor.from_pretrained("facebook/sam3")
    model = Sam3VideoModel.from_pretrained("facebook/sam3")
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_text_prompt(session, ["person", "dog"])
    for out in model.propagate_in_video_iterator(inference_session=session):
        res = processor.postprocess_outputs(session, out)  # object_ids, scores, boxes, masks,
        ...                                                 # prompt_to_obj_ids

    # streaming: no video up front, one frame at a time
    session = processor.init_video_session(inference_device="cpu")
    processor.add_text_prompt(session, "person")
    inputs = processor(images=frame)
    out = model(inference_session=session, frame=inputs["pixel_values"][0])
    res = processor.postprocess_outputs(session, out, original_sizes=inputs["original_sizes"])

    # over parts already loaded (one copy of the weights; the tracker reads the detector's backbone)
    model = Sam3VideoModel(config, detector=detector, tracker=tracker, tracker_neck=neck)

    # interactive: detections cached per frame, clicked objects beside the phrases' (see
    # `Sam3VideoInferenceSession`: add_clicked_object, refine, hide_object, forget_text)
    session = Sam3VideoInferenceSession(..., detection_cache_bytes=2**28, first_obj_id=1)

Parameter names are the combined `facebook/sam3` checkpoint's own (`detector_model.*`,
`tracker_model.*`, `tracker_neck.*`); the tracker has no backbone of its own (it reads the
detector's). Frame by frame the logic follows the reference's `Sam3VideoModel`; where the
reference pairs the masks and tracker scores of a frame with the object list as it is *after*
that frame's removals (shifting them onto the wrong objects on the frame an object is removed),
each object here keeps its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import PreTrainedModel
from ..checkpoint_keys import SAM3_VIDEO
from ..config import Sam3VideoConfig
from ..modeling.backbones.fpn import Sam3VisionNeck
from ..outputs import ModelOutput, Sam3VisionOutput
from ..scalars import as_int, is_int
from ..video import concept_tracker as ct
from ..video.concept_detections import Detections
from ..video.concept_masks import fill_holes_in_mask_scores, per_prompt, suppress_shrunk_after_non_overlap
from ..video.concept_session import Sam3VideoInferenceSession
from ..video.planner import plan_pass, reverse_pass_before
from .sam3 import Sam3Model
from .sam3_tracker_video import Sam3TrackerVideoModel, _progress

__all__ = ["Sam3VideoModel", "Sam3VideoSegmentationOutput"]


@dataclass
class Sam3VideoSegmentationOutput(ModelOutput):
    """One frame of `Sam3VideoModel` (forward / propagate_in_video_iterator).

    object_ids: the objects tracked after this frame.
    obj_id_to_mask: object id -> (1, 4h, 4w) low-resolution mask logits on this frame (tracked
        objects and the ones found on it); `Sam3VideoProcessor.postprocess_outputs` brings them to
        the video size.
    obj_id_to_score: object id -> detection probability when it was found (-1e4 once removed).
    obj_id_to_tracker_score: object id -> this frame's tracker probability that it is visible
        (the detection score on the frame it was found).
    removed_obj_ids: objects removed so far by the hot-start heuristics.
    suppressed_obj_ids: objects hidden on this frame (kept alive too long without a detection).
    frame_idx: the frame.
    """

    object_ids: list[int] | None = None
    obj_id_to_mask: dict[int, Tensor] | None = None
    obj_id_to_score: dict[int, float] | None = None
    obj_id_to_tracker_score: dict[int, float] | None = None
    removed_obj_ids: set[int] | None = None
    suppressed_obj_ids: set[int] | None = None
    frame_idx: int | None = None


class Sam3VideoModel(PreTrainedModel):
    """SAM 3 text-prompted video segmentation and tracking.

    Args:
        config: a `Sam3VideoConfig` (detector config, tracker config and the detection-to-track
            thresholds).
        detector, tracker, tracker_neck: parts already loaded, given together (default: built
            from `config`, to be filled by `from_pretrained`): the concept detector (`Sam3Model`
            or a model with its interface, e.g. `Sam3LiteTextModel`), the video tracker
            (`Sam3TrackerVideoModel`, with no backbone or one shared with the detector) and the
            neck that turns the detector's backbone map into the tracker's features. Nothing is
            copied: the model holds these very modules.
    """

    config_class = Sam3VideoConfig
    checkpoint_layout = SAM3_VIDEO

    def __init__(
        self,
        config: Sam3VideoConfig,
        detector: torch.nn.Module | None = None,
        tracker: Sam3TrackerVideoModel | None = None,
        tracker_neck: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        parts = (detector, tracker, tracker_neck)
        if any(p is None for p in parts) and any(p is not None for p in parts):
            given = [n for n, p in zip(("detector", "tracker", "tracker_neck"), parts) if p is not None]
            raise ValueError(
                f"give the detector, tracker and tracker_neck together, or none; got only {given}"
            )
        if detector is None:
            detector = Sam3Model(config.detector_config)
            tracker = Sam3TrackerVideoModel(config.tracker_config, remove_vision_encoder=True)
            tracker_neck = Sam3VisionNeck(config.detector_config.vision_config)
        elif tracker.vision_encoder is not None and (
            tracker.vision_encoder.backbone is not detector.vision_encoder.backbone
        ):
            # the tracker's features come from the detector's backbone pass: its own would be unused
            raise ValueError(
                "the detector and the video tracker must share one backbone (one trunk in memory)"
            )
        self.detector_model = detector
        self.tracker_model = tracker
        self.tracker_neck = tracker_neck
        self.settings = ct.ConceptTrackerSettings.from_config(config)
        self.low_res_mask_size = config.low_res_mask_size
        self.eval()

    @property
    def hotstart_delay(self) -> int:
        return self.settings.hotstart_delay

    def with_settings(self, **overrides: Any) -> Sam3VideoModel:
        """The same parts with other detection-to-track settings (fields of `Sam3VideoConfig`,
        e.g. `new_det_thresh=0.5`)."""
        config = dataclasses.replace(self.config, **overrides)
        config.validate()
        return type(self)(
            config, detector=self.detector_model, tracker=self.tracker_model, tracker_neck=self.tracker_neck
        )

    # ------------------------------------------------------------------------------------------
    # One frame
    # ------------------------------------------------------------------------------------------

    def frame_features(self, session: Sam3VideoInferenceSession, frame_idx: int) -> Sam3VisionOutput:
        """Run the backbone once on a frame: returns the detector's features and caches the
        tracker's (its own neck on the same backbone map) in the session."""
        pixels = session.get_frame(frame_idx).unsqueeze(0).to(self.device, self.dtype)
        vision = self.detector_model.vision_encoder
        spatial = vision.backbone_map(pixels)  # (1, C, H, W)
        maps, encodings = self.tracker_neck(spatial)
        tracker = self.tracker_model._image_features_from_vision(
            Sam3VisionOutput(fpn_hidden_states=maps, fpn_position_encoding=encodings)
        )
        session.cache_vision_features(frame_idx, {"maps": tracker.maps, "pos": [tracker.pos]})
        return vision.from_backbone_map(spatial)

    def run_detection(
        self, session: Sam3VideoInferenceSession, frame_idx: int, vision: Sam3VisionOutput
    ) -> Detections:
        """Every phrase's detections on the frame, merged (phrase after phrase); taken from the
        session's detection cache where it has them."""
        prompt_ids = session.active_prompt_ids
        if not prompt_ids:
            raise ValueError("no text prompts in the session; add some with processor.add_text_prompt")
        per_prompt_dets = {}
        for prompt_id in prompt_ids:
            dets = session.cached_detections(frame_idx, prompt_id)
            if dets is None:
                dets = self.detect_phrase(session, vision, prompt_id)
                session.cache_detections(frame_idx, prompt_id, dets)
            per_prompt_dets[prompt_id] = dets
        size = (self.low_res_mask_size, self.low_res_mask_size)
        return Detections.merge(per_prompt_dets, size, self.device)

    def detect_phrase(
        self, session: Sam3VideoInferenceSession, vision: Sam3VisionOutput, prompt_id: int
    ) -> Detections:
        """One phrase's detections worth tracking on a frame (`concept_tracker.filter_detections`)."""
        text = session.text_features(prompt_id, self.detector_model.get_text_features)
        out = self.detector_model(
            vision_embeds=vision, text_embeds=text, attention_mask=session.prompt_attention_masks[prompt_id]
        )
        probs = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()  # (1, Q)
        return ct.filter_detections(probs[0], out.pred_boxes[0], out.pred_masks[0], prompt_id, self.settings)

    def propagate_tracks(
        self, session: Sam3VideoInferenceSession, frame_idx: int, reverse: bool
    ) -> tuple[Tensor, Tensor]:
        """The tracked objects' (M, 4h, 4w) mask logits (holes filled) and (M,) object-score
        logits on the frame; their memories are encoded later, once the heuristics are done."""
        if not session.obj_ids:
            size = (self.low_res_mask_size, self.low_res_mask_size)
            return torch.zeros(0, *size, device=self.device), torch.zeros(0, device=self.device)
        out = self.tracker_model(
            inference_session=session, frame_idx=frame_idx, reverse=reverse, run_mem_encoder=False
        )
        masks = fill_holes_in_mask_scores(out.pred_masks, self.settings.fill_hole_area)  # (M, 1, 4h, 4w)
        return masks.squeeze(1), out.object_score_logits.squeeze(1)

    def encode_track_memories(
        self, session: Sam3VideoInferenceSession, frame_idx: int, masks: Tensor, targets: dict[int, Tensor]
    ) -> None:
        """Encode the tracked objects' memories of this frame from their final masks.

        masks: (M, 4h, 4w) logits, updated in place where a re-conditioning target replaces a mask.
        Within a phrase, an object that loses most of its area to higher-scoring neighbours is
        encoded as absent.
        """
        memory_masks = masks.unsqueeze(1)  # (M, 1, 4h, 4w), a view: targets write through
        for obj_idx, target in targets.items():
            memory_masks[obj_idx] = target.float()
            session.promote_to_conditioning(obj_idx, frame_idx)
        prompt_ids = [session.obj_id_to_prompt_id[o] for o in session.obj_ids]
        memory_masks = per_prompt(
            memory_masks, prompt_ids, lambda group, _: suppress_shrunk_after_non_overlap(group)
        )
        present = (memory_masks > 0).flatten(1).any(dim=1)  # (M,)
        scores = torch.where(present, 10.0, -10.0)[:, None, None]  # (M, 1, 1)
        maps, _ = self.tracker_model.frame_features(session, frame_idx)
        memory, memory_pos = self.tracker_model.tracking_engine().encode_memory(
            maps[-1], memory_masks, scores, from_prompts=False
        )
        for obj_idx in range(len(session.obj_ids)):
            session.store_memory(
                obj_idx, frame_idx, memory[obj_idx : obj_idx + 1], memory_pos[obj_idx : obj_idx + 1]
            )

    def add_new_objects(
        self,
        session: Sam3VideoInferenceSession,
        frame_idx: int,
        obj_ids: list[int],
        masks: Tensor,
        reverse: bool,
    ) -> None:
        """Start tracking new objects from their (K, 4h, 4w) detection mask logits (as mask prompts)."""
        session.add_found_objects(frame_idx, obj_ids, masks >= 0.5)
        self.tracker_model(
            inference_session=session, frame_idx=frame_idx, reverse=reverse, run_mem_encoder=True
        )

    def track_frame(
        self, session: Sam3VideoInferenceSession, frame_idx: int, reverse: bool, streaming: bool
    ) -> tuple[dict[int, Tensor], dict[int, float]]:
        """Detect, track and update the objects on one frame.

        Returns (object id -> (1, 4h, 4w) mask logits, object id -> tracker probability on this frame).
        """
        s = self.settings
        vision = self.frame_features(session, frame_idx)
        dets = self.run_detection(session, frame_idx, vision)
        trk_masks, trk_scores = self.propagate_tracks(session, frame_idx, reverse)
        old_ids = list(session.obj_ids)
        clicked = session.clicked_obj_indices()
        if clicked:  # a detection over a clicked object is that object: not matched, not new
            dets = dets.without_overlap(trk_masks[clicked], s.assoc_iou_thresh)

        trk_prompts = torch.tensor(
            [session.obj_id_to_prompt_id[o] for o in old_ids], dtype=torch.long, device=trk_masks.device
        )
        assoc = ct.associate(dets, trk_masks, old_ids, trk_prompts, s)
        new_inds, new_ids = ct.admit_new_objects(session, assoc, dets, s)
        removed = ct.update_hotstart(session, frame_idx, reverse, assoc, new_ids, s, streaming)
        targets = ct.recondition_targets(session, frame_idx, assoc, dets, trk_masks, trk_scores, s)

        last_occluded: dict[int, Tensor] = {}
        if old_ids:
            threshold = s.suppress_overlapping_based_on_recent_occlusion_threshold
            if threshold > 0:
                suppress, last_occluded = ct.suppress_recently_occluded(
                    session, frame_idx, trk_masks, removed, reverse, threshold
                )
                ct.blank(trk_masks, suppress)  # also blanks re-conditioning targets (views)
            self.encode_track_memories(session, frame_idx, trk_masks, targets)

        # bookkeeping of the new and removed objects
        # an object's detection score is kept in fp32, as the reference keeps it (also in float64)
        new_scores = dets.scores.float()[
            torch.tensor(new_inds, dtype=torch.long, device=dets.scores.device)
        ].tolist()
        frame_scores = session.commit_frame(frame_idx, new_ids, new_scores, removed, last_occluded)

        if new_ids:
            self.add_new_objects(session, frame_idx, new_ids, dets.masks[new_inds], reverse)
        for obj_id in removed:
            session.remove_object(obj_id)

        # this frame's masks: tracked objects, then new ones (holes filled), then detections that
        # re-conditioned an object replace its mask
        masks = {o: trk_masks[i : i + 1] for i, o in enumerate(old_ids) if o not in removed}
        if new_ids:
            found = fill_holes_in_mask_scores(dets.masks[new_inds].unsqueeze(1), s.fill_hole_area)
            masks.update({o: found[k] for k, o in enumerate(new_ids)})
        for obj_idx in targets:
            obj_id = old_ids[obj_idx]
            if obj_id not in removed:
                masks[obj_id] = dets.masks[assoc.confirming_det[obj_id]][None]
        probs = trk_scores.sigmoid().tolist()
        frame_scores.update({o: p for o, p in zip(old_ids, probs) if o not in removed})
        return masks, frame_scores

    # ------------------------------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def forward(
        self,
        inference_session: Sam3VideoInferenceSession,
        frame_idx: int | None = None,
        frame: Tensor | None = None,
        reverse: bool = False,
        **unused: Any,
    ) -> Sam3VideoSegmentationOutput:
        """Detect the session's phrases on one frame and track all their instances.

        Args:
            inference_session: the session (from `Sam3VideoProcessor.init_video_session`) with
                at least one phrase (`Sam3VideoProcessor.add_text_prompt`).
            frame_idx: the frame to process; with `frame`, defaults to the next streamed index.
            frame: a new streamed frame, (3, S, S) or (1, 3, S, S) pixel values from the processor
                (`processor(images=frame).pixel_values[0]`). Streaming never removes objects by
                the hot-start heuristics (there are no later frames to confirm them).
            reverse: tracking backwards in time.

        Returns:
            `Sam3VideoSegmentationOutput` for the frame (pass it to `processor.postprocess_outputs`).
        """
        session = inference_session
        if not isinstance(session, Sam3VideoInferenceSession):
            raise TypeError(
                f"inference_session must be a Sam3VideoInferenceSession, got {type(session).__name__}"
            )
        if frame is not None:
            frame_idx = session.add_new_frame(frame, frame_idx)
        if frame_idx is None:
            raise ValueError("give frame_idx (a frame of the session's video) or a streamed frame=")
        frame_idx = session.check_frame_idx(frame_idx)
        masks, tracker_scores = self.track_frame(session, frame_idx, reverse, streaming=frame is not None)
        return Sam3VideoSegmentationOutput(
            object_ids=list(session.obj_ids),
            obj_id_to_mask=masks,
            obj_id_to_score=dict(session.obj_id_to_score),
            obj_id_to_tracker_score=dict(tracker_scores),
            removed_obj_ids=set(session.removed_obj_ids),
            suppressed_obj_ids=set(session.suppressed_obj_ids[frame_idx]),
            frame_idx=frame_idx,
        )

    @torch.inference_mode()
    def propagate_in_video_iterator(
        self,
        inference_session: Sam3VideoInferenceSession,
        start_frame_idx: int = 0,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        show_progress_bar: bool = False,
    ) -> Iterator[Sam3VideoSegmentationOutput]:
        """Detect and track the session's phrases through the video, yielding one output per frame.

        With `hotstart_delay` > 0, outputs are held back that many frames, so that objects the
        hot-start heuristics remove meanwhile (`session.hotstart_removed_obj_ids`) are hidden from
        the earlier frames too by `postprocess_outputs`; the rest come out at the end.

        Args:
            inference_session: a session holding the whole video and at least one phrase.
            start_frame_idx: the first frame.
            max_frame_num_to_track: how many frames to go beyond the start (default: to the end).
            reverse: go backwards, from `start_frame_idx - 1` down to frame 0 (as the reference).
            show_progress_bar: a tqdm progress bar (when tqdm is installed).
        """
        session = inference_session
        num_frames = session.num_frames
        if not num_frames:
            raise ValueError("the session has no frames; pass video=... to init_video_session")
        if not is_int(start_frame_idx) or not 0 <= start_frame_idx <= num_frames - (not reverse):
            raise ValueError(
                f"start_frame_idx {start_frame_idx!r} is out of range for a video of {num_frames} frames"
            )
        start_frame_idx = int(start_frame_idx)
        if max_frame_num_to_track is not None:
            max_frame_num_to_track = as_int("max_frame_num_to_track", max_frame_num_to_track)
            if max_frame_num_to_track < 0:
                raise ValueError(f"max_frame_num_to_track must be >= 0, got {max_frame_num_to_track}")
        # the planner's convention (a pass visits its start first); this iterator's reverse pass
        # starts one frame before `start_frame_idx`, as the reference's
        if reverse:
            planned = reverse_pass_before(num_frames, start_frame_idx, max_frame_num_to_track)
        else:
            planned = plan_pass(num_frames, start_frame_idx, max_frame_num_to_track)
        order = planned.frames if planned is not None else range(0)
        end = order[-1] if order else None

        delay = self.settings.hotstart_delay
        held: list[Sam3VideoSegmentationOutput] = []
        for frame_idx in _progress(order, show_progress_bar):
            out = self(inference_session=session, frame_idx=frame_idx, reverse=reverse)
            if delay <= 0:
                yield out
                continue
            held.append(out)
            session.note_hotstart_removed(out.removed_obj_ids)
            if frame_idx == end:
                yield from held
                held = []
            elif len(held) >= delay:
                yield held.pop(0)
        yield from held  # nothing is left behind, whatever the range
