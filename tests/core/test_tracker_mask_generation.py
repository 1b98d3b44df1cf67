"""Automatic mask generation on the tiny checkpoint: records agree with direct model calls, the
filters and NMS do what they say, small-region cleanup leaves no small regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sam3_core import Sam3TrackerProcessor
from sam3_core.mask_generation import (
    Sam3TrackerMaskGenerator,
    box_iou,
    box_nms,
    build_point_grid,
    masks_to_boxes,
)
from sam3_core.processing.mask_cleanup import connected_components
from test_images import make_image

IMAGE = make_image(150, 200, seed=1)
# The generator decodes clicks in batches; a direct call decodes one: another GEMM shape, which
# another CPU may serve with another kernel, so logits agree to float32 rounding, not bit for bit.
# A thresholded pixel may flip only where its logit is this close to 0 (1e-4: the mask logits here
# are ~0.01-1 in size, their rounding differences ~1e-7).
MASK_LOGIT_TOL = 1e-4


def assert_same_decisions(mask: np.ndarray, logits: torch.Tensor) -> None:
    """`mask` is `logits > 0` wherever the logit is decided (|logit| > MASK_LOGIT_TOL)."""
    decided = logits.abs() > MASK_LOGIT_TOL
    assert torch.equal(torch.from_numpy(mask)[decided], (logits > 0)[decided])


@pytest.fixture(scope="module")
def everything(tracker_model):
    """No filtering at all: every mask of every click, 4x4 grid -> 48 records."""
    gen = Sam3TrackerMaskGenerator(
        tracker_model,
        points_per_side=4,
        points_per_batch=5,
        pred_iou_thresh=0.0,
        stability_score_thresh=-1.0,
        box_nms_thresh=1.0,
    )
    return gen.generate(IMAGE)


def test_records_match_direct_model_calls(tracker_model, everything):
    assert len(everything) == 4 * 4 * 3
    scores = [r["predicted_iou"] for r in everything]
    assert scores == sorted(scores, reverse=True)
    processor = Sam3TrackerProcessor(size=224)
    for rec in everything[::7]:
        ((x, y),) = rec["point_coords"]
        inputs = processor(images=IMAGE, input_points=[[[[x, y]]]])
        with torch.no_grad():
            out = tracker_model(**inputs)
        k = int(torch.argmin((out.iou_scores[0, 0] - rec["predicted_iou"]).abs()))
        assert abs(out.iou_scores[0, 0, k].item() - rec["predicted_iou"]) < 1e-5
        full = F.interpolate(
            out.pred_masks[0, :, k : k + 1], size=(150, 200), mode="bilinear", align_corners=False
        )
        assert_same_decisions(rec["segmentation"], full[0, 0])


def test_record_fields_are_consistent(everything):
    for rec in everything:
        seg = rec["segmentation"]
        assert seg.shape == (150, 200) and seg.dtype == bool
        assert rec["area"] == int(seg.sum())
        assert rec["crop_box"] == [0, 0, 200, 150]
        if rec["area"]:
            ys, xs = np.nonzero(seg)
            assert rec["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_thresholds_and_nms(tracker_model, everything):
    gen = Sam3TrackerMaskGenerator(
        tracker_model,
        points_per_side=4,
        points_per_batch=16,
        pred_iou_thresh=0.45,
        stability_score_thresh=0.05,
        box_nms_thresh=0.9,
    )
    kept = gen.generate(IMAGE)
    # `everything` decoded 5 clicks a batch, `kept` 16: another GEMM shape, so a score may differ in
    # its last bits (and a stability score by a pixel's worth): the bound counts the records that pass
    # with that much slack
    passing = [
        r for r in everything if r["predicted_iou"] > 0.45 - 1e-5 and r["stability_score"] > 0.05 - 1e-3
    ]
    assert 0 < len(kept) <= len(passing) < len(everything)
    assert all(r["predicted_iou"] > 0.45 and r["stability_score"] > 0.05 for r in kept)
    boxes = torch.tensor([[b[0], b[1], b[0] + b[2] - 1, b[1] + b[3] - 1] for b in (r["bbox"] for r in kept)])
    iou = box_iou(boxes, boxes)
    assert (iou.fill_diagonal_(0) <= 0.9).all()
    # pipeline-style output
    out = gen(IMAGE)
    assert len(out["masks"]) == len(kept) and torch.allclose(
        out["scores"], torch.tensor([r["predicted_iou"] for r in kept])
    )


def test_min_region_cleanup_leaves_no_small_regions(tracker_model):
    gen = Sam3TrackerMaskGenerator(
        tracker_model,
        points_per_side=2,
        pred_iou_thresh=0.0,
        stability_score_thresh=-1.0,
        box_nms_thresh=1.0,
        min_mask_region_area=30,
    )
    records = gen.generate(IMAGE)
    assert records
    masks = torch.from_numpy(np.stack([r["segmentation"] for r in records]))
    _, fg = connected_components(masks)
    _, bg = connected_components(~masks)
    assert not ((fg > 0) & (fg < 30)).any() and not ((bg > 0) & (bg < 30)).any()


def test_box_nms_matches_brute_force():
    rng = np.random.RandomState(0)
    xy = rng.rand(60, 2) * 50
    boxes = torch.tensor(np.concatenate([xy, xy + 5 + rng.rand(60, 2) * 30], 1), dtype=torch.float32)
    scores = torch.tensor(rng.rand(60), dtype=torch.float32)
    keep = box_nms(boxes, scores, 0.4).tolist()
    expected = []
    for i in np.argsort(-scores.numpy(), kind="stable"):
        if all(box_iou(boxes[i : i + 1], boxes[j : j + 1]).item() <= 0.4 for j in expected):
            expected.append(int(i))
    assert keep == expected


def test_helpers():
    grid = build_point_grid(2)
    assert grid.tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    m = torch.zeros(2, 5, 6, dtype=torch.bool)
    m[0, 1:3, 2:5] = True
    # the project's one box convention: pixel edges, x2 / y2 exclusive (see processing/masks.py)
    assert masks_to_boxes(m).tolist() == [[2.0, 1.0, 5.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="points_per_batch"):
        Sam3TrackerMaskGenerator(None, points_per_batch=0)


def test_explicit_point_grid(tracker_model):
    """`point_grid` replaces the points_per_side grid: one record per click and mask, at its pixel."""
    clicks = torch.tensor([[0.1, 0.9], [0.5, 0.5]])
    gen = Sam3TrackerMaskGenerator(
        tracker_model, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0, point_grid=clicks
    )
    records = gen.generate(IMAGE)
    assert len(records) == 2 * 3
    assert sorted({tuple(r["point_coords"][0]) for r in records}) == [(20.0, 135.0), (100.0, 75.0)]
    for bad in (
        torch.zeros(3),
        torch.zeros(0, 2),
        torch.tensor([[0.5, 1.5]]),
        torch.tensor([[float("nan"), 0.5]]),
    ):
        with pytest.raises(ValueError, match="point_grid"):
            Sam3TrackerMaskGenerator(tracker_model, point_grid=bad)


def test_stability_scores_without_the_filter(tracker_model, everything):
    """With the stability filter off, the scores are computed after NMS only: the same values."""
    filtered = Sam3TrackerMaskGenerator(
        tracker_model,
        points_per_side=4,
        points_per_batch=5,
        pred_iou_thresh=0.0,
        stability_score_thresh=1e-9,
        box_nms_thresh=1.0,
    ).generate(IMAGE)
    lazy = {(tuple(r["point_coords"][0]), r["predicted_iou"]): r["stability_score"] for r in everything}
    assert filtered and len(filtered) == sum(v > 1e-9 for v in lazy.values())
    for r in filtered:
        assert lazy[(tuple(r["point_coords"][0]), r["predicted_iou"])] == r["stability_score"]
