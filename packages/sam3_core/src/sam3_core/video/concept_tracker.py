"""Detections <-> tracks: the decisions of text-prompted video tracking (`Sam3VideoModel`).

On every frame the detector finds the phrases' instances and the tracker propagates the objects
already followed; this module decides, from those two sets of masks, what happens to the objects.
It holds no model: the model (`models/sam3_video.py`) runs the detector and the tracker and calls
these steps, which read and update the session's bookkeeping (`concept_session.py`):

1. `filter_detections`: keep one phrase's detections above `score_threshold_detection`, after
   mask NMS (`det_nms_thresh`); `Detections.merge` puts all phrases' detections together.
2. `associate`: match detections with tracks by mask IoU, only within a phrase. A detection
   overlapping no track (IoU < `assoc_iou_thresh`) and scoring >= `new_det_thresh` is new; a
   visible track overlapping no detection by `trk_assoc_iou_thresh` is unmatched.
3. `admit_new_objects`: new detections become objects with fresh ids, the best-scoring first
   when `max_num_objects` would be exceeded.
4. `update_hotstart`: keep-alive counters (up on a match, down when unmatched); within
   `hotstart_delay` frames of its first frame an object unmatched on `hotstart_unmatch_thresh`
   frames, or sharing a detection with an older object on `hotstart_dup_thresh` frames, is
   removed (never while streaming: there are no later frames to confirm it). Objects the
   session protects (clicked ones, refined ones, those found before a repeated propagation:
   `Sam3VideoInferenceSession.protected_obj_ids`) are never removed or hidden by these rules.
5. `recondition_targets`: every `recondition_every_nth_frame` frames, objects confirmed by a
   detection (score >= `high_conf_thresh`, IoU >= `high_iou_thresh`) get this frame's mask as a
   conditioning memory.
6. `suppress_recently_occluded`: of two same-phrase objects overlapping by
   `suppress_overlapping_based_on_recent_occlusion_threshold`, the one occluded more recently is
   blanked on this frame.

The numbers follow the reference implementation (transformers' `Sam3VideoModel`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from .concept_detections import Detections
from .concept_masks import NO_OBJECT_LOGIT, mask_iou, nms_masks
from .concept_session import Sam3VideoInferenceSession

__all__ = [
    "Association",
    "ConceptTrackerSettings",
    "Detections",
    "admit_new_objects",
    "associate",
    "filter_detections",
    "recondition_targets",
    "suppress_recently_occluded",
    "update_hotstart",
]

NEVER_OCCLUDED = -1
ALWAYS_OCCLUDED = 100000  # later than any frame: an object removed on this frame loses every overlap


@dataclass(frozen=True)
class ConceptTrackerSettings:
    """The detection-to-track fields of a `Sam3VideoConfig` (see its docstring; the defaults live there)."""

    score_threshold_detection: float
    det_nms_thresh: float
    assoc_iou_thresh: float
    trk_assoc_iou_thresh: float
    new_det_thresh: float
    recondition_on_trk_masks: bool
    hotstart_delay: int
    hotstart_unmatch_thresh: int
    hotstart_dup_thresh: int
    suppress_unmatched_only_within_hotstart: bool
    init_trk_keep_alive: int
    max_trk_keep_alive: int
    min_trk_keep_alive: int
    suppress_overlapping_based_on_recent_occlusion_threshold: float
    decrease_trk_keep_alive_for_empty_masklets: bool
    fill_hole_area: int
    max_num_objects: int
    recondition_every_nth_frame: int
    high_conf_thresh: float
    high_iou_thresh: float

    @classmethod
    def from_config(cls, config: Any) -> ConceptTrackerSettings:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


def filter_detections(
    probs: Tensor, boxes: Tensor, masks: Tensor, prompt_id: int, settings: ConceptTrackerSettings
) -> Detections:
    """One phrase's detections worth tracking.

    probs (Q,) query probabilities (class x presence), boxes (Q, 4), masks (Q, 4h, 4w) logits.
    Keeps, in query order, those above `score_threshold_detection` that survive mask NMS.
    """
    if settings.det_nms_thresh > 0:
        keep = nms_masks(probs, masks, settings.score_threshold_detection, settings.det_nms_thresh)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    chosen = torch.nonzero(probs > settings.score_threshold_detection, as_tuple=True)[0]
    return Detections(
        boxes=boxes[chosen],
        masks=masks[chosen],
        scores=probs[chosen],
        prompt_ids=torch.full((chosen.numel(),), prompt_id, dtype=torch.long, device=probs.device),
    )


@dataclass
class Association:
    """How a frame's detections and tracks relate (object ids, detection indices)."""

    new_det_inds: list[int]  # detections that start a new object
    unmatched_obj_ids: list[int]  # visible tracks no detection confirms
    empty_obj_ids: list[int]  # tracks with an empty mask on this frame
    det_to_obj_ids: dict[int, list[int]]  # every detection -> the tracks it overlaps
    confirming_det: dict[int, int]  # track -> the high-confidence detection that matches it best


def associate(
    dets: Detections,
    trk_masks: Tensor,
    trk_obj_ids: list[int],
    trk_prompt_ids: Tensor,
    settings: ConceptTrackerSettings,
) -> Association:
    """Match detections (N) with tracks (M, 4h, 4w mask logits) by mask IoU within a phrase."""
    ids = torch.tensor(trk_obj_ids, dtype=torch.long, device="cpu")  # matching runs on the host
    if trk_masks.shape[0] == 0:
        return Association(list(range(len(dets))), [], [], {}, {})
    visible = (trk_masks > 0).flatten(1).any(dim=1).cpu()  # (M,)
    if len(dets) == 0:
        return Association([], ids[visible].tolist(), ids[~visible].tolist(), {}, {})

    ious = mask_iou(dets.masks > 0, trk_masks > 0)  # (N, M)
    same_prompt = dets.prompt_ids[:, None].to(ious.device) == trk_prompt_ids[None, :].to(ious.device)
    ious = torch.where(same_prompt, ious, torch.zeros_like(ious)).cpu()
    scores = dets.scores.float().cpu()

    matched = (ious >= settings.trk_assoc_iou_thresh).any(dim=0)  # (M,)
    overlaps = ious >= settings.assoc_iou_thresh  # (N, M)
    is_new = (scores >= settings.new_det_thresh) & ~overlaps.any(dim=1)  # (N,)
    best_iou, best_trk = ious.max(dim=1)
    confirms = (scores >= settings.high_conf_thresh) & ~is_new & (best_iou >= settings.high_iou_thresh)
    confirming: dict[int, int] = {}
    for det_idx in torch.nonzero(confirms, as_tuple=True)[0].tolist():
        confirming[int(ids[best_trk[det_idx]])] = det_idx  # a later detection wins a shared track
    return Association(
        new_det_inds=torch.nonzero(is_new, as_tuple=True)[0].tolist(),
        unmatched_obj_ids=ids[visible & ~matched].tolist(),
        empty_obj_ids=ids[~visible].tolist(),
        det_to_obj_ids={d: ids[overlaps[d]].tolist() for d in range(len(dets))},
        confirming_det=confirming,
    )


def admit_new_objects(
    session: Sam3VideoInferenceSession, assoc: Association, dets: Detections, settings: ConceptTrackerSettings
) -> tuple[list[int], list[int]]:
    """(detection indices, new object ids) of the detections that become objects; records each
    new object's phrase. Beyond `max_num_objects`, the best-scoring detections are kept."""
    new_inds = assoc.new_det_inds
    room = settings.max_num_objects - len(session.obj_ids)
    if len(new_inds) > room:
        # ranked in fp32 as the reference does (it keeps detection scores in fp32 from here on):
        # in a float64 model, scores that differ only beyond fp32 precision tie alike in both
        scores = dets.scores.float()[torch.tensor(new_inds, dtype=torch.long, device=dets.scores.device)]
        top = torch.topk(scores, k=max(room, 0), largest=True).indices.tolist()
        new_inds = [new_inds[i] for i in top]
    first = session.max_obj_id + 1
    new_ids = list(range(first, first + len(new_inds)))
    for obj_id, det_idx in zip(new_ids, new_inds):
        session.obj_id_to_prompt_id[obj_id] = int(dets.prompt_ids[det_idx])
    return new_inds, new_ids


def update_hotstart(
    session: Sam3VideoInferenceSession,
    frame_idx: int,
    reverse: bool,
    assoc: Association,
    new_obj_ids: list[int],
    settings: ConceptTrackerSettings,
    streaming: bool,
) -> set[int]:
    """Update keep-alive counters and hot-start records; return the objects removed on this frame."""
    s = settings
    first_frame, keep_alive = session.obj_first_frame_idx, session.trk_keep_alive
    removed, newly_removed = session.removed_obj_ids, set()
    suppressed = session.suppressed_obj_ids[frame_idx]
    # protected objects are neither counted unmatched nor hot (empty on a plain session)
    protected = session.protected_obj_ids
    # objects that first appeared after this frame (before it, in reverse) are still "hot"
    horizon = frame_idx + s.hotstart_delay if reverse else frame_idx - s.hotstart_delay

    def is_hot(obj_id: int) -> bool:
        if obj_id in protected:
            return False
        return first_frame[obj_id] < horizon if reverse else first_frame[obj_id] > horizon

    for obj_id in new_obj_ids:
        first_frame.setdefault(obj_id, frame_idx)
        keep_alive[obj_id] = s.init_trk_keep_alive
    matched = {obj_id for obj_ids in assoc.det_to_obj_ids.values() for obj_id in obj_ids}
    for obj_id in matched:
        keep_alive[obj_id] = min(s.max_trk_keep_alive, keep_alive.get(obj_id, s.init_trk_keep_alive) + 1)
    for obj_id in assoc.unmatched_obj_ids:
        if obj_id in protected:
            continue
        session.unmatched_frame_inds[obj_id].append(frame_idx)
        keep_alive[obj_id] = max(s.min_trk_keep_alive, keep_alive[obj_id] - 1)
    if s.decrease_trk_keep_alive_for_empty_masklets:
        for obj_id in assoc.empty_obj_ids:
            if obj_id not in protected:
                keep_alive[obj_id] = max(s.min_trk_keep_alive, keep_alive[obj_id] - 1)

    if not streaming:
        for obj_id, frames in session.unmatched_frame_inds.items():
            if obj_id in removed or obj_id in newly_removed or obj_id in protected:
                continue
            if len(frames) >= s.hotstart_unmatch_thresh and is_hot(obj_id):
                newly_removed.add(obj_id)
            if (
                keep_alive[obj_id] <= 0
                and not s.suppress_unmatched_only_within_hotstart
                and obj_id not in newly_removed
            ):
                suppressed.add(obj_id)

    # objects sharing one detection: the later ones are possible duplicates of the first
    for obj_ids in assoc.det_to_obj_ids.values():
        if len(obj_ids) < 2:
            continue
        pick = max if reverse else min
        # (a clicked object has no first frame of its own: it counts as seen now)
        oldest = pick(obj_ids, key=lambda o: first_frame.get(o, frame_idx))
        for obj_id in obj_ids:
            if obj_id != oldest:
                session.overlap_pair_to_frame_inds[(oldest, obj_id)].append(frame_idx)
    if not streaming:
        for (_, obj_id), frames in session.overlap_pair_to_frame_inds.items():
            if obj_id in removed or obj_id in newly_removed:
                continue
            if is_hot(obj_id) and len(frames) >= s.hotstart_dup_thresh:
                newly_removed.add(obj_id)

    removed.update(newly_removed)
    suppressed -= protected  # also hidden here by an earlier pass over this frame, before protection
    return newly_removed


def recondition_targets(
    session: Sam3VideoInferenceSession,
    frame_idx: int,
    assoc: Association,
    dets: Detections,
    trk_masks: Tensor,
    trk_scores: Tensor,
    settings: ConceptTrackerSettings,
) -> dict[int, Tensor]:
    """On re-conditioning frames: object index -> (1, 1, 4h, 4w) mask its memory is re-encoded
    from (a view of its tracked mask, or the binarised detection), for confident objects that a
    confident detection confirms. trk_scores: (M, 1) tracker object-score logits."""
    s = settings
    every = s.recondition_every_nth_frame
    if every <= 0 or frame_idx % every != 0 or not assoc.confirming_det:
        return {}
    targets = {}
    for obj_id, det_idx in assoc.confirming_det.items():
        obj_idx = session.obj_id_to_idx(obj_id)
        if trk_scores[obj_idx] <= s.high_conf_thresh:
            continue
        if s.recondition_on_trk_masks:
            targets[obj_idx] = trk_masks[obj_idx : obj_idx + 1].unsqueeze(1)
        else:
            targets[obj_idx] = (dets.masks[det_idx : det_idx + 1] >= 0.5).unsqueeze(1)
    return targets


def suppress_recently_occluded(
    session: Sam3VideoInferenceSession,
    frame_idx: int,
    trk_masks: Tensor,
    newly_removed: set[int],
    reverse: bool,
    threshold: float,
) -> tuple[Tensor, dict[int, Tensor]]:
    """Which tracks to blank on this frame, and every track's new last-occluded frame.

    trk_masks: (M, 4h, 4w) logits of `session.obj_ids`. Among objects of one phrase whose masks
    overlap with IoU >= `threshold`, the one occluded more recently (later; earlier in reverse)
    is suppressed, provided the other one was occluded at some point. Returns (M,) bool and
    obj_id -> (1,) long last-occluded frame (this frame for occluded or suppressed objects).
    """
    obj_ids = session.obj_ids
    device = trk_masks.device
    binary = trk_masks > 0
    last = torch.cat(
        [
            session.obj_id_to_last_occluded.get(
                obj_id,
                torch.full(
                    (1,),
                    ALWAYS_OCCLUDED if obj_id in newly_removed else NEVER_OCCLUDED,
                    dtype=torch.long,
                    device=device,
                ),
            ).to(device)
            for obj_id in obj_ids
        ]
    )  # (M,)
    prompts = torch.tensor([session.obj_id_to_prompt_id[o] for o in obj_ids], dtype=torch.long, device=device)
    suppress = torch.zeros(len(obj_ids), dtype=torch.bool, device=device)
    later = torch.lt if reverse else torch.gt
    for prompt_id in prompts.unique(sorted=True):
        group = torch.nonzero(prompts == prompt_id, as_tuple=True)[0]
        if group.numel() <= 1:
            continue
        ious = mask_iou(binary[group], binary[group])
        pairs = torch.triu(ious >= threshold, diagonal=1)  # (G, G), i < j
        li, lj = last[group][:, None], last[group][None, :]
        suppress_i = pairs & later(li, lj) & (lj > NEVER_OCCLUDED)
        suppress_j = pairs & later(lj, li) & (li > NEVER_OCCLUDED)
        suppress[group] = suppress_i.any(dim=1) | suppress_j.any(dim=0)
    occluded = ~binary.flatten(1).any(dim=1) | suppress
    new_last = last.clone()
    new_last[occluded] = frame_idx
    return suppress, {obj_id: new_last[i : i + 1] for i, obj_id in enumerate(obj_ids)}


def blank(masks: Tensor, which: Tensor) -> None:
    """Set the masks of the objects in `which` ((M,) bool) to the no-object logit, in place."""
    masks[which] = NO_OBJECT_LOGIT
