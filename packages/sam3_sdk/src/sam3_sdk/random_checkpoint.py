"""A tiny checkpoint with RANDOM weights, for offline smoke runs of the demo and the CLI.

Its masks are meaningless; it exists so that everything can be exercised without the real (gated,
3.4 GB) `facebook/sam3` weights. It is written in the hub layout and loaded by the real loader.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch

__all__ = ["TINY_RANDOM", "write_random_checkpoint", "tiny_random_checkpoint"]

TINY_RANDOM = "tiny-random"  # the model name that selects it (`--model tiny-random`)


def _hub_key_tracker(key: str) -> str:
    if key.startswith("vision_encoder.backbone."):
        return "detector_model." + key
    if key.startswith("vision_encoder.neck."):
        return "tracker_neck." + key[len("vision_encoder.neck.") :]
    return "tracker_model." + key


def write_random_checkpoint(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write config.json + model.safetensors of the tiny config with random weights into `out_dir`."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads(resources.files("sam3_sdk.data").joinpath("tiny_config.json").read_text())
    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    from sam3_core import Sam3TrackerModel

    tracker = Sam3TrackerModel(Sam3TrackerModel.config_from_checkpoint_dict(config))
    state.update({_hub_key_tracker(k): v for k, v in tracker.state_dict().items()})
    try:  # the other heads, when this version has them
        from sam3_core import Sam3Model

        detector = Sam3Model(Sam3Model.config_from_checkpoint_dict(config))
        state.update({"detector_model." + k: v for k, v in detector.state_dict().items()})
    except ImportError:
        pass
    try:
        from sam3_core import Sam3TrackerVideoModel

        video = Sam3TrackerVideoModel(Sam3TrackerVideoModel.config_from_checkpoint_dict(config))
        state.update({_hub_key_tracker(k): v for k, v in video.state_dict().items()})
    except ImportError:
        pass
    tmp = out_dir / "model.safetensors.tmp"
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out_dir / "model.safetensors")
    (out_dir / "config.json").write_text(json.dumps(config, indent=1))
    from .tiny_tokenizer import write_tiny_tokenizer

    write_tiny_tokenizer(out_dir)  # the concept detector reads tokenizer.json
    (out_dir / "README.txt").write_text("Tiny SAM 3 checkpoint with RANDOM weights: for smoke tests only.\n")
    return out_dir


def tiny_random_checkpoint(cache_dir: str | os.PathLike | None = None) -> Path:
    """The tiny random checkpoint in a cache folder (written on first use)."""
    base = Path(cache_dir or os.environ.get("SAM3_CACHE", Path.home() / ".cache" / "sam3"))
    folder = base / "tiny-random"
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        write_random_checkpoint(folder)
    return folder
