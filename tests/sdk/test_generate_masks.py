"""Sam3.generate_masks: the core generator's records, reusing the cached backbone pass."""

from __future__ import annotations

import numpy as np
import pytest
from sam3_core.mask_generation import Sam3TrackerMaskGenerator
from test_images import make_image

IMAGE = make_image(96, 128, seed=5)
LOOSE = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.7)


def test_same_records_as_the_core_generator(sam):
    found = sam.generate_masks(IMAGE, **LOOSE)
    records = Sam3TrackerMaskGenerator(sam.image_model, sam.image_processor, **LOOSE).generate(
        np.asarray(IMAGE)
    )
    assert len(found) == len(records) > 0
    assert np.allclose(found.scores, [r["predicted_iou"] for r in records], atol=1e-6)
    for mask, record in zip(found.masks, records):
        assert np.array_equal(mask, record["segmentation"])
    assert np.all(np.diff(found.scores) <= 0)
    coco = found.to_coco_rle()
    assert coco[0]["stability_score"] == pytest.approx(records[0]["stability_score"])
    assert coco[0]["point_coords"] == records[0]["point_coords"]


def test_filters_and_backbone_once(sam):
    image = make_image(80, 80, seed=6)
    calls = []
    hook = sam.image_model.vision_encoder.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        loose = sam.generate_masks(image, **LOOSE)
        strict = sam.generate_masks(image, **{**LOOSE, "pred_iou_thresh": float(np.median(loose.scores))})
    finally:
        hook.remove()
    assert len(calls) == 1
    assert len(strict) < len(loose)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points_per_side=0), "points_per_side must be a positive integer"),
        (dict(points_per_batch=-1), "points_per_batch"),
        (dict(pred_iou_thresh=2.0), "pred_iou_thresh"),
        (dict(min_mask_region_area=-5), "min_mask_region_area"),
    ],
)
def test_bad_settings(sam, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sam.generate_masks(IMAGE, **kwargs)
