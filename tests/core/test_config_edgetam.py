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


# Names timm's create_model accepts for the variants we build (checked with timm in the reference
# environment): the registry name, a published pretrained tag, an empty tag, a timm hub repository.
TIMM_NAMES = {
    "repvit_m1": "repvit_m1",
    "repvit_m1.dist_in1k": "repvit_m1",  # the reference's own EdgeTAM configs name it so
    "repvit_m1.": "repvit_m1",
    "repvit_m0_9.dist_450e_in1k": "repvit_m0_9",
    "repvit_m2_3.dist_300e_in1k": "repvit_m2_3",
    "hf-hub:timm/repvit_m1.dist_in1k": "repvit_m1",
    "hf_hub:timm/repvit_m3.dist_in1k@main": "repvit_m3",
}


@pytest.mark.parametrize("name", list(TIMM_NAMES))
def test_backbone_accepts_every_timm_name_of_a_variant(name):
    config = EdgeTamBackboneConfig(architecture=name)
    assert config.variant == TIMM_NAMES[name]
    plain = EdgeTamBackboneConfig(architecture=TIMM_NAMES[name])
    assert (config.embed_dim, config.depth, config.legacy) == (plain.embed_dim, plain.depth, plain.legacy)
    assert config.to_dict()["architecture"] == name  # saved as written


@pytest.mark.parametrize(
    "name, message",
    [
        ("resnet50", "not a RepViT we can build"),
        ("REPVIT_M1", "not a RepViT we can build"),  # timm's registry is case sensitive
        ("repvit_m1.foo", "pretrained tag 'foo'"),
        ("repvit_m1.dist_300e_in1k", "pretrained tag 'dist_300e_in1k'"),  # another variant's tag
        ("timm/repvit_m1", "not a RepViT"),  # timm wants a source prefix for a repository
        ("hf-hub:someone/repvit_m1", "'hf-hub' source"),  # its config.json, not its name, decides
        ("local-dir:/models/repvit", "'local-dir' source"),
        ("ftp:repvit_m1", "model source 'ftp'"),
    ],
)
def test_backbone_refuses_names_timm_would_not_build_as_a_repvit(name, message):
    with pytest.raises(ConfigError, match=message):
        EdgeTamBackboneConfig(architecture=name)


def test_from_pretrained_loads_a_checkpoint_naming_the_tagged_timm_model(tmp_path):
    import torch
    from sam3_core import EdgeTamVideoModel
    from tiny_checkpoint import write_tiny_checkpoint

    plain_dir = write_tiny_checkpoint(tmp_path / "plain", source_dir=HERE / "tiny_edgetam")
    tagged_dir = write_tiny_checkpoint(tmp_path / "tagged", source_dir=HERE / "tiny_edgetam")
    config = json.loads((tagged_dir / "config.json").read_text())
    config["vision_config"]["backbone_config"]["architecture"] = "repvit_m1.dist_in1k"
    (tagged_dir / "config.json").write_text(json.dumps(config))

    tagged = EdgeTamVideoModel.from_pretrained(tagged_dir)
    plain = EdgeTamVideoModel.from_pretrained(plain_dir)
    assert tagged.config.vision_config.backbone_config.architecture == "repvit_m1.dist_in1k"
    # same weights, same modules: the same backbone features, computed the same way
    pixels = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = tagged.vision_encoder.backbone(pixels)
        expected = plain.vision_encoder.backbone(pixels)
    assert [f.shape for f in ours] == [f.shape for f in expected]
    assert all(torch.equal(a, b) for a, b in zip(ours, expected))
