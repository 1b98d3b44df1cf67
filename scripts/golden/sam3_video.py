"""Golden cases of text-prompted video tracking (`Sam3VideoModel` / `Sam3VideoProcessor`).

The scenarios (tests/fixtures/concept_scenarios.py) drive the reference here and our model in the
tests, on the tiny checkpoint with the biases of `concept_videos.write_concept_checkpoint` and the
synthetic video of `concept_videos.make_concept_video`.

Two things are set on the reference before it runs:

- Its mask NMS and hole filling call compiled kernels from the hub (`kernels-community/cv-utils`)
  and are skipped when those are absent (as here: no network). The two kernel functions are
  supplied below in plain Python (greedy NMS over the IoU matrix; 8-connected components by
  flood fill), so the goldens include NMS and hole filling.
- On the frame where hot-start removes an object, the reference pairs that frame's tracked masks
  and tracker scores with the object list as it is after the removal, so the objects after the
  removed one get their neighbour's mask and score. The removal is deferred here until the
  frame's outputs are built, so every object keeps its own (what `Sam3VideoModel` does).

Every threshold decision is checked to be far from flipping, so float rounding cannot flip it in
our implementation: scores are > 1e-4 from their thresholds, and a mask IoU within one pixel of
its threshold (|IoU - threshold| x union <= 1) only involves masks whose logits are all > 1e-4
from 0 (so both implementations binarise them alike and compute the same IoU).
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import concept_scenarios as cs
import torch
from concept_videos import write_concept_checkpoint

SIZE = 224  # the tiny config's image size
SCORE_MARGIN = 1e-4
LOGIT_MARGIN = 1e-4  # far above the implementations' differences in mask logits (~1e-6)


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

    def __init__(self):
        self.score = float("inf")
        self.logit = float("inf")  # smallest |logit| of a mask in a near-threshold IoU
        self.near_ious = 0

    def scores(self, values: torch.Tensor, *thresholds: float) -> None:
        for t in thresholds:
            if values.numel():
                self.score = min(self.score, (values.float() - t).abs().min().item())

    def ious(self, a: torch.Tensor, b: torch.Tensor, *thresholds: float, skip_diagonal: bool = False) -> None:
        """IoUs of every pair of (N, H, W) and (M, H, W) mask logits against the thresholds."""
        if not a.shape[0] or not b.shape[0]:
            return
        fa, fb = (a > 0).flatten(1).float(), (b > 0).flatten(1).float()
        inter = fa @ fb.T
        union = (fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter).clamp(min=1)
        iou = inter / union
        pairs = torch.ones_like(iou, dtype=torch.bool)
        if skip_diagonal:
            pairs &= ~torch.eye(*iou.shape, dtype=torch.bool)
        for t in thresholds:
            for i, j in torch.nonzero(pairs & ((iou - t).abs() * union <= 1.0)).tolist():
                self.near_ious += 1
                closest = min(a[i].abs().min().item(), b[j].abs().min().item())
                self.logit = min(self.logit, closest)


def _patch_reference(margins: _Margins) -> None:
    import transformers.models.sam3_video.modeling_sam3_video as M

    M.cv_utils_kernel = SimpleNamespace(generic_nms=_generic_nms, cc_2d=_cc_2d)
    cls = M.Sam3VideoModel
    if getattr(cls, "_golden_patched", False):
        return
    cls._golden_patched = True
    run_detection, associate = cls.run_detection, cls._associate_det_trk
    execute, det_track = cls.run_tracker_update_execution_phase, cls._det_track_one_frame
    suppress = cls._suppress_overlapping_based_on_recent_occlusion

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
            margins.scores(probs, self.score_threshold_detection, self.new_det_thresh, self.high_conf_thresh)
            valid = probs[0] > self.score_threshold_detection
            logits = out.pred_masks[0][valid]
            margins.ious(logits, logits, self.det_nms_thresh, skip_diagonal=True)
        return run_detection(self, inference_session, vision_embeds)

    def checked_associate(
        self, det_masks, det_scores, trk_masks, trk_obj_ids, det_prompt_ids, trk_prompt_ids
    ):
        if det_masks.size(0) and trk_masks.size(0):
            thresholds = (self.assoc_iou_thresh, self.trk_assoc_iou_thresh, self.high_iou_thresh)
            for prompt_id in det_prompt_ids.unique().tolist():  # IoUs across phrases are not used
                dets, trks = det_prompt_ids == prompt_id, trk_prompt_ids == prompt_id
                margins.ious(det_masks[dets], trk_masks[trks], *thresholds)
        return associate(self, det_masks, det_scores, trk_masks, trk_obj_ids, det_prompt_ids, trk_prompt_ids)

    def checked_suppress(self, inference_session, frame_idx, tracker_low_res_masks_global, *args, **kwargs):
        prompts = torch.tensor([inference_session.obj_id_to_prompt_id[o] for o in inference_session.obj_ids])
        threshold = self.suppress_overlapping_based_on_recent_occlusion_threshold
        for prompt_id in prompts.unique().tolist():
            group = tracker_low_res_masks_global[prompts == prompt_id]
            margins.ious(group, group, threshold, skip_diagonal=True)
        return suppress(self, inference_session, frame_idx, tracker_low_res_masks_global, *args, **kwargs)

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
    cls._det_track_one_frame = deferred_det_track


def reference_model(checkpoint_dir: Path):
    from safetensors.torch import load_file
    from transformers import Sam3VideoConfig, Sam3VideoModel

    data = json.loads((checkpoint_dir / "config.json").read_text())
    model = Sam3VideoModel(Sam3VideoConfig.from_dict({**data, **cs.CONFIG_OVERRIDES})).eval()
    model.load_state_dict(load_file(str(checkpoint_dir / "model.safetensors")), strict=True)
    return model


def reference_processor(checkpoint_dir: Path):
    from transformers import CLIPTokenizer, Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3VideoProcessor

    size = {"height": SIZE, "width": SIZE}
    return Sam3VideoProcessor(
        image_processor=Sam3ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
        tokenizer=CLIPTokenizer.from_pretrained(str(checkpoint_dir)),
    )


def generate(ctx) -> None:
    folder = write_concept_checkpoint(ctx.checkpoint_dir.parent / "concept")
    margins = _Margins()
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
        f"  margins: score {margins.score:.2e}; {margins.near_ious} IoUs within a pixel of their "
        f"threshold, their masks' smallest |logit| {margins.logit:.2e}"
    )
    assert margins.score > SCORE_MARGIN and margins.logit > LOGIT_MARGIN, (
        "a decision is too close to flipping"
    )
