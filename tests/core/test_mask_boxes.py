"""`processing.masks.masks_to_boxes`: exclusive pixel-edge xyxy boxes (a one-pixel mask has width 1,
as in COCO's bbox), zeros for empty masks, any leading batch shape."""

from __future__ import annotations

import numpy as np
import torch
from sam3_core.processing.masks import masks_to_boxes


def brute_force_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def test_one_pixel_mask_has_width_one_and_empty_masks_give_zeros():
    masks = torch.zeros(3, 5, 6, dtype=torch.bool)
    masks[0, 2, 3] = True
    masks[1, 1:3, 2:5] = True
    assert masks_to_boxes(masks).tolist() == [
        [3.0, 2.0, 4.0, 3.0],
        [2.0, 1.0, 5.0, 3.0],
        [0.0, 0.0, 0.0, 0.0],
    ]
    assert masks_to_boxes(masks).dtype == torch.float32


def test_matches_brute_force_on_random_masks_with_batch_dims():
    rng = np.random.RandomState(0)
    masks = rng.rand(2, 7, 19, 23) > 0.97  # sparse speckle, some masks empty-ish
    masks[0, 0] = False
    masks[1, 3, -1, -1] = True  # touches the far corner
    boxes = masks_to_boxes(torch.from_numpy(masks))
    assert boxes.shape == (2, 7, 4)
    expected = [[brute_force_box(m) for m in batch] for batch in masks]
    assert boxes.tolist() == expected


def test_no_masks():
    assert masks_to_boxes(torch.zeros(0, 4, 4, dtype=torch.bool)).shape == (0, 4)
    assert masks_to_boxes(torch.zeros(2, 0, 4, dtype=torch.bool)).tolist() == [[0.0] * 4] * 2
