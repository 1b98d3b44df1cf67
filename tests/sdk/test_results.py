"""SDK result types and exports: COCO RLE (checked against pycocotools), PNG, overlays, boxes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sam3_core.processing.masks import masks_to_boxes as core_masks_to_boxes
from sam3_sdk.images import as_rgb_array
from sam3_sdk.results import Instances, masks_to_boxes, palette
from sam3_sdk.rle import mask_to_rle, rle_area, rle_to_mask


def random_masks(n=3, h=37, w=53, seed=0):
    rng = np.random.RandomState(seed)
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        y, x = rng.randint(0, h - 10), rng.randint(0, w - 10)
        masks[i, y : y + rng.randint(3, 10), x : x + rng.randint(3, 10)] = True
    masks[-1] |= rng.rand(h, w) > 0.9  # speckle: many runs
    return masks


@pytest.mark.parametrize("seed", range(4))
def test_rle_matches_pycocotools(seed):
    coco = pytest.importorskip("pycocotools.mask")
    for mask in random_masks(seed=seed):
        ours = mask_to_rle(mask)
        theirs = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ours["counts"] == theirs["counts"].decode()
        assert ours["size"] == list(theirs["size"])
        assert np.array_equal(rle_to_mask(ours), mask)
        assert rle_area(ours) == mask.sum()


@pytest.mark.parametrize("fill", [False, True])
def test_rle_edge_cases(fill):
    mask = np.full((4, 5), fill)
    rle = mask_to_rle(mask)
    assert np.array_equal(rle_to_mask(rle), mask)
    with pytest.raises(ValueError, match="2D"):
        mask_to_rle(np.zeros((2, 2, 2), bool))


def test_boxes_from_masks():
    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:9] = True
    boxes = masks_to_boxes(masks)
    assert boxes.tolist() == [[3, 2, 9, 5], [0, 0, 0, 0]]


def test_boxes_are_the_core_boxes_in_numpy():
    masks = random_masks(n=5)
    masks[2] = False
    boxes = masks_to_boxes(masks[:, ::-1])  # a non-contiguous view is fine
    assert boxes.dtype == np.float32 and boxes[2].tolist() == [0, 0, 0, 0]
    core = core_masks_to_boxes(torch.from_numpy(np.ascontiguousarray(masks[:, ::-1])))
    assert np.array_equal(boxes, core.numpy())
    assert masks_to_boxes(np.zeros((0, 4, 4), bool)).shape == (0, 4)


def test_instances_exports(tmp_path):
    masks = random_masks()
    inst = Instances(masks=masks, scores=[0.9, 0.5, 0.3], boxes=masks_to_boxes(masks), prompt="thing")
    records = inst.to_coco_rle()
    assert [r["id"] for r in records] == [1, 2, 3]
    assert records[0]["area"] == masks[0].sum()
    x1, y1, x2, y2 = masks_to_boxes(masks)[0]
    assert records[0]["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert np.array_equal(rle_to_mask(records[2]["segmentation"]), masks[2])
    data = json.loads(inst.to_json())
    assert data["image_size"] == [37, 53] and data["prompt"] == "thing"

    one = np.array(Image.open(io.BytesIO(inst.to_png_bytes(1))))
    assert one.dtype == np.uint8 and set(np.unique(one)) <= {0, 255}
    assert np.array_equal(one == 255, masks[1])
    index = np.array(Image.open(inst.save_png(tmp_path / "index.png")))
    assert index.max() <= 3 and np.array_equal(index == 3, masks[2])
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left nothing behind

    image = np.full((37, 53, 3), 100, np.uint8)
    over = np.array(inst.overlay(image))
    assert over.shape == (37, 53, 3)
    assert (over[masks[0] & ~masks[2] & ~masks[1]] != 100).any()
    assert (over[~masks.any(0)] == 100).all()
    with pytest.raises(IndexError, match="instance 7"):
        inst.to_png_bytes(7)


def test_mismatched_results_are_refused():
    with pytest.raises(ValueError, match="disagree"):
        Instances(masks=np.zeros((2, 4, 4), bool), scores=[0.1], boxes=np.zeros((2, 4)))


def test_image_inputs(tmp_path):
    assert as_rgb_array(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert (as_rgb_array(rgba) == 255).all()  # fully transparent → white
    assert as_rgb_array(np.ones((3, 3, 3), np.float32))[0, 0, 0] == 255
    with pytest.raises(ValueError, match="shape"):
        as_rgb_array(np.zeros((3, 3, 5), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        as_rgb_array(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="does not exist"):
        as_rgb_array(tmp_path / "none.png")
    assert palette(0) != palette(1)
