"""Golden cases of text-prompted video tracking (`Sam3VideoModel` / `Sam3VideoProcessor`).

The scenarios (tests/fixtures/concept_scenarios.py) drive the reference here and our model in the
tests, on the tiny checkpoint with the biases of `concept_videos.write_concept_checkpoint` and the
synthetic video of `concept_videos.make_concept_video`.

Two things are set on the reference before it runs:

- Its mask NMS and hole filling call compiled kernels from the hub (`kernels-community/cv-utils`)
  and are skipped when those are absent (as here: no network). The two kernel functions are
  supplied below in plain Python (greedy NMS over the IoU matrix with the kernel's decisions, as
  in torch_generic_nms: best score first in the scores' own dtype, ties in query order, suppressed
  where the float32 IoU > the threshold compared in double; 8-connected components by flood
  fill), so the goldens include NMS and hole filling.
- On the frame where hot-start removes an object, the reference pairs that frame's tracked masks
  and tracker scores with the object list as it is after the removal, so the objects after the
  removed one get their neighbour's mask and score. The removal is deferred here until the
  frame's outputs are built, so every object keeps its own (what `Sam3VideoModel` does).

Every decision is checked to be far from flipping, and the script fails rather than write a
fragile golden: detection scores are >= SCORE_MARGIN from every threshold (they carry no memory,
so the implementations differ there by ~1e-6); each mask IoU compared with a threshold keeps its
side whatever the pixels with |logit| < LOGIT_MARGIN do (tracked logits differ by up to ~1e-4
after a few frames of memory; with no such pixel both count the same pixels, so an IoU exactly
equal to a threshold is decided alike, by the comparison under test); and no hole-filling
decision could flip (the scenarios leave hole filling off: the tiny random tracker's masks are
speckled with pixels within 1e-7 of 0, so component areas there can never be made robust).

The float64 cases (`cs.F64_SCENARIOS`, `<name>_f64`) run the reference in float64, where the
implementations differ by ~1e-12: their thresholds may sit among many close values (a crowded frame
where many detections cross them at once), and the margins asserted are 1e-7. `GOLDEN_F64_ONLY=1`
regenerates only them, `GOLDEN_CASES=a,b` only those of them.
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import concept_scenarios as cs
import torch
from concept_videos import write_concept_checkpoint

from golden._float64 import interpolate_in_float64

SIZE = 224  # the tiny config's image size
F64_ONLY = bool(os.environ.get("GOLDEN_F64_ONLY"))  # regenerate only the float64 cases
ONLY = set(filter(None, os.environ.get("GOLDEN_CASES", "").split(",")))  # ... or only these of them
# ~100x the implementations' differences, which grow through the tracker's memory to ~1e-4 in
# mask logits and scores over the video's frames
SCORE_MARGIN = 2e-4
LOGIT_MARGIN = 1e-3
# float64: the implementations differ by ~1e-12 there, so 1e-7 is ample
SCORE_MARGIN_F64 = 1e-7
LOGIT_MARGIN_F64 = 1e-7


def _generic_nms(ious: torch.Tensor, scores: torch.Tensor, iou_threshold: float, use_iou_matrix: bool = True):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept, suppressed = [], set()
    for i in order:
        if i in suppressed:
            continue
        kept.append(i)
        suppressed.update(j for j in range(len(scores)) if float(ious[i, j]) > iou_threshold)
    return torch.tensor(kept, dtype=torch.int64)


def _cc_2d(mask: torch.Tensor, get_counts: bool = True):
    """8-connected components of (N, 1, H, W) uint8 masks: labels and per-pixel component sizes."""
    n, _, h, w = mask.shape
    labels = torch.zeros(mask.shape, dtype=torch.int32)
    counts = torch.zeros(mask.shape, dtype=torch.int32)
    on = mask.bool().tolist()
    for b in range(n):
        grid, seen, label = on[b][0], [[False] * w for _ in range(h)], 0
        for y0 in range(h):
            for x0 in range(w):
                if not grid[y0][x0] or seen[y0][x0]:
                    continue
                label += 1
                seen[y0][x0] = True
                queue, members = deque([(y0, x0)]), []
                while queue:
                    y, x = queue.popleft()
                    members.append((y, x))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            yy, xx = y + dy, x + dx
                            if 0 <= yy < h and 0 <= xx < w and grid[yy][xx] and not seen[yy][xx]:
                                seen[yy][xx] = True
                                queue.append((yy, xx))
                for y, x in members:
                    labels[b, 0, y, x] = label
                    counts[b, 0, y, x] = len(members)
    return labels, counts


class _Margins:
    """How far the decisions are from flipping: scores from their thresholds, and for mask IoUs
    within one pixel of a threshold, the mask logits from 0 (if none is near 0, both
    implementations binarise the masks alike and compute the same IoU)."""

    def __init__(self, logit_margin: float = LOGIT_MARGIN):
        self.logit_margin = logit_margin  # pixels with |logit| below it may go either way
        self.score = float("inf")
        self.score_at = None  # the threshold nearest to a score
        self.iou = float("inf")  # smallest distance of a threshold from an IoU's range of values
        self.exact_ties = 0  # IoUs exactly equal to a threshold, with no pixel near 0
        self.fragile_fills = 0  # pixels whose hole filling / sprinkle removal could flip
        self.prompt = float("inf")  # smallest |logit - 0.5| of a detection binarised as a prompt

    def scores(self, values: torch.Tensor, *thresholds: float) -> None:
        for t in thresholds:
            if values.numel():
                gap = (values.double() - t).abs().min().item()
                if gap < self.score:
                    self.score, self.score_at = gap, t

    def ious(self, a: torch.Tensor, b: torch.Tensor, *thresholds: float, skip_diagonal: bool = False) -> None:
        """IoUs of every pair of (N, H, W) and (M, H, W) mask logits against the thresholds, with
        the pixels within LOGIT_MARGIN of 0 free to go either way: the IoU's whole range of
        values must lie on one side of each threshold."""
        if not a.shape[0] or not b.shape[0]:
            return
        a, b, m = a.flatten(1).double(), b.flatten(1).double(), self.logit_margin
        a_lo, a_hi = (a >= m).double(), (a > -m).double()
        b_lo, b_hi = (b >= m).double(), (b > -m).double()

        def union(x, y):
            return (x.sum(1)[:, None] + y.sum(1)[None, :] - x @ y.T).clamp(min=1)

        iou_lo = (a_lo @ b_lo.T) / union(a_hi, b_hi)
        iou_hi = (a_hi @ b_hi.T) / union(a_lo, b_lo)
        pairs = torch.ones_like(iou_lo, dtype=torch.bool)
        if skip_diagonal:
            pairs &= ~torch.eye(*iou_lo.shape, dtype=torch.bool)
        # no pixel near 0: both implementations count the same pixels and compute the same float32
        # IoU, so even an IoU equal to a threshold is decided alike (by the comparison under test)
        exact = iou_lo == iou_hi
        for t in thresholds:
            gap = torch.maximum(iou_lo - t, t - iou_hi)  # > 0: the decision cannot flip
            self.exact_ties += int((exact & (gap == 0) & pairs).sum())
            gap = gap[pairs & ~exact]
            if gap.numel():
                self.iou = min(self.iou, gap.min().item())

    def fills(self, mask: torch.Tensor, max_area: int) -> None:
        """Hole filling and sprinkle removal of (N, 1, H, W) logits: pixels within LOGIT_MARGIN
        of 0 may go either way; every other pixel's decision must hold for all their choices.
        Component areas grow with the set they are drawn from and the sprinkle limit with the
        foreground, so the two extreme choices bound every decision."""
        if max_area <= 0 or not mask.numel():
            return
        unsure = mask.abs() < self.logit_margin
        sure_bg = (mask <= 0) & ~unsure
        small_bg = _cc_2d(sure_bg | unsure)[1] <= max_area
        large_bg = _cc_2d(sure_bg)[1] > max_area
        self.fragile_fills += int((sure_bg & ~small_bg & ~large_bg).sum())
        sure_fg = ((mask > 0) & ~unsure) | (sure_bg & small_bg)
        fg_lo, fg_hi = sure_fg, sure_fg | unsure
        limit_lo = (fg_lo.sum(dim=(2, 3), keepdim=True) // 2).clamp(max=max_area)
        limit_hi = (fg_hi.sum(dim=(2, 3), keepdim=True) // 2).clamp(max=max_area)
        removed = _cc_2d(fg_hi)[1] <= limit_lo
        kept = _cc_2d(fg_lo)[1] > limit_hi
        self.fragile_fills += int((sure_fg & ~removed & ~kept).sum())

    def prompts(self, logits: torch.Tensor) -> None:
        if logits.numel():
            self.prompt = min(self.prompt, (logits.double() - 0.5).abs().min().item())


class _Current:
    """The margins the patched reference reports to (one per golden run: fp32 or float64)."""

    margins: _Margins


def _patch_reference(margins: _Margins) -> None:
    import transformers.models.sam3_video.modeling_sam3_video as M

    _Current.margins = margins
    current = _Current  # the patched methods read current.margins, so a later run may swap it

    M.cv_utils_kernel = SimpleNamespace(generic_nms=_generic_nms, cc_2d=_cc_2d)
    if not getattr(M, "_golden_fill_patched", False):
        M._golden_fill_patched = True
        fill = M.fill_holes_in_mask_scores

        def checked_fill(mask, max_area, *args, **kwargs):
            current.margins.fills(mask, max_area)
            return fill(mask, max_area, *args, **kwargs)

        M.fill_holes_in_mask_scores = checked_fill
    cls = M.Sam3VideoModel
    if getattr(cls, "_golden_patched", False):
        return
    cls._golden_patched = True
    run_detection, associate = cls.run_detection, cls._associate_det_trk
    execute, det_track = cls.run_tracker_update_execution_phase, cls._det_track_one_frame
    suppress = cls._suppress_overlapping_based_on_recent_occlusion
    add_new, recondition = cls._tracker_add_new_objects, cls._prepare_recondition_masks

    def checked_detection(self, inference_session, vision_embeds):
        for prompt_id in inference_session.prompts:
            mask = inference_session.prompt_attention_masks[prompt_id]
            if prompt_id not in inference_session.prompt_embeddings:
                inference_session.prompt_embeddings[prompt_id] = self.detector_model.get_text_features(
                    input_ids=inference_session.prompt_input_ids[prompt_id],
                    attention_mask=mask,
                    return_dict=True,
                )
            text = inference_session.prompt_embeddings[prompt_id]
            out = self.detector_model(
                vision_embeds=vision_embeds,
                text_embeds=text,
                attention_mask=mask,
            )
            probs = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()
            current.margins.scores(
                probs, self.score_threshold_detection, self.new_det_thresh, self.high_conf_thresh
            )
            valid = probs[0] > self.score_threshold_detection
            logits = out.pred_masks[0][valid]
            current.margins.ious(logits, logits, self.det_nms_thresh, skip_diagonal=True)
        return run_detection(self, inference_session, vision_embeds)

    def checked_associate(
        self, det_masks, det_scores, trk_masks, trk_obj_ids, det_prompt_ids, trk_prompt_ids
    ):
        if det_masks.size(0) and trk_masks.size(0):
            thresholds = (self.assoc_iou_thresh, self.trk_assoc_iou_thresh, self.high_iou_thresh)
            for prompt_id in det_prompt_ids.unique().tolist():  # IoUs across phrases are not used
                dets, trks = det_prompt_ids == prompt_id, trk_prompt_ids == prompt_id
                current.margins.ious(det_masks[dets], trk_masks[trks], *thresholds)
        return associate(self, det_masks, det_scores, trk_masks, trk_obj_ids, det_prompt_ids, trk_prompt_ids)

    def checked_suppress(self, inference_session, frame_idx, tracker_low_res_masks_global, *args, **kwargs):
        prompts = torch.tensor([inference_session.obj_id_to_prompt_id[o] for o in inference_session.obj_ids])
        threshold = self.suppress_overlapping_based_on_recent_occlusion_threshold
        for prompt_id in prompts.unique().tolist():
            group = tracker_low_res_masks_global[prompts == prompt_id]
            current.margins.ious(group, group, threshold, skip_diagonal=True)
        return suppress(self, inference_session, frame_idx, tracker_low_res_masks_global, *args, **kwargs)

    def checked_add(self, inference_session, frame_idx, new_obj_ids, new_obj_masks, reverse=False):
        current.margins.prompts(new_obj_masks)
        return add_new(self, inference_session, frame_idx, new_obj_ids, new_obj_masks, reverse)

    def checked_recondition(self, inference_session, frame_idx, det_out, trk_masks, **kwargs):
        # object-score logits: > 0 is "present" to the tracker, > high_conf_thresh re-conditions
        current.margins.scores(kwargs["tracker_obj_scores_global"], 0.0, self.high_conf_thresh)
        out = recondition(self, inference_session, frame_idx, det_out, trk_masks, **kwargs)
        for obj_idx in out[0]:
            det_idx = kwargs["trk_id_to_max_iou_high_conf_det"][inference_session.obj_idx_to_id(obj_idx)]
            current.margins.prompts(det_out["mask"][det_idx])
        return out

    def deferred_execute(self, inference_session, frame_idx, det_out, tracker_update_plan, reverse=False):
        plan = dict(tracker_update_plan, obj_ids_newly_removed=set())
        execute(self, inference_session, frame_idx, det_out, plan, reverse)
        self._golden_deferred = set(tracker_update_plan["obj_ids_newly_removed"])

    def deferred_det_track(self, inference_session, frame_idx, reverse, streaming=False):
        self._golden_deferred = set()
        masks, scores, metadata, trk_scores = det_track(
            self, inference_session, frame_idx, reverse, streaming
        )
        for obj_id in self._golden_deferred:
            inference_session.remove_object(obj_id, strict=False)
            masks.pop(obj_id, None)
            metadata["obj_id_to_tracker_score_frame_wise"][frame_idx][obj_id] = -1e4
        return masks, scores, metadata, trk_scores

    cls.run_detection = checked_detection
    cls._associate_det_trk = checked_associate
    cls._suppress_overlapping_based_on_recent_occlusion = checked_suppress
    cls.run_tracker_update_execution_phase = deferred_execute
    cls._tracker_add_new_objects = checked_add
    cls._prepare_recondition_masks = checked_recondition
    cls._det_track_one_frame = deferred_det_track


def reference_model(checkpoint_dir: Path, overrides: dict = cs.CONFIG_OVERRIDES):
    from safetensors.torch import load_file
    from transformers import Sam3VideoConfig, Sam3VideoModel

    data = json.loads((checkpoint_dir / "config.json").read_text())
    model = Sam3VideoModel(Sam3VideoConfig.from_dict({**data, **overrides})).eval()
    model.load_state_dict(load_file(str(checkpoint_dir / "model.safetensors")), strict=True)
    return model


def reference_processor(checkpoint_dir: Path, image_section: dict | None = None):
    from transformers import CLIPTokenizer, Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3VideoProcessor

    size = {"height": SIZE, "width": SIZE}
    return Sam3VideoProcessor(
        image_processor=Sam3ImageProcessor(size=size, **(image_section or {})),
        video_processor=Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
        tokenizer=CLIPTokenizer.from_pretrained(str(checkpoint_dir)),
    )


def generate(ctx) -> None:
    folder = write_concept_checkpoint(ctx.checkpoint_dir.parent / "concept")
    margins = _Margins()
    if F64_ONLY:
        return _generate_float64(ctx, folder, reference_processor(folder))
    _patch_reference(margins)
    model, processor = reference_model(folder), reference_processor(folder)
    for name, scenario in cs.SCENARIOS.items():
        tensors, meta = cs.record(scenario(model, processor, cs.video()))
        meta["config_overrides"] = cs.CONFIG_OVERRIDES
        ctx.save(name, tensors, meta)
        steps = meta["steps"]
        print(
            f"  {name}: kept per frame {[s['kept_ids'] for s in steps]}, removed {steps[-1]['removed_obj_ids']}"
        )
    print(
        f"  margins: score {margins.score:.2e} (from {margins.score_at}); IoU {margins.iou:.2e}; {margins.fragile_fills} "
        f"hole-filling pixels could flip; prompt masks' smallest |logit - 0.5| {margins.prompt:.2e}"
    )
    assert margins.score > SCORE_MARGIN and margins.iou > 0, "a decision is too close to flipping"
    assert margins.fragile_fills == 0, "a hole-filling decision is too close to flipping"
    _generate_float64(ctx, folder, processor)


def _generate_float64(ctx, folder: Path, processor) -> None:
    """The float64 cases (`cs.F64_SCENARIOS`): the reference in float64, margins at 1e-7."""
    for name, (scenario, overrides, image_section) in cs.F64_SCENARIOS.items():
        if ONLY and name not in ONLY:
            continue
        margins = _Margins(LOGIT_MARGIN_F64)
        _patch_reference(margins)
        model = reference_model(folder, overrides).double()
        interpolate_in_float64(type(model.tracker_model))  # its tracker as in the trackers' f64 goldens
        proc = processor if image_section is None else reference_processor(folder, image_section)
        outputs = scenario(model, proc, cs.video(cs.F64_FRAMES), dtype=torch.float64)
        tensors, meta = cs.record(outputs, torch.float64)
        meta["config_overrides"] = overrides
        ctx.save(name, tensors, meta)
        steps = meta["steps"]
        print(
            f"  {name}: kept per frame {[s['kept_ids'] for s in steps]}, objects {[s['object_ids'] for s in steps]}"
        )
        print(
            f"    margins: score {margins.score:.2e} (from {margins.score_at}); IoU {margins.iou:.2e}; "
            f"{margins.exact_ties} IoUs exactly at a threshold"
        )
        assert margins.score > SCORE_MARGIN_F64 and margins.iou > 0, (
            f"{name}: a decision is too close to flipping"
        )
