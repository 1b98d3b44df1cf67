"""Sam3.segment_concept on the tiny checkpoint: same instances as the core detector pipeline, one
backbone pass shared with segment_object, cached text features, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sam3_core import Sam3Model, Sam3Processor
from test_images import make_image

IMAGE = make_image(150, 200, seed=1)


def test_matches_core_detector(sam, tiny_checkpoint_dir):
    found = sam.segment_concept(IMAGE, text="red ball", threshold=0.0)
    model = Sam3Model.from_pretrained(tiny_checkpoint_dir)
    proc = Sam3Processor.from_pretrained(tiny_checkpoint_dir)
    inputs = proc(images=IMAGE, text="red ball")
    with torch.no_grad():
        out = model(**inputs)
    ref = proc.post_process_instance_segmentation(
        out, threshold=0.0, mask_threshold=0.5, target_sizes=inputs["original_sizes"]
    )[0]
    order = torch.argsort(ref["scores"], descending=True)
    assert len(found) == len(ref["scores"]) > 0
    assert np.allclose(found.scores, ref["scores"][order].numpy(), atol=1e-5)
    # The SDK clamps the detector's boxes to the image (the raw ones may start at x = -67).
    raw = ref["boxes"][order].numpy()
    clamped = np.stack([raw[:, 0].clip(0, 200), raw[:, 1].clip(0, 150), raw[:, 2].clip(0, 200),
                        raw[:, 3].clip(0, 150)], axis=1)  # fmt: skip
    assert np.allclose(found.boxes, clamped, atol=1e-3)
    assert found.boxes.min() >= 0 and found.boxes[:, 0::2].max() <= 200 and found.boxes[:, 1::2].max() <= 150
    assert (found.masks != ref["masks"][order].bool().numpy()).mean() < 1e-3
    assert found.masks.shape[1:] == (150, 200) and found.prompt["text"] == "red ball"


def test_threshold_filters(sam):
    everything = sam.segment_concept(IMAGE, text="red ball", threshold=0.0)
    cut = float(np.median(everything.scores))
    some = sam.segment_concept(IMAGE, text="red ball", threshold=cut)
    assert len(some) == int((everything.scores > cut).sum()) < len(everything)
    assert np.all(some.scores > cut)


def test_boxes_and_mixed_prompts(sam):
    boxes = [(10, 10, 80, 90), (100, 20, 190, 140)]
    found = sam.segment_concept(IMAGE, boxes=boxes, box_labels=[1, 0], threshold=0.0)
    assert found.prompt["box_labels"] == [1, 0] and len(found) > 0
    both = sam.segment_concept(IMAGE, text="ball", boxes=[boxes[1]], box_labels=[0], threshold=0.0)
    assert len(both) > 0


def test_one_backbone_pass_for_both_heads_and_text_cache(sam):
    image = make_image(120, 100, seed=11)
    backbone_calls, text_calls = [], []
    h1 = sam.image_model.vision_encoder.backbone.register_forward_hook(lambda *a: backbone_calls.append(1))
    h2 = sam.detector.text_encoder.register_forward_hook(lambda *a: text_calls.append(1))
    try:
        assert sam.detector.vision_encoder.backbone is sam.image_model.vision_encoder.backbone
        sam.segment_concept(image, text="cat")
        sam.segment_concept(image, text="dog")
        sam.segment_concept(image, text="cat")
        sam.segment_object(image, points=[(50, 50)])
        assert len(backbone_calls) == 1
        assert len(text_calls) == 2  # "cat" once, "dog" once
    finally:
        h1.remove()
        h2.remove()


def test_long_text_is_truncated_with_a_warning(sam):
    with pytest.warns(UserWarning, match="truncated"):
        sam.segment_concept(IMAGE, text=" ".join(["word"] * 60))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "text prompt, exemplar boxes, or both"),
        (dict(text="   "), "text is empty"),
        (dict(text="cat", threshold=1.5), r"threshold must be a number in \[0, 1\]"),
        (dict(text="cat", mask_threshold=-0.1), "mask_threshold"),
        (dict(boxes=[(50, 50, 10, 10)]), "inverted"),
        (dict(boxes=[(0, 0, 500, 10)]), "outside the image"),
        (dict(boxes=[(0, 0, 10, 10)], box_labels=[1, 1]), "one 1 .* per box"),
        (dict(text="cat", box_labels=[1]), "without boxes"),
    ],
)
def test_bad_inputs(sam, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sam.segment_concept(IMAGE, **kwargs)


def test_text_must_be_a_string(sam):
    with pytest.raises(TypeError, match="must be a string"):
        sam.segment_concept(IMAGE, text=["cat"])


def test_nothing_found_gives_empty_instances_whose_exports_work(sam, tmp_path):
    # No score exceeds 1, so nothing passes: the result is empty, not an error.
    found = sam.segment_concept(IMAGE, text="purple giraffe", threshold=1.0)
    assert len(found) == 0 and found.masks.shape == (0, 150, 200) and found.boxes.shape == (0, 4)
    assert found.areas.shape == (0,)
    assert found.to_coco_rle() == []
    data = json.loads(found.save_json(tmp_path / "none.json").read_text())
    assert data["annotations"] == [] and data["image_size"] == [150, 200]
    index = np.array(Image.open(found.save_png(tmp_path / "none.png")))
    assert index.shape == (150, 200) and not index.any()
    assert np.array_equal(np.asarray(found.overlay(IMAGE)), np.asarray(IMAGE))
