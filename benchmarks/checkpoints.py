"""Random-weight checkpoints at the real widths, written once into `benchmarks/cache/`.

SAM 3: the full `facebook/sam3` config (the defaults of `Sam3VideoConfig`), optionally with the
ViT cut to fewer blocks for quick runs. EdgeTAM: the hub config's widths (RepViT-M1, 1024 px).
SAM3-LiteText: SAM 3's detector (the same ViT depth) with the S0, S1 or L text encoder at the hub
checkpoints' shapes.
The weights are those of the SDK's random writer (deterministic per tensor name).
"""

from __future__ import annotations

import json
from pathlib import Path

CACHE = Path(__file__).resolve().parent / "cache"
FULL_LAYERS = 32

# EdgeTAM's hub config, reduced to what differs from the config classes' defaults.
EDGETAM_CONFIG = {
    "model_type": "edgetam_video",
    "vision_config": {
        "model_type": "edgetam_vision_model",
        "backbone_config": {
            "model_type": "timm_wrapper",
            "architecture": "repvit_m1",
            "num_classes": 0,
            "model_args": {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]},
        },
    },
}


# The hub LiteText text encoders (MobileCLIP students; 16 learnt positions, width / 64 heads, 4x MLP).
LITE_TEXT_SIZES = {
    "s0": {"hidden_size": 512, "num_hidden_layers": 6, "use_repmixer_blocks": True},
    "s1": {"hidden_size": 512, "num_hidden_layers": 12, "use_repmixer_blocks": False},
    "l": {"hidden_size": 768, "num_hidden_layers": 12, "use_repmixer_blocks": False},
}


def lite_text_encoder_config(size: str) -> dict:
    shape = LITE_TEXT_SIZES[size]
    width = shape["hidden_size"]
    return {
        "model_type": "sam3_lite_text_text_model",
        **shape,
        "intermediate_size": 4 * width,
        "num_attention_heads": width // 64,
        "projection_dim": width,
        "max_position_embeddings": 16,
    }


def lite_text_checkpoint(size: str, layers: int = FULL_LAYERS) -> Path:
    """The cached SAM3-LiteText checkpoint of `size` ("s0", "s1", "l") with `layers` ViT blocks, in
    the hub layout (written on first use)."""
    from sam3_core import Sam3Processor
    from sam3_sdk.testing import lite_text_config, write_random_checkpoint

    folder = CACHE / f"litetext-{size}-{layers}L"
    if not _complete(folder):
        write_random_checkpoint(
            folder, config=lite_text_config(sam3_config(layers), lite_text_encoder_config(size))
        )
    if not (folder / "processor_config.json").is_file():
        Sam3Processor.from_pretrained(folder).save_pretrained(folder)
    return folder


def full_params(size: str) -> dict:
    """Parameters of the concept model at full depth (32 ViT blocks) and of its text encoder
    (with the projection to the detector's width): "sam3" is SAM 3's, else a LiteText size's."""
    import torch
    from sam3_core import Sam3LiteTextModel, Sam3Model
    from sam3_sdk.testing import lite_text_config

    config = sam3_config()
    with torch.device("meta"):
        if size == "sam3":
            model = Sam3Model(Sam3Model.config_from_checkpoint_dict(config))
        else:
            lite = lite_text_config(config, lite_text_encoder_config(size))
            model = Sam3LiteTextModel(Sam3LiteTextModel.config_from_checkpoint_dict(lite))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {"model": count(model), "text": count(model.text_encoder) + count(model.text_projection)}


def global_layers(layers: int) -> list[int]:
    """Global-attention blocks of a ViT cut to `layers`: every 8th as in the full model (7, 15, 23,
    31), and at least the last one."""
    picked = [i for i in range(layers) if (i + 1) % 8 == 0]
    return picked or [layers - 1]


def sam3_config(layers: int = FULL_LAYERS) -> dict:
    """The full SAM 3 combined config with `layers` ViT blocks."""
    from sam3_core import Sam3VideoConfig

    config = Sam3VideoConfig().to_dict()
    for part in ("detector_config", "tracker_config"):
        vit = config[part]["vision_config"]["backbone_config"]
        vit.update(num_hidden_layers=layers, global_attn_indexes=global_layers(layers))
    return config


def _complete(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def sam3_checkpoint(layers: int = FULL_LAYERS) -> Path:
    """The cached SAM 3 checkpoint folder with `layers` ViT blocks (written on first use)."""
    from sam3_core import Sam3VideoProcessor
    from sam3_sdk.testing import write_random_checkpoint

    folder = CACHE / f"sam3-{layers}L"
    if not _complete(folder):
        write_random_checkpoint(folder, config=sam3_config(layers))
    if not (folder / "processor_config.json").is_file():  # the reference's Sam3VideoProcessor needs it
        Sam3VideoProcessor.from_pretrained(folder).save_pretrained(folder)
    return folder


def edgetam_checkpoint() -> Path:
    """The cached EdgeTAM checkpoint at its hub widths (key manifest from our model)."""
    import torch
    from sam3_core import EdgeTamVideoConfig, EdgeTamVideoModel
    from sam3_sdk.testing import write_random_checkpoint

    folder = CACHE / "edgetam"
    if not _complete(folder):
        with torch.device("meta"):
            model = EdgeTamVideoModel(EdgeTamVideoConfig.from_dict(json.loads(json.dumps(EDGETAM_CONFIG))))
        manifest = {k: list(v.shape) for k, v in model.state_dict().items()}
        write_random_checkpoint(folder, config=EDGETAM_CONFIG, manifest=manifest)
    return folder
