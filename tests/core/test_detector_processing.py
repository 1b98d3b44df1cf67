"""`Sam3Processor`: prompt tensors, post-processing and input errors, against the reference."""

from __future__ import annotations

import pytest
import torch
from golden_io import max_abs_diff
from sam3_core import Sam3Processor
from test_images import make_image

AREA = "detector"
IMAGES = (make_image(150, 200, seed=1), make_image(240, 180, seed=5))


@pytest.fixture(scope="module")
def text_outputs(detector_model, detector_processor):
    inputs = detector_processor(images=IMAGES[0], text="yellow school bus")
    with torch.no_grad():
        return detector_model(**inputs), inputs


def test_from_pretrained_reads_processor_config(detector_processor):
    assert detector_processor.size == 224
    assert detector_processor.point_pad_value == -10


def test_mixed_batch_prompts_match_reference(detector_processor, golden):
    tensors, meta = golden(AREA, "batch_mixed")
    inputs = detector_processor(images=list(IMAGES), **meta["kwargs"])
    assert inputs.original_sizes.tolist() == meta["original_sizes"]
    # "laptop", then "visual" for the box-only image
    assert torch.equal(inputs.input_ids, tensors["input_ids"])
    assert torch.equal(inputs.input_boxes_labels, tensors["input_boxes_labels"])  # [[-10], [1]]
    assert max_abs_diff(inputs.input_boxes, tensors["input_boxes"]) <= 1e-6
    assert inputs.input_boxes[0].tolist() == [[-10.0, -10.0, 0.0, 0.0]]  # padding, as the reference


def test_boxes_are_normalised_cxcywh(detector_processor):
    inputs = detector_processor(images=IMAGES[0], input_boxes=[[[20, 30, 100, 90], [0, 0, 200, 150]]])
    expected = torch.tensor([[[60 / 200, 60 / 150, 80 / 200, 60 / 150], [0.5, 0.5, 1.0, 1.0]]])
    assert torch.allclose(inputs.input_boxes, expected)
    assert inputs.input_boxes_labels.tolist() == [[1, 1]]  # default: positive
    assert inputs.input_ids.shape == (1, 32)  # the "visual" phrase
    without_images = detector_processor(original_sizes=[[150, 200]], input_boxes=[[[20, 30, 100, 90]]])
    assert torch.allclose(without_images.input_boxes, expected[:, :1])
    assert "pixel_values" not in without_images


def test_instance_post_processing_matches_reference(detector_processor, text_outputs, golden):
    tensors, meta = golden(AREA, "post_process")
    outputs, inputs = text_outputs
    (result,) = detector_processor.post_process_instance_segmentation(
        outputs,
        threshold=meta["threshold"],
        mask_threshold=meta["mask_threshold"],
        target_sizes=inputs.get("original_sizes").tolist(),
    )
    assert result["scores"].shape == tensors["scores"].shape  # the same instances are kept
    assert max_abs_diff(result["scores"], tensors["scores"]) <= 1e-5
    assert max_abs_diff(result["boxes"], tensors["boxes"]) <= 1e-3  # pixels (1e-5 normalised x 200)
    assert result["masks"].dtype == torch.long
    mismatched = (result["masks"] != tensors["masks"].long()).float().mean().item()
    assert mismatched <= 1e-4, mismatched  # only pixels within ~1e-5 of the mask threshold may flip
    (semantic,) = detector_processor.post_process_semantic_segmentation(outputs, target_sizes=[(150, 200)])
    assert (semantic != tensors["semantic"].long()).float().mean().item() <= 1e-4


def test_post_processing_without_target_sizes(detector_processor, text_outputs):
    outputs, _ = text_outputs
    (result,) = detector_processor.post_process_instance_segmentation(outputs, threshold=0.0)
    assert result["masks"].shape == (20, 64, 64)
    assert torch.equal(result["boxes"], outputs.pred_boxes[0])
    expected = outputs.pred_logits.sigmoid() * outputs.presence_logits.sigmoid()
    assert torch.equal(result["scores"], expected[0])
    (none_kept,) = detector_processor.post_process_instance_segmentation(
        outputs, threshold=1.0, target_sizes=[(10, 12)]
    )
    assert none_kept["masks"].shape == (0, 10, 12) and none_kept["boxes"].shape == (0, 4)
    (detections,) = detector_processor.post_process_object_detection(
        outputs, threshold=0.0, target_sizes=[(150, 200)]
    )
    assert detections["boxes"].shape == (20, 4)
    (scored,) = detector_processor.post_process_semantic_segmentation(
        outputs, return_segmentation_scores=True
    )
    assert scored["segmentation_scores"].shape == (1, 64, 64)
    with pytest.raises(ValueError, match="2 target sizes for a batch of 1"):
        detector_processor.post_process_instance_segmentation(outputs, target_sizes=[(1, 1), (2, 2)])


def test_output_moves_and_casts(detector_processor):
    inputs = detector_processor(images=IMAGES[0], text="cat", input_boxes=[[[1, 2, 30, 40]]])
    moved = inputs.to("cpu", dtype=torch.bfloat16)
    assert moved.pixel_values.dtype == torch.bfloat16 and moved.input_boxes.dtype == torch.bfloat16
    assert moved.input_ids.dtype == torch.long
    with pytest.raises(AttributeError, match="no 'labels'"):
        _ = inputs.labels


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": IMAGES[0]}, None),  # images alone are fine (vision embeddings)
        ({}, "nothing to process"),
        ({"images": IMAGES[0], "text": ""}, "text is empty"),
        ({"images": list(IMAGES), "text": ["cat", "  "]}, r"text\[1\] is empty"),
        ({"images": list(IMAGES), "text": ["cat"]}, "1 text prompts for 2 images"),
        ({"images": list(IMAGES), "text": ["cat", None]}, "image 1 has neither a text prompt nor boxes"),
        ({"images": list(IMAGES), "input_boxes": [[[1, 2, 3, 4]], None]}, "image 1 has neither"),
        ({"images": list(IMAGES), "text": [None, "cat"], "input_boxes": [[], None]}, "image 0 has neither"),
        (
            {"images": IMAGES[0], "input_boxes": [[[1, 2, 3, 4]]], "input_boxes_labels": [[1, 0]]},
            "one label per box",
        ),
        ({"images": IMAGES[0], "input_boxes": [[[1, 2, 3, 4]]], "input_boxes_labels": [[2]]}, "expected 1"),
        ({"images": IMAGES[0], "input_boxes": [[[5, 2, 3, 4]]]}, "x1 <= x2"),
        ({"images": IMAGES[0], "input_boxes": [[1, 2, 3, 4]]}, r"nesting \[image\]\[box\]\[4\]"),
        ({"images": IMAGES[0], "input_boxes_labels": [[1]]}, "without input_boxes"),
        ({"input_boxes": [[[1, 2, 3, 4]]]}, "need the image sizes"),
        ({"images": IMAGES[0], "text": 3}, "must be a string"),
        (
            {"images": list(IMAGES), "text": ["a", "b"], "input_boxes": [[[1, 2, 3, 4]]]},
            "1 entries but there are 2",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(detector_processor, kwargs, message):
    if message is None:
        assert set(detector_processor(**kwargs)) == {"pixel_values", "original_sizes"}
        return
    with pytest.raises(ValueError, match=message):
        detector_processor(**kwargs)


def test_size_comes_from_the_model_config_without_processor_file(tiny_checkpoint_dir):

    assert not (tiny_checkpoint_dir / "processor_config.json").exists()
    assert Sam3Processor.from_pretrained(tiny_checkpoint_dir).size == 224
