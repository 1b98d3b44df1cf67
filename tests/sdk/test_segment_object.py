"""Sam3.segment_object and ImageSession on the tiny checkpoint: same numbers as the core model,
the backbone once per image, and clear errors for bad prompts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_images import make_image

IMAGE = make_image(150, 200, seed=1)


def core_logits(sam, image, points, labels, multimask):
    proc, model = sam.image_processor, sam.image_model
    inputs = proc(images=image, input_points=[[points]], input_labels=[[labels]])
    with torch.no_grad():
        out = model(**inputs, multimask_output=multimask)
    return out.pred_masks[0, 0], out.iou_scores[0, 0], inputs["original_sizes"]


def test_single_click_matches_core_and_is_sorted(sam):
    obj = sam.segment_object(IMAGE, points=[(60, 40)], labels=[1])
    logits, scores, sizes = core_logits(sam, IMAGE, [[60, 40]], [1], multimask=True)
    order = torch.argsort(scores, descending=True)
    assert obj.masks.shape == (3, 150, 200) and obj.masks.dtype == bool
    assert np.allclose(obj.scores, scores[order].clamp(0, 1).numpy(), atol=1e-6)
    assert np.all(np.diff(obj.scores) <= 0)
    expected = sam.image_processor.post_process_masks(logits[order][None, None], sizes)[0][0].numpy()
    assert np.array_equal(obj.masks, expected)
    assert obj.mask.shape == (150, 200) and obj.low_res_logits.shape[0] == 3


def test_box_and_clicks_give_one_mask(sam):
    obj = sam.segment_object(IMAGE, points=[(60, 40), (100, 100)], labels=[1, 0], box=(10, 10, 150, 120))
    assert len(obj) == 1
    assert obj.prompt["box"] == [10, 10, 150, 120]
    assert obj.boxes.shape == (1, 4)


def test_mask_prompt_and_refinement_from_logits(sam):
    first = sam.segment_object(IMAGE, points=[(60, 40)])
    refined = sam.segment_object(IMAGE, points=[(60, 40), (70, 50)], mask_logits=first.low_res_logits[0])
    from_mask = sam.segment_object(IMAGE, mask=first.mask)
    assert refined.masks.shape == (1, 150, 200) and from_mask.masks.shape == (1, 150, 200)


def test_image_session_runs_backbone_once(sam):
    calls = []
    hook = sam.image_model.vision_encoder.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        image = make_image(90, 120, seed=9)  # not cached yet
        session = sam.image_session(image)
        first = session.add_point(30, 30)
        second = session.add_point(80, 60, positive=False)
        boxed = session.set_box((5, 5, 100, 80))
        back = session.undo()
        assert len(calls) == 1
        assert len(first) == 3 and len(second) == 1 and len(boxed) == 1
        assert np.array_equal(back.masks, second.masks)
        session.clear()
        assert session.result is None and session.predict() is None
        sam.segment_object(image, points=[(10, 10)])  # same image again: still cached
        assert len(calls) == 1
    finally:
        hook.remove()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points=[(500, 10)]), r"outside the image; x must be in \[0, 200\]"),
        (dict(points=[(10, -1)]), "outside the image"),
        (dict(points=[(10, 10), (20, 20)], labels=[1]), "2 points but 1 labels"),
        (dict(points=[(10, 10)], labels=[2]), "labels must be 1"),
        (dict(points=[(float("nan"), 10)]), "NaN"),
        (dict(points=[(1, 2, 3)]), r"\(x, y\) pairs"),
        (dict(box=(50, 50, 10, 80)), "empty or inverted"),
        (dict(box=(0, 0, 300, 80)), "outside the image"),
        (dict(box=(0, 0, 10)), "4 numbers"),
        (dict(mask=np.zeros((10, 10), bool)), "image's size"),
        (dict(), "at least one prompt"),
    ],
)
def test_bad_prompts(sam, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sam.segment_object(IMAGE, **kwargs)


def test_bad_images(sam, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        sam.segment_object(tmp_path / "bad.png", points=[(1, 1)])
    with pytest.raises(ValueError, match="does not exist"):
        sam.segment_object(str(tmp_path / "missing.jpg"), points=[(1, 1)])
    with pytest.raises(TypeError, match="expected a PIL image"):
        sam.segment_object(42, points=[(1, 1)])


def test_processor_config_of_the_checkpoint_is_applied(tiny_checkpoint_dir, tmp_path):
    """A checkpoint whose processor_config.json normalises with ImageNet statistics and resamples
    bicubic: the SDK's cached embedding uses those settings, as the core processor does."""
    import json
    import shutil

    from sam3_sdk import Sam3

    folder = tmp_path / "imagenet"
    shutil.copytree(tiny_checkpoint_dir, folder)
    config_path = folder / "processor_config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    section = config.setdefault("image_processor", {})
    section.update(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], resample=3)
    default = Sam3.from_pretrained(tiny_checkpoint_dir, device="cpu")
    section["size"] = {"height": default.image_processor.size, "width": default.image_processor.size}
    config_path.write_text(json.dumps(config))
    sam = Sam3.from_pretrained(folder, device="cpu")
    assert sam.image_processor.resample == "bicubic"
    obj = sam.segment_object(IMAGE, points=[(60, 40)], labels=[1], multimask=False)
    logits, scores, sizes = core_logits(sam, IMAGE, [[60, 40]], [1], multimask=False)
    assert np.allclose(obj.scores, scores.clamp(0, 1).numpy(), atol=1e-6)
    expected = sam.image_processor.post_process_masks(logits[None, None], sizes)[0][0].numpy()
    assert np.array_equal(obj.masks, expected)
    # The default statistics give other scores: the check above can tell the configs apart.
    other = default.segment_object(IMAGE, points=[(60, 40)], labels=[1], multimask=False)
    assert not np.allclose(other.scores, obj.scores, atol=1e-6)
