"""`config_from_dict` (and so `AutoConfig`) knows EdgeTAM's model types and its sub-configs'."""

from __future__ import annotations

import json

import pytest
from sam3_core import (
    AutoConfig,
    ConfigError,
    EdgeTamVideoConfig,
    EdgeTamVideoMaskDecoderConfig,
    EdgeTamVideoPromptEncoderConfig,
    EdgeTamVisionConfig,
)
from sam3_core.config import CONFIG_CLASSES, EdgeTamBackboneConfig, config_from_dict
from tiny_checkpoint import HERE

EDGETAM_CONFIG = HERE / "tiny_edgetam" / "config.json"


def test_edgetam_video_config_and_its_parts_from_dict():
    data = json.loads(EDGETAM_CONFIG.read_text())
    config = config_from_dict(data)
    assert isinstance(config, EdgeTamVideoConfig)
    assert isinstance(config.vision_config, EdgeTamVisionConfig)
    assert isinstance(config.vision_config.backbone_config, EdgeTamBackboneConfig)
    assert isinstance(config.prompt_encoder_config, EdgeTamVideoPromptEncoderConfig)
    assert isinstance(config.mask_decoder_config, EdgeTamVideoMaskDecoderConfig)
    assert config.prompt_encoder_config.image_size == 128 and config.mask_decoder_config.hidden_size == 128
    # every sub-config dict names a model type that config_from_dict builds on its own
    parts = {
        "vision_config": EdgeTamVisionConfig,
        "prompt_encoder_config": EdgeTamVideoPromptEncoderConfig,
        "mask_decoder_config": EdgeTamVideoMaskDecoderConfig,
    }
    for key, cls in parts.items():
        assert type(config_from_dict(data[key])) is cls
    assert type(config_from_dict(data["vision_config"]["backbone_config"])) is EdgeTamBackboneConfig
    assert config_from_dict(config.to_dict()).to_dict() == config.to_dict()
    assert CONFIG_CLASSES["edgetam_video"] is EdgeTamVideoConfig


def test_auto_config_reads_an_edgetam_folder(tmp_path):
    (tmp_path / "config.json").write_text(EDGETAM_CONFIG.read_text())
    assert isinstance(AutoConfig.from_pretrained(tmp_path), EdgeTamVideoConfig)


def test_unknown_model_type_lists_edgetam():
    with pytest.raises(ConfigError, match="edgetam_video"):
        config_from_dict({"model_type": "sam4"})
