"""Reading a checkpoint's processor settings: `processor_config.json` (its `image_processor` and
`video_processor` sections) or, without one, `config.json`. Fields the processors cannot honour are
refused with the file and the field named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def channels(name: str, values: Sequence[float]) -> tuple[float, float, float]:
    """A per-channel (RGB) mean or std; one number means the same for every channel."""
    if isinstance(values, (int, float)):
        values = [values] * 3
    values = tuple(float(v) for v in values)
    if len(values) != 3 or (name.endswith("std") and min(values) <= 0):
        raise ValueError(
            f"{name} must be 3 numbers (RGB){', all positive' if name.endswith('std') else ''}, got {values}"
        )
    return values  # type: ignore[return-value]


def input_side(size: Any) -> int:
    if isinstance(size, dict):
        if "height" in size and "width" in size:
            if size["height"] != size["width"]:
                raise ValueError(f"the tracker needs a square input size, got {size}")
            return int(size["height"])
        if "longest_edge" in size:
            return int(size["longest_edge"])
        raise ValueError(f"cannot read an input size from {size}")
    if isinstance(size, (list, tuple)):
        return input_side({"height": size[0], "width": size[1]})
    return int(size)


# The reference's resample codes (PIL's): the processors resize with antialiased bilinear only.
BILINEAR = 2


def normalisation_settings(section: dict, path: Path, where: str, prefix: str) -> dict[str, Any]:
    """mean / std / rescale factor of one section of a processor config, as processor arguments
    named `{prefix}mean`, `{prefix}std`, `{prefix}rescale_factor`."""
    settings: dict[str, Any] = {}
    resample = section.get("resample", BILINEAR)
    if resample not in (BILINEAR, "bilinear", None):
        raise ValueError(
            f"{path}: {where}.resample={resample!r} is not supported; the processors resize with "
            f"antialiased bilinear interpolation (resample={BILINEAR})"
        )
    for flag in ("do_resize", "do_convert_rgb"):
        if section.get(flag) is False:
            raise ValueError(f"{path}: {where}.{flag}=false is not supported; the model needs {flag} on")
    rescale = float(section.get("rescale_factor", 1 / 255))
    if section.get("do_rescale") is False:
        rescale = 1.0
    settings[f"{prefix}rescale_factor" if prefix else "rescale_factor"] = rescale
    if section.get("do_normalize") is False:
        settings[f"{prefix}mean"], settings[f"{prefix}std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        for key in ("mean", "std"):
            if f"image_{key}" in section:
                settings[f"{prefix}{key}"] = section[f"image_{key}"]
    return settings


def settings_from_processor_config(data: dict, path: Path, video: bool = False) -> dict[str, Any]:
    """Processor arguments from a `processor_config.json` (its `image_processor` section, and with
    `video` its `video_processor` section for the frames of a video)."""
    image = data.get("image_processor", data)
    settings: dict[str, Any] = {}
    if "size" in image:
        settings["size"] = input_side(image["size"])
    if "mask_size" in image:
        settings["mask_size"] = input_side(image["mask_size"])
    image_norm = normalisation_settings(image, path, "image_processor", "image_")
    image_norm["rescale_factor"] = image_norm.pop("image_rescale_factor", image_norm.get("rescale_factor"))
    settings.update({k: v for k, v in image_norm.items() if v is not None})
    section = data.get("video_processor")
    if video and isinstance(section, dict):
        if "size" in section and input_side(section["size"]) != settings.get(
            "size", input_side(section["size"])
        ):
            raise ValueError(
                f"{path}: video_processor.size {section['size']} differs from image_processor.size "
                f"{image.get('size')}; both must be the model's input size"
            )
        settings.update(normalisation_settings(section, path, "video_processor", "video_"))
    if data.get("target_size") is not None:
        settings["target_size"] = int(data["target_size"])
    if data.get("point_pad_value") is not None:
        settings["point_pad_value"] = int(data["point_pad_value"])
    return settings


def settings_from_model_config(data: dict) -> dict[str, Any]:
    tracker = data.get("tracker_config", data)
    size = tracker.get("image_size")
    if size is None:
        size = tracker.get("prompt_encoder_config", {}).get("image_size")
    if size is None:
        size = tracker.get("vision_config", {}).get("backbone_config", {}).get("image_size")
    if size is None:
        return {}
    side = input_side(size)
    patch = tracker.get("prompt_encoder_config", {}).get("patch_size", 14)
    return {"size": side, "mask_size": 4 * (side // input_side(patch))}
