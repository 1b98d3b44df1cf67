"""SAM 3 and EdgeTAM checkpoints with RANDOM weights in the hub layout, loaded by the real loader.

Test tooling, not runtime: the loaders never write weights and do not know these names. The CLI and
the demo resolve a random checkpoint's name at their edge (`resolve_name`: `--model tiny-random`,
`--model tiny-random-litetext`, `--video-model tiny-random-edgetam`) into a cache folder, then load
that folder like any other; the tests build the same tiny checkpoints from their committed key
manifests, and bigger configs serve to measure loading. Masks from random weights are meaningless.

Values are deterministic: NumPy's legacy `RandomState`, whose streams NumPy keeps stable across
versions, seeded by each tensor's own name, so adding or removing a key never changes the others.
The file is written one tensor at a time, so a full-size checkpoint never sits in memory.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sam3_core import EdgeTamVideoModel, Sam3LiteTextModel, Sam3Model, Sam3TrackerVideoModel
from sam3_core.checkpoint_keys import DETECTOR, EDGETAM_VIDEO, LITE_TEXT_DETECTOR, VIDEO_TRACKER

from .tiny_tokenizer import write_tiny_tokenizer

__all__ = [
    "RANDOM_CHECKPOINTS",
    "TINY_RANDOM",
    "TINY_RANDOM_EDGETAM",
    "TINY_RANDOM_LITE_TEXT",
    "hub_manifest",
    "make_state_dict",
    "tensor_values",
    "tiny_random_checkpoint",
    "tiny_random_edgetam_checkpoint",
    "tiny_random_lite_text_checkpoint",
    "lite_text_config",
    "resolve_name",
    "write_random_checkpoint",
    "write_random_weights",
]

TINY_RANDOM = "tiny-random"  # the model name that selects it (`--model tiny-random`)
TINY_RANDOM_EDGETAM = "tiny-random-edgetam"  # the tiny EdgeTAM video tracker (`--video-model ...`)
TINY_RANDOM_LITE_TEXT = "tiny-random-litetext"  # the tiny SAM3-LiteText (`--model tiny-random-litetext`)
EDGETAM_MODEL_TYPE = "edgetam_video"
LITE_TEXT_MODEL_TYPE = "sam3_lite_text"

# The tiny LiteText's text encoder: S0's shape (RepMixer blocks around attention layers, the 11-tap
# kernel, 16 learnt positions) at the tiny detector's widths; vocabulary: the tiny tokenizer's.
TINY_LITE_TEXT_ENCODER = {
    "model_type": "sam3_lite_text_text_model",
    "vocab_size": 1000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "projection_dim": 32,
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "max_position_embeddings": 16,
    "use_repmixer_blocks": True,
    "repmixer_kernel_size": 11,
}

Manifest = Mapping[str, Sequence[int]]  # hub key → shape


def tensor_values(key: str, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Deterministic float32 values for checkpoint tensor `key`, scaled like a trained network:
    weights ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1²), BatchNorm variances 1 + |N(0, 0.1²)|,
    other vectors ~ N(0, 0.1²)."""
    rng = np.random.RandomState((zlib.crc32(key.encode()) + 7919 * seed) % (2**32))
    values = rng.standard_normal(size=tuple(shape)).astype(np.float32)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:])) or 1
        return values / np.float32(np.sqrt(fan_in))
    if "norm" in key and key.endswith("weight"):
        return 1.0 + 0.1 * values
    if key.endswith("running_var"):  # BatchNorm variances (EdgeTAM's RepViT) must be positive
        return 1.0 + 0.1 * np.abs(values)
    return 0.1 * values


def make_state_dict(manifest: Manifest, seed: int = 0) -> dict[str, np.ndarray]:
    """Every tensor of `manifest` in memory (for small manifests; `write_random_weights` streams)."""
    return {key: tensor_values(key, shape, seed) for key, shape in manifest.items()}


def hub_manifest(config: dict[str, Any]) -> dict[str, list[int]]:
    """key → shape of the checkpoint of a config dict, under its hub names (the models are built on
    the meta device, so any size is free).

    A combined `sam3_video` config gives the detector's and the video tracker's tensors (the image
    tracker's are a subset of the video tracker's); an `edgetam_video` config, EdgeTAM's; a
    `sam3_lite_text` config, the LiteText detector's (the hub's single-model layout)."""
    with torch.device("meta"):
        if config.get("model_type") == LITE_TEXT_MODEL_TYPE:
            models = [
                (LITE_TEXT_DETECTOR, Sam3LiteTextModel(Sam3LiteTextModel.config_from_checkpoint_dict(config)))
            ]
        elif config.get("model_type") == EDGETAM_MODEL_TYPE:
            models = [
                (EDGETAM_VIDEO, EdgeTamVideoModel(EdgeTamVideoModel.config_from_checkpoint_dict(config)))
            ]
        else:
            models = [
                (DETECTOR, Sam3Model(Sam3Model.config_from_checkpoint_dict(config))),
                (
                    VIDEO_TRACKER,
                    Sam3TrackerVideoModel(Sam3TrackerVideoModel.config_from_checkpoint_dict(config)),
                ),
            ]
    manifest: dict[str, list[int]] = {}
    for layout, model in models:
        for key, tensor in model.state_dict().items():
            hub_key, shape = layout.to_hub(key), list(tensor.shape)
            if manifest.setdefault(hub_key, shape) != shape:  # the shared backbone must agree
                raise ValueError(f"{hub_key}: shapes {manifest[hub_key]} and {shape} in one checkpoint")
    return manifest


def write_random_weights(path: str | os.PathLike, manifest: Manifest, seed: int = 0) -> Path:
    """Write a float32 safetensors file of `manifest` filled by `tensor_values`, tensor by tensor."""
    path = Path(path)
    keys = sorted(manifest)
    header: dict[str, Any] = {}
    offset = 0
    for key in keys:
        nbytes = 4 * int(np.prod(manifest[key], dtype=np.int64))
        header[key] = {
            "dtype": "F32",
            "shape": list(manifest[key]),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # safetensors aligns the data to 8 bytes
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for key in keys:
            f.write(np.ascontiguousarray(tensor_values(key, manifest[key], seed), dtype="<f4").data)
    os.replace(tmp, path)
    return path


def write_random_checkpoint(
    out_dir: str | os.PathLike,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    manifest: Manifest | None = None,
) -> Path:
    """Write config.json + model.safetensors (+ the tiny tokenizer for SAM 3) into `out_dir`.

    config: a combined `sam3_video`, an `edgetam_video` or a `sam3_lite_text` config dict; the tiny
        SAM 3 one when None.
    manifest: hub key → shape; derived from our models for `config` when None.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = _packaged_config("tiny_config.json")
    write_random_weights(out_dir / "model.safetensors", manifest or hub_manifest(config), seed)
    (out_dir / "config.json").write_text(json.dumps(config, indent=1))
    if config.get("model_type") == EDGETAM_MODEL_TYPE:
        what = "EdgeTAM video tracker"
    else:
        what = "SAM3-LiteText" if config.get("model_type") == LITE_TEXT_MODEL_TYPE else "SAM 3"
        write_tiny_tokenizer(out_dir)  # the concept detector reads tokenizer.json
    (out_dir / "README.txt").write_text(f"{what} checkpoint with RANDOM weights: for smoke tests only.\n")
    return out_dir


def _packaged_config(name: str) -> dict[str, Any]:
    return json.loads(resources.files("sam3_sdk.testing.data").joinpath(name).read_text())


def _cache_base(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir or os.environ.get("SAM3_CACHE", Path.home() / ".cache" / "sam3"))


def tiny_random_checkpoint(cache_dir: str | os.PathLike | None = None) -> Path:
    """The tiny random SAM 3 checkpoint in a cache folder (written on first use)."""
    folder = _cache_base(cache_dir) / TINY_RANDOM
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        write_random_checkpoint(folder)
    return folder


def tiny_random_edgetam_checkpoint(cache_dir: str | os.PathLike | None = None) -> Path:
    """The tiny random EdgeTAM checkpoint (128 px input) in a cache folder (written on first use)."""
    folder = _cache_base(cache_dir) / TINY_RANDOM_EDGETAM
    if not (folder / "model.safetensors").is_file():
        write_random_checkpoint(folder, config=_packaged_config("tiny_edgetam_config.json"))
    return folder


def lite_text_config(sam3_config: dict[str, Any], text_config: dict[str, Any]) -> dict[str, Any]:
    """A `sam3_lite_text` config dict: the detector of a combined SAM 3 config with `text_config`
    as its text encoder (the LiteText part configs under their own model types)."""
    detector = dict(sam3_config.get("detector_config", sam3_config))
    config = {k: v for k, v in detector.items() if k not in ("text_config", "model_type")}
    for key in (
        "geometry_encoder_config",
        "detr_encoder_config",
        "detr_decoder_config",
        "mask_decoder_config",
    ):
        part = config.get(key) or {}
        config[key] = {**part, "model_type": "sam3_lite_text_" + key.removesuffix("_config")}
    return {"model_type": LITE_TEXT_MODEL_TYPE, **config, "text_config": dict(text_config)}


def tiny_random_lite_text_checkpoint(cache_dir: str | os.PathLike | None = None) -> Path:
    """The tiny random SAM3-LiteText checkpoint (the tiny SAM 3 detector with a tiny S0-shaped text
    encoder, no tracker) in a cache folder (written on first use)."""
    folder = _cache_base(cache_dir) / TINY_RANDOM_LITE_TEXT
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        config = lite_text_config(_packaged_config("tiny_config.json"), TINY_LITE_TEXT_ENCODER)
        write_random_checkpoint(folder, config=config)
    return folder


# The model names that select a random checkpoint → the function that writes (once) and finds it.
RANDOM_CHECKPOINTS = {
    TINY_RANDOM: tiny_random_checkpoint,
    TINY_RANDOM_EDGETAM: tiny_random_edgetam_checkpoint,
    TINY_RANDOM_LITE_TEXT: tiny_random_lite_text_checkpoint,
}


def resolve_name(
    name: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None
) -> str | os.PathLike | None:
    """The folder of a random checkpoint's name (`tiny-random`, `tiny-random-edgetam`,
    `tiny-random-litetext`; written into `cache_dir`, default $SAM3_CACHE or ~/.cache/sam3, on
    first use), else `name` unchanged (a hub id, a folder or None, for the runtime loader).

    For the edges that accept these names (the `sam3` CLI, the demo, scripts); the SDK's loaders
    take only hub ids and folders."""
    if isinstance(name, str) and name in RANDOM_CHECKPOINTS:
        return RANDOM_CHECKPOINTS[name](cache_dir)
    return name
