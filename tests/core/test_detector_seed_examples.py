"""The concept-segmentation examples of the seed document, run as written (tiny checkpoint, 224 px)."""

from __future__ import annotations

import json

import torch
from test_images import make_image

device = "cpu"


image = make_image(150, 200, seed=1)
kitchen_image = make_image(240, 180, seed=5)


def _check(results, sizes, min_kept=0):
    for result, (h, w) in zip(results, sizes, strict=True):
        assert set(result) == {"masks", "boxes", "scores"}
        k = result["scores"].shape[0]
        assert k >= min_kept, f"{k} instances kept, expected at least {min_kept}"
        assert result["masks"].shape == (k, h, w) and result["boxes"].shape == (k, 4)
        assert ((result["scores"] > 0.0) & (result["scores"] <= 1.0)).all()


def keeping_threshold(outputs) -> float:
    """A score threshold that keeps at least one instance of every image: half the lowest of the
    per-image best scores (the tiny random weights score below the examples' 0.5)."""
    scores = outputs.pred_logits.sigmoid() * outputs.presence_logits.sigmoid()  # (B, Q), as post-processed
    return float(scores.max(dim=1).values.min()) / 2


def test_text_box_and_combined_prompts(detector_model, detector_processor):
    model, processor = detector_model, detector_processor
    inputs = processor(images=image, text="ear", return_tensors="pt").to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    results = processor.post_process_instance_segmentation(
        outputs,
        threshold=keeping_threshold(outputs),
        mask_threshold=0.5,
        target_sizes=inputs.get("original_sizes").tolist(),
    )
    _check(results, [(150, 200)], min_kept=1)
    (everything,) = processor.post_process_instance_segmentation(
        outputs, threshold=0.0, mask_threshold=0.5, target_sizes=inputs.get("original_sizes").tolist()
    )
    assert everything["masks"].shape == (20, 150, 200)
    _check([everything], [(150, 200)])

    inputs = processor(
        images=kitchen_image,
        input_boxes=[[[59, 144, 76, 163], [87, 148, 104, 159]]],
        input_boxes_labels=[[1, 1]],
        return_tensors="pt",
    ).to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    _check(
        processor.post_process_instance_segmentation(
            outputs, keeping_threshold(outputs), 0.5, inputs["original_sizes"]
        ),
        [(240, 180)],
        min_kept=1,
    )

    inputs = processor(
        images=kitchen_image,
        text="handle",
        input_boxes=[[[40, 183, 170, 204]]],
        input_boxes_labels=[[0]],
        return_tensors="pt",
    ).to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    instance_masks = torch.sigmoid(outputs.pred_masks)
    assert instance_masks.shape == (1, 20, 64, 64)
    assert outputs.semantic_seg.shape == (1, 1, 64, 64)


def test_batched_and_mixed_prompts(detector_model, detector_processor):
    model, processor = detector_model, detector_processor
    images = [image, kitchen_image]
    inputs = processor(images=images, text=["ear", "dial"], return_tensors="pt").to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    sizes = inputs.get("original_sizes").tolist()
    threshold = keeping_threshold(outputs)
    _check(processor.post_process_instance_segmentation(outputs, threshold, 0.5, sizes), sizes, min_kept=1)

    inputs = processor(
        images=images,
        text=["laptop", None],
        input_boxes=[None, [[59, 144, 76, 163]]],
        input_boxes_labels=[None, [1]],
        return_tensors="pt",
    ).to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    threshold = keeping_threshold(outputs)
    _check(processor.post_process_instance_segmentation(outputs, threshold, 0.5, sizes), sizes, min_kept=1)


def test_efficient_multi_prompt_and_multi_image(detector_model, detector_processor):
    model, processor = detector_model, detector_processor
    img_inputs = processor(images=image, return_tensors="pt").to(device)
    with torch.no_grad():
        vision_embeds = model.get_vision_features(pixel_values=img_inputs.pixel_values)
    per_prompt = {}
    for prompt in ["ear", "eye", "nose"]:
        text_inputs = processor(text=prompt, return_tensors="pt").to(device)
        with torch.no_grad():
            outputs = model(vision_embeds=vision_embeds, **text_inputs)
        per_prompt[prompt] = outputs.pred_logits
        results = processor.post_process_instance_segmentation(
            outputs,
            threshold=keeping_threshold(outputs),
            mask_threshold=0.5,
            target_sizes=img_inputs.get("original_sizes").tolist(),
        )[0]
        _check([results], [(150, 200)], min_kept=1)
    assert not torch.equal(per_prompt["ear"], per_prompt["eye"])  # the phrase matters

    text_inputs = processor(text="ear", return_tensors="pt").to(device)
    with torch.no_grad():
        text_embeds = model.get_text_features(**text_inputs)
    for img in [image, kitchen_image]:
        img_inputs = processor(images=img, return_tensors="pt").to(device)
        with torch.no_grad():
            outputs = model(
                pixel_values=img_inputs.pixel_values,
                text_embeds=text_embeds,
                attention_mask=text_inputs.attention_mask,
            )
        with torch.no_grad():
            direct = model(**processor(images=img, text="ear"))
        assert torch.equal(outputs.pred_logits, direct.pred_logits)


def test_config_of_the_loaded_model(detector_model, tiny_repo_dir):
    detector = json.loads((tiny_repo_dir / "config.json").read_text())["detector_config"]
    assert (
        detector_model.config.detr_decoder_config.num_queries
        == detector["detr_decoder_config"]["num_queries"]
    )
