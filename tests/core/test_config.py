"""Config dataclasses: reference field names and defaults, combined and single configs, bad values."""

from __future__ import annotations

import json

import pytest
from sam3_core import (
    ConfigError,
    Sam3Config,
    Sam3TrackerConfig,
    Sam3TrackerVideoConfig,
    Sam3VideoConfig,
    Sam3VisionConfig,
    Sam3ViTConfig,
)
from sam3_core.config import config_from_dict
from tiny_checkpoint import TINY_DIR


def tiny() -> dict:
    return json.loads((TINY_DIR / "config.json").read_text())


def test_defaults_are_the_full_model():
    vit = Sam3ViTConfig()
    assert (vit.hidden_size, vit.num_hidden_layers, vit.image_size, vit.patch_size) == (1024, 32, 1008, 14)
    assert vit.global_attn_indexes == [7, 15, 23, 31] and vit.window_size == 24
    assert Sam3VisionConfig().scale_factors == [4.0, 2.0, 1.0, 0.5]
    assert Sam3Config().text_config.hidden_size == 1024
    assert Sam3Config().detr_decoder_config.num_queries == 200
    video = Sam3TrackerVideoConfig()
    assert video.memory_attention_rope_feat_sizes == [72, 72]
    assert video.vision_config.backbone_feature_sizes == [[288, 288], [144, 144], [72, 72]]


def test_combined_tiny_config():
    cfg = Sam3VideoConfig.from_dict(tiny())
    assert cfg.detector_config.vision_config.backbone_config.hidden_size == 64
    assert cfg.detector_config.text_config.vocab_size == 1000
    assert cfg.tracker_config.image_size == 224
    assert cfg.tracker_config.prompt_encoder_config.image_size == 224
    assert cfg.tracker_config.memory_attention_rope_feat_sizes == [16, 16]
    assert cfg.tracker_config.vision_config.backbone_feature_sizes == [[64, 64], [32, 32], [16, 16]]
    assert isinstance(config_from_dict(tiny()), Sam3VideoConfig)


def test_single_model_configs_and_unknown_keys():
    data = tiny()
    det = Sam3Config.from_dict(data["detector_config"])
    assert det.mask_decoder_config.num_upsampling_stages == 3
    trk = Sam3TrackerConfig.from_dict({**data["tracker_config"], "some_future_key": 1})
    assert trk.mask_decoder_config.num_multimask_outputs == 3
    assert trk.to_dict()["model_type"] == "sam3_tracker"


@pytest.mark.parametrize(
    "cls, data, message",
    [
        (Sam3ViTConfig, {"hidden_size": "big"}, r"hidden_size: expected"),
        (Sam3ViTConfig, {"hidden_size": 100, "num_attention_heads": 3}, "not divisible"),
        (Sam3ViTConfig, {"num_hidden_layers": 2, "global_attn_indexes": [5]}, r"\[5\] are outside"),
        (Sam3ViTConfig, {"window_size": 0}, "window_size must be positive"),
        (Sam3ViTConfig, {"rope_parameters": {"rope_type": "linear"}}, "only 'axial'"),
        (Sam3VisionConfig, {"scale_factors": [3.0]}, "unsupported"),
        (Sam3VisionConfig, {"backbone_config": 5}, "expected a dict"),
        (Sam3TrackerVideoConfig, {"num_maskmem": 0}, "num_maskmem must be positive"),
        (Sam3TrackerVideoConfig, {"multimask_output_in_sam": "yes"}, "multimask_output_in_sam"),
    ],
)
def test_bad_values_are_named(cls, data, message):
    with pytest.raises(ConfigError, match=message):
        cls.from_dict(data)


def test_unknown_model_type():
    with pytest.raises(ConfigError, match="unknown model_type 'bert'"):
        config_from_dict({"model_type": "bert"})
