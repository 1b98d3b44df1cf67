"""Sam3TrackerProcessor: prompt parsing, padding, scaling, loading settings, clear errors; and the
vectorised connected components behind hole filling / sprinkle removal."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest
import torch
from sam3_core import Sam3TrackerProcessor
from sam3_core.processing.batch import BatchEncoding
from sam3_core.processing.mask_cleanup import connected_components, fill_holes_and_remove_sprinkles


@pytest.fixture
def processor():
    return Sam3TrackerProcessor(size=100)


SIZES = [(50, 200), (100, 25)]  # (height, width)


def test_ragged_points_are_padded_and_scaled(processor):
    out = processor(
        original_sizes=SIZES,
        input_points=[[[[10, 20]], [[30, 40], [50, 10]]], [[[5, 5]]]],
        input_labels=[[[1], [1, 0]], [[0]]],
    )
    pts, labels = out["input_points"], out["input_labels"]
    assert pts.shape == (2, 2, 2, 2) and labels.shape == (2, 2, 2) and labels.dtype == torch.int64
    # x scales by 100 / width, y by 100 / height
    assert torch.allclose(pts[0, 0, 0], torch.tensor([5.0, 40.0]))
    assert torch.allclose(pts[0, 1, 1], torch.tensor([25.0, 20.0]))
    assert torch.allclose(pts[1, 0, 0], torch.tensor([20.0, 5.0]))
    # padding keeps the pad value, in coordinates and labels
    assert torch.equal(pts[0, 0, 1], torch.tensor([-10.0, -10.0]))
    assert torch.equal(pts[1, 1], torch.full((2, 2), -10.0))
    assert labels.tolist() == [[[1, -10], [1, 0]], [[0, -10], [-10, -10]]]
    assert torch.equal(out["original_sizes"], torch.tensor(SIZES))


def test_labels_default_to_positive_but_not_on_padding(processor):
    out = processor(original_sizes=SIZES[:1], input_points=[[[[10, 20]], [[1, 2], [3, 4]]]])
    assert out["input_labels"].tolist() == [[[1, -10], [1, 1]]]


def test_boxes_scaled_and_tensor_inputs_equal_lists(processor):
    boxes = [[[10, 5, 100, 40]], [[0, 0, 25, 100]]]
    a = processor(original_sizes=SIZES, input_boxes=boxes)
    b = processor(original_sizes=torch.tensor(SIZES), input_boxes=np.array(boxes, dtype=np.float32))
    assert torch.equal(a["input_boxes"], b["input_boxes"])
    assert torch.allclose(a["input_boxes"][0, 0], torch.tensor([5.0, 10.0, 50.0, 80.0]))
    assert torch.allclose(a["input_boxes"][1, 0], torch.tensor([0.0, 0.0, 100.0, 100.0]))


def test_images_give_pixel_values_and_sizes(processor):
    img = np.zeros((30, 40, 3), np.uint8)
    out = processor(images=[img, img[:20]], input_points=[[[[1, 1]]], [[[2, 2]]]])
    assert out["pixel_values"].shape == (2, 3, 100, 100)
    assert out["original_sizes"].tolist() == [[30, 40], [20, 40]]
    moved = out.to(torch.bfloat16)
    assert isinstance(moved, BatchEncoding) and moved.pixel_values.dtype == torch.bfloat16
    assert moved["input_labels"].dtype == torch.int64 and moved["original_sizes"].dtype == torch.int64


def test_mask_inputs_and_segmentation_maps(processor):
    out = processor(
        original_sizes=SIZES[:1],
        input_masks=[np.ones((50, 200), np.float32)],
        segmentation_maps=[np.eye(50, 200, dtype=np.int32) * 3],
    )
    assert out["input_masks"].shape == (1, 1, 288, 288) and torch.allclose(out["input_masks"], torch.ones(1))
    assert out["labels"].shape == (1, 288, 288) and out["labels"].dtype == torch.int64
    assert set(out["labels"].unique().tolist()) == {0, 3}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_points": [[[10, 20]]]}, "expected a list at this level"),
        ({"input_points": [[[[10, 20, 3]]]]}, "expected 2"),
        ({"input_points": [[[[10, float("nan")]]]]}, "finite"),
        ({"input_points": [[[["a", 1]]]]}, "expected a number"),
        ({"input_points": [[[[1, 2]]]], "input_labels": [[[1, 1]]]}, "1 points but 2 labels"),
        (
            {"input_points": [[[[1, 2]], [[3, 4]]]], "input_labels": [[[1]]]},
            "2 objects but input_labels has 1",
        ),
        ({"input_points": [[[[1, 2]]]], "input_labels": [[[5]]]}, "expected 1 (positive click)"),
        ({"input_points": [[[[1, 2]]]], "input_labels": [[[0.5]]]}, "expected 1 (positive click)"),
        ({"input_labels": [[[1]]]}, "without input_points"),
        ({"input_points": torch.zeros(1, 1, 2)}, "must have 4 dimensions"),
        ({"input_boxes": [[[10, 10, 5, 20]]]}, "x2 < x1"),
        ({"input_boxes": [[1, 2, 3, 4]]}, "expected a list at this level"),
        ({"input_points": [[[[1, 2]]], [[[1, 2]]], [[[1, 2]]]]}, "for 3 images but 2 images"),
        ({"input_points": []}, "non-empty"),
    ],
)
def test_bad_prompts_raise_clear_errors(processor, kwargs, message):
    sizes = SIZES if "for 3 images" in message else SIZES[:1]
    with pytest.raises(ValueError) as err:
        processor(original_sizes=sizes, **kwargs)
    assert message in str(err.value)


def test_boxes_cannot_be_ragged(processor):
    with pytest.raises(ValueError, match="same number of boxes"):
        processor(original_sizes=SIZES, input_boxes=[[[0, 0, 5, 5]], [[0, 0, 5, 5], [1, 1, 4, 4]]])


def test_needs_images_or_sizes(processor):
    with pytest.raises(ValueError, match="original_sizes"):
        processor(input_points=[[[[1, 2]]]])


def test_from_pretrained_reads_settings(tmp_path, tiny_checkpoint_dir):
    p = Sam3TrackerProcessor.from_pretrained(tiny_checkpoint_dir)
    assert (p.size, p.target_size, p.mask_size, p.point_pad_value) == (224, 224, 64, -10)
    (tmp_path / "processor_config.json").write_text(
        json.dumps(
            {
                "image_processor": {
                    "size": {"height": 1008, "width": 1008},
                    "mask_size": {"height": 288, "width": 288},
                },
                "target_size": 1008,
                "point_pad_value": -10,
            }
        )
    )
    p = Sam3TrackerProcessor.from_pretrained(tmp_path)
    assert (p.size, p.target_size, p.mask_size) == (1008, 1008, 288)


def _bfs_areas(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    area = np.zeros((h, w), np.int64)
    seen = np.zeros((h, w), bool)
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        queue, comp = deque([(y0, x0)]), []
        seen[y0, x0] = True
        while queue:
            y, x = queue.popleft()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        for y, x in comp:
            area[y, x] = len(comp)
    return area


@pytest.mark.parametrize("density", [0.3, 0.5, 0.6])
def test_connected_components_match_bfs(density):
    rng = np.random.RandomState(int(density * 10))
    masks = rng.rand(3, 33, 47) < density
    labels, areas = connected_components(torch.from_numpy(masks))
    for i in range(3):
        assert np.array_equal(areas[i].numpy(), _bfs_areas(masks[i]))
        # one label per component: pixels with equal labels are exactly the components
        lab = labels[i].numpy()
        assert (lab[~masks[i]] == 0).all()
        for value in np.unique(lab[masks[i]])[:20]:
            comp = lab == value
            assert (_bfs_areas(masks[i])[comp] == comp.sum()).all()


def test_connected_components_long_spiral_converges():
    """A one-pixel-wide serpentine (a single component ~1000 px long) still gets one label."""
    m = np.zeros((40, 40), bool)
    m[::4, :39] = True
    m[2::4, 1:] = True
    for r in range(0, 38, 4):
        m[r + 1, 38] = True
        m[r + 3, 1] = True
    labels, areas = connected_components(torch.from_numpy(m)[None])
    assert np.array_equal(areas[0].numpy(), _bfs_areas(m))


def test_fill_holes_and_remove_sprinkles():
    logits = torch.full((1, 1, 12, 12), -5.0)
    logits[..., 2:10, 2:10] = 5.0
    logits[..., 5, 5] = -1.0  # a 1-pixel hole
    logits[..., 0, 11] = 3.0  # a 1-pixel sprinkle
    out = fill_holes_and_remove_sprinkles(logits, 0.0, max_hole_area=2, max_sprinkle_area=2)
    assert out[0, 0, 5, 5] == 10.0 and out[0, 0, 0, 11] == -10.0
    unchanged = torch.ones(12, 12, dtype=torch.bool)
    unchanged[5, 5] = unchanged[0, 11] = False
    assert torch.equal(out[0, 0][unchanged], logits[0, 0][unchanged])
    # the big square and the outside are larger than the limits: untouched
    assert torch.equal(fill_holes_and_remove_sprinkles(logits, 0.0, 0.0, 0.0), logits)


def test_cleanup_matches_sam2_semantics():
    """Holes and sprinkles are both found on the given mask, as in SAM 2's
    `SAM2Transforms.postprocess_masks`: a ring of 8 pixels around a 1-pixel hole is a sprinkle
    (8 <= 8) even though filling its hole first would make it a 9-pixel blob."""
    logits = torch.full((10, 10), -5.0)
    logits[3:6, 3:6] = 5.0
    logits[4, 4] = -1.0  # the ring's hole
    out = fill_holes_and_remove_sprinkles(logits, 0.0, max_hole_area=1, max_sprinkle_area=8)
    ring = torch.zeros(10, 10, dtype=torch.bool)
    ring[3:6, 3:6] = True
    ring[4, 4] = False
    assert out[4, 4] == 10.0  # the hole is filled
    assert torch.all(out[ring] == -10.0)  # the ring is removed
    assert torch.equal(out[~ring & (logits == -5.0)], logits[~ring & (logits == -5.0)])
