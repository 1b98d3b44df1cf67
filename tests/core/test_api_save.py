"""save_pretrained → from_pretrained round trips (ours → ours): configs, the three models (hub key
layout, every config field) and the three processors give back the same objects and outputs."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open
from sam3_core import (
    AutoConfig,
    AutoModel,
    AutoProcessor,
    Sam3Processor,
    Sam3TrackerModel,
    Sam3TrackerProcessor,
    Sam3TrackerVideoModel,
    Sam3TrackerVideoProcessor,
    Sam3VideoConfig,
)
from test_images import make_image

IMAGE = make_image(150, 200, seed=1)


def test_config_round_trip(tiny_checkpoint_dir, tmp_path):
    config = AutoConfig.from_pretrained(tiny_checkpoint_dir)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == json.loads(json.dumps(config.to_dict()))
    assert saved["transformers_version"] and "return_dict" in saved["tracker_config"]
    again = Sam3VideoConfig.from_dict(saved)
    assert again.to_dict() == config.to_dict()


def test_detector_round_trip(detector_model, detector_processor, tmp_path):
    detector_model.save_pretrained(tmp_path)
    detector_processor.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert all(k.startswith("detector_model.") for k in f.keys())
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "sam3" and config["architectures"] == ["Sam3Model"]
    model, processor = AutoModel.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(processor, Sam3Processor)
    inputs = processor(images=IMAGE, text="ear")
    assert torch.equal(inputs["input_ids"], detector_processor(images=IMAGE, text="ear")["input_ids"])
    with torch.no_grad():
        a, b = model(**inputs), detector_model(**inputs)
    assert torch.equal(a.pred_masks, b.pred_masks) and torch.equal(a.pred_logits, b.pred_logits)


def _tracker_outputs(model, processor):
    inputs = processor(images=IMAGE, input_points=[[[[80, 60]]]], input_labels=[[[1]]])
    with torch.no_grad():
        return model(**inputs)


def test_tracker_round_trip(tracker_model, tracker_processor, tmp_path):
    tracker_model.save_pretrained(tmp_path)
    tracker_processor.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "tracker_model.prompt_encoder.point_embed.weight" in keys or any(
        k.startswith("tracker_model.prompt_encoder.") for k in keys
    )
    assert any(k.startswith("tracker_neck.") for k in keys)
    assert any(k.startswith("detector_model.vision_encoder.backbone.") for k in keys)
    model, processor = AutoModel.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)
    assert type(model) is Sam3TrackerModel and type(processor) is Sam3TrackerProcessor
    a, b = _tracker_outputs(model, processor), _tracker_outputs(tracker_model, tracker_processor)
    assert torch.equal(a.pred_masks, b.pred_masks) and torch.equal(a.iou_scores, b.iou_scores)


def test_video_tracker_round_trip_in_bf16(video_model, video_processor, tmp_path):
    bf16 = Sam3TrackerVideoModel(video_model.config)
    bf16.load_state_dict(video_model.state_dict())
    bf16 = bf16.to(torch.bfloat16).eval()
    bf16.save_pretrained(tmp_path)
    video_processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["model_type"] == "sam3_tracker_video"
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert type(loaded) is Sam3TrackerVideoModel and type(AutoProcessor.from_pretrained(tmp_path)) is (
        Sam3TrackerVideoProcessor
    )
    for (name, ours), theirs in zip(loaded.state_dict().items(), bf16.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs), name
