"""The `processor_config.json` the processors write: the reference's layout (image-processor
settings nested under `image_processor`, plus `target_size`, `point_pad_value`, `processor_class`),
which their `from_pretrained` and the reference's read back."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .processor_config import RESAMPLE_CODES, resample_name

__all__ = ["PROCESSOR_CONFIG_NAME", "image_processor_settings", "write_processor_config"]

PROCESSOR_CONFIG_NAME = "processor_config.json"
_RESCALE = 1 / 255


def image_processor_settings(
    size: int,
    mask_size: int | None,
    type_name: str,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    rescale_factor: float = _RESCALE,
    resample: str | int = "bilinear",
) -> dict[str, Any]:
    """The `image_processor` (or `video_processor`) section: square resize to `size` with
    `resample` (stored as its PIL code), then `(x * rescale_factor - mean) / std` (SAM 3's
    defaults map [0, 255] to [-1, 1])."""
    codes = {name: code for code, name in RESAMPLE_CODES.items()}
    out: dict[str, Any] = {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [float(v) for v in mean],
        "image_std": [float(v) for v in std],
        "resample": codes[resample_name(resample)],
        "rescale_factor": float(rescale_factor),
        "size": {"height": size, "width": size},
    }
    out["image_processor_type" if "Image" in type_name else "video_processor_type"] = type_name
    if mask_size is not None:
        out["mask_size"] = {"height": mask_size, "width": mask_size}
    return out


def write_processor_config(save_directory: str | os.PathLike, config: dict[str, Any]) -> Path:
    """Write `processor_config.json` into `save_directory` (created if needed); returns its path."""
    folder = Path(save_directory)
    if folder.is_file():
        raise ValueError(f"{folder} is a file; save_pretrained needs a directory")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PROCESSOR_CONFIG_NAME
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
