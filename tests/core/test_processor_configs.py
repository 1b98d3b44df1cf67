"""Every processor under several processor_config.json files, against the reference's processors
loaded from the same files (goldens of scripts/golden/processors.py, cases in
tests/fixtures/processor_cases.py): pixel values, prompts, segmentation labels, post-processed
masks, video frames, and one model end to end per processor on a non-default config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import processor_cases as pc
import pytest
import torch
import video_scenarios as vs
from golden_io import load_golden, max_abs_diff
from sam3_core import (
    EdgeTamVideoModel,
    Sam2VideoProcessor,
    Sam3Processor,
    Sam3TrackerProcessor,
    Sam3TrackerVideoProcessor,
)
from sam3_core.processing.image import normalize_images
from tiny_checkpoint import HERE, write_tiny_checkpoint

CLASSES = {
    "Sam3Processor": Sam3Processor,
    "Sam3TrackerProcessor": Sam3TrackerProcessor,
    "Sam3TrackerVideoProcessor": Sam3TrackerVideoProcessor,
    "Sam2VideoProcessor": Sam2VideoProcessor,
}
PIXEL_TOL = 1e-4  # normalised pixel values; 0 measured on the CPU (the same uint8 resize kernels)
MODEL_TOL = 1e-4  # fp32 logits, as the other parity tests
TRACKERS = [n for n, (cls, _, _) in pc.CONFIGS.items() if cls != "Sam3Processor"]
VIDEO = [n for n, (cls, _, _) in pc.CONFIGS.items() if cls in pc.VIDEO_PROCESSORS]


def _write_config(folder: Path, config: dict, tokenizer_from: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is not None:
        for path in tokenizer_from.iterdir():
            if path.suffix in (".json", ".txt") and path.name != "config.json":
                shutil.copyfile(path, folder / path.name)
    (folder / "processor_config.json").write_text(json.dumps(config, indent=2))
    return folder


@pytest.fixture
def load(tmp_path, tiny_checkpoint_dir):
    """`load(name)` -> (our processor loaded from the case's processor_config.json, golden tensors, meta)."""

    def _load(name: str):
        tensors, meta = load_golden("processors", name)
        cls = CLASSES[meta["class"]]
        tokenizer_from = tiny_checkpoint_dir if cls is Sam3Processor else None
        folder = _write_config(tmp_path / name, json.loads(meta["processor_config.json"]), tokenizer_from)
        return cls.from_pretrained(folder), tensors, meta

    return _load


def _compare(ours: dict, expected: dict, keys) -> float:
    worst = 0.0
    for key in keys:
        tol = PIXEL_TOL if "pixel_values" in key or "logits" in key else 0.0
        diff = max_abs_diff(ours[key], expected[key])
        assert diff <= tol, f"{key}: max abs diff {diff:.3g} > {tol}"
        worst = max(worst, diff) if "pixel_values" in key else worst
    return worst


@pytest.mark.parametrize("name", list(pc.CONFIGS))
def test_image_path_matches_reference(name, load):
    processor, expected, meta = load(name)
    prompts = pc.DETECTOR_PROMPTS if meta["class"] == "Sam3Processor" else pc.TRACKER_PROMPTS
    out = processor(images=pc.images(), segmentation_maps=pc.segmentation_maps(), **prompts)
    ours = pc.record_image_inputs(out)
    image_keys = {k for k in expected if not k.startswith(("model_", "masks_", "mask_logits_", "video_"))}
    assert set(ours) == image_keys
    _compare(ours, expected, sorted(image_keys))


@pytest.mark.parametrize("name", TRACKERS)
def test_post_processed_masks_match_reference(name, load):
    processor, expected, _ = load(name)
    sizes = expected["original_sizes"]
    masks = pc.low_res_masks(processor.mask_size)
    ours = pc.record_post_processed(
        processor.post_process_masks(masks, sizes), processor.post_process_masks(masks, sizes, binarize=False)
    )
    _compare(ours, expected, sorted(ours))


@pytest.mark.parametrize("name", VIDEO)
def test_video_frames_match_reference(name, load):
    processor, expected, meta = load(name)
    session = processor.init_video_session(video=vs.video(pc.NUM_FRAMES))
    assert [session.video_height, session.video_width] == meta["video_original_size"]
    assert [list(f.shape[-2:]) for f in list(session.processed_frames.values())[:1]] == meta[
        "video_reshaped_input_sizes"
    ]
    pixels = torch.stack([session.get_frame(i) for i in range(pc.NUM_FRAMES)])
    ours = {"video_pixel_values": pixels[:, :, :: pc.STRIDE, :: pc.STRIDE]}
    _compare(ours, expected, ["video_pixel_values"])


@pytest.mark.parametrize("name", ["tracker_video_differs", "sam2_video_differs", "tracker_video_other"])
def test_video_golden_tells_the_sections_apart(name, load):
    """The frames the reference stores are not the image section's normalisation of the same
    uint8 frames: a processor that used the image settings for video would fail the test above."""
    processor, expected, _ = load(name)
    session = processor.init_video_session(video=vs.video(pc.NUM_FRAMES))
    frames = torch.stack([session.processed_frames[i] for i in range(pc.NUM_FRAMES)])
    with_image_settings = normalize_images(
        frames, processor.image_mean, processor.image_std, processor.rescale_factor
    )
    step = pc.STRIDE
    assert max_abs_diff(with_image_settings[:, :, ::step, ::step], expected["video_pixel_values"]) > 0.1


def _model_tensors(expected: dict) -> dict:
    return {k[len("model_") :]: v for k, v in expected.items() if k.startswith("model_")}


def test_detector_end_to_end_on_bicubic_imagenet_config(load, detector_model):
    processor, expected, _ = load("sam3_bicubic_imagenet")
    assert (processor.resample, processor.image_mean) == ("bicubic", tuple(pc.IMAGENET_MEAN))
    inputs = processor(images=pc.images()[0], text="a red ellipse")
    with torch.no_grad():
        out = detector_model(**inputs)
    ours = {
        "pred_logits": out.pred_logits,
        "pred_boxes": out.pred_boxes,
        "presence_logits": out.presence_logits,
        "pred_masks": out.pred_masks[..., ::2, ::2],
        "semantic_seg": out.semantic_seg[..., ::2, ::2],
    }
    golden = _model_tensors(expected)
    for key in golden:
        diff = max_abs_diff(ours[key], golden[key])
        assert diff <= MODEL_TOL, f"{key}: {diff:.3g}"


def test_tracker_end_to_end_on_bicubic_imagenet_config(load, tracker_model):
    processor, expected, _ = load("tracker_bicubic_imagenet")
    inputs = processor(images=[pc.images()[0]], input_points=[[[vs.ELLIPSE]]], input_labels=[[[1]]])
    with torch.no_grad():
        out = tracker_model(**inputs, multimask_output=True)
    golden = _model_tensors(expected)
    for key in golden:
        diff = max_abs_diff(getattr(out, key), golden[key])
        assert diff <= MODEL_TOL, f"{key}: {diff:.3g}"


def _check_video_outputs(model, processor, expected: dict, meta: dict) -> None:
    tensors, ours_meta = vs.record(vs.one_object(model, processor, vs.video(4)))
    assert ours_meta["frame_idx"] == meta["model_frame_idx"]
    golden = _model_tensors(expected)
    assert set(tensors) == set(golden)
    for key in sorted(golden):
        diff = max_abs_diff(tensors[key], golden[key])
        assert diff <= MODEL_TOL, f"{key}: max abs diff {diff:.3g}"


def test_video_tracker_end_to_end_when_the_video_section_differs(load, video_model):
    """The issue's user story: a checkpoint whose video_processor section (ImageNet mean/std,
    bicubic) differs from its image_processor section (SAM 3's)."""
    processor, expected, meta = load("tracker_video_differs")
    assert processor.video_resample == "bicubic" and processor.resample == "bilinear"
    _check_video_outputs(video_model, processor, expected, meta)


def test_edgetam_end_to_end_when_the_video_section_differs(load, tmp_path):
    processor, expected, meta = load("sam2_video_differs")
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny_edgetam", source_dir=HERE / "tiny_edgetam")
    _check_video_outputs(EdgeTamVideoModel.from_pretrained(checkpoint), processor, expected, meta)


def test_saved_config_reads_back_the_same_settings(load, tmp_path):
    for name in ("sam3_lanczos_clip", "tracker_raw_pixels", "tracker_video_other", "sam2_video_other"):
        processor, _, _ = load(name)
        folder = processor.save_pretrained(tmp_path / f"saved_{name}")
        again = type(processor).from_pretrained(folder)
        fields = ("size", "mask_size", "resample", "image_mean", "image_std", "rescale_factor", "target_size")
        fields += ("point_pad_value", "video_resample", "video_mean", "video_std", "video_rescale_factor")
        for field in fields:
            assert getattr(again, field, None) == getattr(processor, field, None), (name, field)


# -- settings that cannot be honoured ------------------------------------------------------------

_IMAGE = pc.section(224, mask_size=64)


@pytest.mark.parametrize(
    "image, video, message",
    [
        (
            {**_IMAGE, "resample": 4},
            None,
            "image_processor.resample=4 is not supported; accepted values: 0 (nearest)",
        ),
        ({**_IMAGE, "resample": 5}, None, "image_processor.resample=5"),
        ({**_IMAGE, "size": {"height": 224, "width": 200}}, None, "image_processor.size="),
        ({**_IMAGE, "size": {"shortest_edge": 224}}, None, "shortest_edge"),
        ({**_IMAGE, "mask_size": {"height": 64, "width": 32}}, None, "image_processor.mask_size="),
        (
            {**_IMAGE, "do_resize": False},
            None,
            "image_processor.do_resize=false is not supported; accepted: true",
        ),
        (
            {**_IMAGE, "do_center_crop": True, "crop_size": {"height": 200, "width": 200}},
            None,
            "image_processor.crop_size=",
        ),
        (
            {**_IMAGE, "do_pad": True, "pad_size": {"height": 256, "width": 256}},
            None,
            "accepted: do_pad=false",
        ),
        (
            {**_IMAGE, "rescale_factor": 0},
            None,
            "image_processor.rescale_factor=0; accepted: a positive number",
        ),
        ({**_IMAGE, "image_mean": [0.5, 0.5]}, None, "image_processor.image_mean"),
        (_IMAGE, pc.section(224, resample=4, video=True), "video_processor.resample=4"),
        (_IMAGE, pc.section(256, video=True), "video_processor.size"),
        (
            _IMAGE,
            {**pc.section(224, video=True), "do_sample_frames": True},
            "video_processor.do_sample_frames",
        ),
    ],
)
def test_unusable_settings_name_the_file_and_field(tmp_path, image, video, message):
    config = {"image_processor": image}
    if video is not None:
        config["video_processor"] = video
    folder = _write_config(tmp_path, config)
    with pytest.raises(ValueError) as err:
        Sam3TrackerVideoProcessor.from_pretrained(folder)
    assert message in str(err.value) and str(folder / "processor_config.json") in str(err.value)


def test_detector_processor_refuses_what_it_cannot_use(tmp_path, tiny_checkpoint_dir):
    folder = _write_config(tmp_path, {"image_processor": {**_IMAGE, "resample": 4}}, tiny_checkpoint_dir)
    with pytest.raises(ValueError, match=r"image_processor\.resample=4 .*accepted values"):
        Sam3Processor.from_pretrained(folder)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="resample='area' is not supported"):
        Sam3TrackerProcessor(resample="area")
    with pytest.raises(ValueError, match="video_rescale_factor must be positive"):
        Sam3TrackerVideoProcessor(video_rescale_factor=-1.0)
    assert Sam3TrackerProcessor(resample=3).resample == "bicubic"
