"""The concept-segmentation examples of the seed document, run as written (tiny checkpoint, 224 px)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from golden_io import load_golden
from sam3_core import Sam3Model, Sam3Processor
from test_images import make_image

device = "cpu"


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint_dir, tmp_path_factory):
    """The combined tiny checkpoint plus the processor files, like the facebook/sam3 repo."""
    folder = tmp_path_factory.mktemp("tiny-sam3-full")
    for path in tiny_checkpoint_dir.iterdir():
        shutil.copyfile(path, folder / path.name)
    _, meta = load_golden("detector", "processor_config")
    (folder / "processor_config.json").write_text(meta["processor_config.json"])
    return folder


@pytest.fixture(scope="module")
def model(checkpoint):
    return Sam3Model.from_pretrained(checkpoint).to(device)


@pytest.fixture(scope="module")
def processor(checkpoint):
    return Sam3Processor.from_pretrained(checkpoint)


image = make_image(150, 200, seed=1)
kitchen_image = make_image(240, 180, seed=5)


def _check(results, sizes):
    for result, (h, w) in zip(results, sizes, strict=True):
        assert set(result) == {"masks", "boxes", "scores"}
        k = result["scores"].shape[0]
        assert result["masks"].shape == (k, h, w) and result["boxes"].shape == (k, 4)
        assert ((result["scores"] > 0.0) & (result["scores"] <= 1.0)).all()


def test_text_box_and_combined_prompts(model, processor):
    inputs = processor(images=image, text="ear", return_tensors="pt").to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    results = processor.post_process_instance_segmentation(
        outputs, threshold=0.5, mask_threshold=0.5, target_sizes=inputs.get("original_sizes").tolist()
    )
    _check(results, [(150, 200)])
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
        processor.post_process_instance_segmentation(outputs, 0.5, 0.5, inputs["original_sizes"]),
        [(240, 180)],
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


def test_batched_and_mixed_prompts(model, processor):
    images = [image, kitchen_image]
    inputs = processor(images=images, text=["ear", "dial"], return_tensors="pt").to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    sizes = inputs.get("original_sizes").tolist()
    _check(processor.post_process_instance_segmentation(outputs, 0.5, 0.5, sizes), sizes)

    inputs = processor(
        images=images,
        text=["laptop", None],
        input_boxes=[None, [[59, 144, 76, 163]]],
        input_boxes_labels=[None, [1]],
        return_tensors="pt",
    ).to(device)
    with torch.no_grad():
        outputs = model(**inputs)
    _check(processor.post_process_instance_segmentation(outputs, 0.5, 0.5, sizes), sizes)


def test_efficient_multi_prompt_and_multi_image(model, processor):
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
            outputs, threshold=0.5, mask_threshold=0.5, target_sizes=img_inputs.get("original_sizes").tolist()
        )[0]
        _check([results], [(150, 200)])
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


def test_config_of_the_loaded_model(model, checkpoint):
    detector = json.loads((checkpoint / "config.json").read_text())["detector_config"]
    assert model.config.detr_decoder_config.num_queries == detector["detr_decoder_config"]["num_queries"]
