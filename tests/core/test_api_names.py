"""The documentation's extra names: AutoConfig / AutoModel / AutoProcessor, pipeline("mask-generation"),
load_video (real PyAV files), the video tracker's part configs, infer_device."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from sam3_core import (
    AutoConfig,
    AutoModel,
    AutoProcessor,
    ConfigError,
    Sam3Model,
    Sam3Processor,
    Sam3TrackerMaskGenerator,
    Sam3TrackerVideoConfig,
    Sam3TrackerVideoMaskDecoderConfig,
    Sam3TrackerVideoPromptEncoderConfig,
    Sam3VideoConfig,
    Sam3VideoModel,
    infer_device,
    load_video,
    pipeline,
)
from sam3_core.config import CONFIG_CLASSES
from sam3_core.pipelines import mask_to_rle
from test_images import make_image
from test_videos import make_video


def write_lossless_video(path, frames: list[np.ndarray], fps: int = 10) -> None:
    """An FFV1 (lossless) video, so decoded frames equal the written ones exactly."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "bgr0"
        stream.time_base = Fraction(1, fps)
        for i, frame in enumerate(frames):
            packet_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            packet_frame.pts = i
            container.mux(stream.encode(packet_frame))
        container.mux(stream.encode())


def test_load_video_frames_and_metadata(tmp_path):
    frames = make_video(12, 40, 56, seed=3)
    path = tmp_path / "clip.mkv"
    write_lossless_video(path, frames, fps=10)

    video, meta = load_video(str(path))
    assert video.dtype == np.uint8 and video.shape == (12, 40, 56, 3)
    assert np.array_equal(video, np.stack(frames))
    assert (meta.total_num_frames, meta.width, meta.height, meta.fps) == (12, 56, 40, 10.0)
    assert meta.duration == pytest.approx(1.2) and meta["video_backend"] == "pyav"
    assert list(meta.frames_indices) == list(range(12))

    video, meta = load_video(path, num_frames=4)
    assert list(meta.frames_indices) == [0, 3, 6, 9]
    assert np.array_equal(video, np.stack(frames)[[0, 3, 6, 9]])
    video, meta = load_video(path, fps=5)  # half the frame rate: every other frame
    assert list(meta.frames_indices) == [0, 2, 4, 6, 8, 10]
    assert meta.timestamps == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])

    given = [make_image(20, 20)]
    assert load_video(given) == (given, [None])  # frames already decoded come back unchanged


def test_load_video_errors(tmp_path):
    with pytest.raises(ValueError, match="neither an existing file"):
        load_video(str(tmp_path / "missing.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="not a readable video"):
        load_video(bad)
    path = tmp_path / "clip.mkv"
    write_lossless_video(path, make_video(3, 16, 16))
    with pytest.raises(ValueError, match=r"num_frames=5 is outside 1\.\.3"):
        load_video(path, num_frames=5)
    with pytest.raises(ValueError, match="not both"):
        load_video(path, num_frames=2, fps=1)
    with pytest.raises(ValueError, match="backend 'decord'"):
        load_video(path, backend="decord")


def test_video_part_configs():
    config = Sam3TrackerVideoConfig(
        None, Sam3TrackerVideoPromptEncoderConfig(), Sam3TrackerVideoMaskDecoderConfig(num_hidden_layers=3)
    )
    assert config.mask_decoder_config.num_hidden_layers == 3
    d = config.to_dict()
    assert d["prompt_encoder_config"]["model_type"] == "sam3_tracker_video_prompt_encoder"
    assert d["mask_decoder_config"]["model_type"] == "sam3_tracker_video_mask_decoder"


def test_auto_config(tiny_checkpoint_dir):
    config = AutoConfig.from_pretrained(tiny_checkpoint_dir)
    assert isinstance(config, Sam3VideoConfig) and config.tracker_config.image_size == 224
    for model_type, cls in CONFIG_CLASSES.items():
        assert type(AutoConfig.for_model(model_type)) is cls
    assert AutoConfig.for_model("sam3_tracker", initializer_range=0.5).initializer_range == 0.5
    with pytest.raises(ConfigError, match="model_type 'bert'"):
        AutoConfig.for_model("bert")


def test_auto_model_and_processor_of_the_combined_checkpoint(tiny_repo_dir, detector_model):
    # As in the reference: the combined checkpoint's model type ("sam3_video") is the text-prompted
    # video model, whose detector is the concept model; the processor follows processor_config.json.
    model = AutoModel.from_pretrained(tiny_repo_dir)
    processor = AutoProcessor.from_pretrained(tiny_repo_dir)
    assert isinstance(model, Sam3VideoModel) and isinstance(processor, Sam3Processor)
    assert isinstance(model.detector_model, Sam3Model)
    inputs = processor(images=make_image(150, 200, seed=1), text="ear", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model.detector_model(**inputs).pred_logits, detector_model(**inputs).pred_logits)


def test_mask_generation_pipeline(tracker_model, tiny_checkpoint_dir):
    image = make_image(150, 200, seed=1)
    loose = {"pred_iou_thresh": 0.0, "stability_score_thresh": -1.0}
    generator = pipeline("mask-generation", model=tracker_model)
    out = generator(
        image, points_per_batch=7, points_per_crop=4, output_bboxes_mask=True, output_rle_mask=True, **loose
    )
    records = Sam3TrackerMaskGenerator(
        tracker_model, points_per_side=4, points_per_batch=7, pred_iou_thresh=0.0, stability_score_thresh=-1.0
    ).generate(image)
    assert len(out["masks"]) == len(records) > 0
    for mask, score, box, rle, record in zip(
        out["masks"], out["scores"], out["bounding_boxes"], out["rle_mask"], records, strict=True
    ):
        assert mask.dtype == torch.bool and mask.shape == (150, 200)
        assert np.array_equal(mask.numpy(), record["segmentation"])
        assert float(score) == pytest.approx(record["predicted_iou"])
        x, y, w, h = record["bbox"]
        assert box.tolist() == [x, y, x + w, y + h]
        decoded = np.repeat(np.arange(len(rle["counts"])) % 2, rle["counts"]).astype(bool)
        assert np.array_equal(decoded.reshape(200, 150).T, record["segmentation"])
    by_path = pipeline("mask-generation", model=tiny_checkpoint_dir, device=-1)
    again = by_path(image, points_per_batch=16, points_per_crop=4, **loose)
    # Another batch size is another GEMM shape, which another CPU may serve with another kernel:
    # the scores agree to float32 rounding (one ulp of 0.67 is 6e-8), not bit for bit.
    assert len(again["scores"]) == len(out["scores"])
    torch.testing.assert_close(again["scores"], out["scores"], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="task 'depth-estimation'"):
        pipeline("depth-estimation", model=tracker_model)
    with pytest.raises(ValueError, match="crops_n_layers=1"):
        generator(image, crops_n_layers=1)


def test_rle_and_infer_device():
    mask = torch.tensor([[True, False], [True, True]])
    assert mask_to_rle(mask) == {"size": [2, 2], "counts": [0, 2, 1, 1]}
    assert infer_device() == ("cuda" if torch.cuda.is_available() else infer_device())
    assert infer_device() in ("cuda", "xpu", "mps", "cpu")
