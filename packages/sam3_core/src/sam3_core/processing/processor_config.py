"""Reading a checkpoint's processor settings: `processor_config.json` (its `image_processor` and
`video_processor` sections) or, without one, `config.json`.

Every field the reference's processors act on is honoured (size, resample, rescale, normalisation,
mask size, target size, point pad value); a value the models cannot use is refused with the file,
the field and the accepted values named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..scalars import is_int, is_number

__all__ = [
    "RESAMPLE_CODES",
    "channels",
    "input_side",
    "resample_name",
    "section_settings",
    "settings_from_model_config",
    "settings_from_processor_config",
]


def channels(name: str, values: Sequence[float]) -> tuple[float, float, float]:
    """A per-channel (RGB) mean or std; one number means the same for every channel."""
    if is_number(values):
        values = [values] * 3
    values = tuple(float(v) for v in values)
    if len(values) != 3 or (name.endswith("std") and min(values) <= 0):
        raise ValueError(
            f"{name} must be 3 numbers (RGB){', all positive' if name.endswith('std') else ''}, got {values}"
        )
    return values  # type: ignore[return-value]


def input_side(size: Any, where: str = "size") -> int:
    """The side of a square size given as an int, `[h, w]` or `{"height": h, "width": w}`."""
    if isinstance(size, dict):
        if "height" in size and "width" in size:
            if size["height"] != size["width"]:
                raise ValueError(f"{where}={size} is not square; the models need {{'height': S, 'width': S}}")
            return int(size["height"])
        raise ValueError(
            f"{where}={size} is not supported; the models need a square {{'height': S, 'width': S}} "
            "(aspect-preserving sizes such as shortest_edge / longest_edge cannot be fed to them)"
        )
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return input_side({"height": size[0], "width": size[1]}, where)
    if is_number(size) and int(size) == size and size > 0:
        return int(size)
    raise ValueError(f"{where}={size!r} is not a size; expected {{'height': S, 'width': S}} or an int")


# PIL's resample codes, as processor_config.json stores them, and the names the processors use.
# Box (4) and Hamming (5) have no tensor resize in the reference either.
RESAMPLE_CODES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
_ACCEPTED_RESAMPLE = ", ".join(f"{code} ({name})" for code, name in sorted(RESAMPLE_CODES.items()))


def resample_name(value: Any, where: str = "resample") -> str:
    """`resample` as a PIL code (0, 1, 2, 3) or a name -> "nearest" | "lanczos" | "bilinear" | "bicubic"."""
    if isinstance(value, str) and value.lower() in RESAMPLE_CODES.values():
        return value.lower()
    if is_int(value) and value in RESAMPLE_CODES:
        return RESAMPLE_CODES[int(value)]
    raise ValueError(f"{where}={value!r} is not supported; accepted values: {_ACCEPTED_RESAMPLE}")


def _square_or_default(section: dict, key: str, where: str) -> int | None:
    return input_side(section[key], f"{where}.{key}") if section.get(key) is not None else None


def section_settings(section: dict, path: Path | str, where: str) -> dict[str, Any]:
    """Settings of one `image_processor` / `video_processor` section: `size`, `mask_size`,
    `resample`, `rescale_factor`, `mean`, `std` (those it gives), checked against what the
    models accept. `where` names the section in errors."""
    prefix = f"{path}: {where}"
    try:
        out: dict[str, Any] = {}
        for key in ("size", "mask_size"):
            side = _square_or_default(section, key, where)
            if side is not None:
                out[key] = side
        if section.get("resample") is not None:
            out["resample"] = resample_name(section["resample"], f"{where}.resample")
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    for flag in ("do_resize", "do_convert_rgb"):
        if section.get(flag) is False:
            raise ValueError(f"{prefix}.{flag}=false is not supported; accepted: true (the model needs it)")
    size = out.get("size")
    # Cropping or padding to the model size itself changes nothing; anything else would feed the
    # model an image of the wrong size.
    for flag, key in (("do_center_crop", "crop_size"), ("do_pad", "pad_size")):
        if section.get(flag):
            target = section.get(key)
            if flag == "do_center_crop" and target is None:
                raise ValueError(f"{prefix}.{flag}=true needs {key}; accepted: false, or {key} equal to size")
            if target is not None and input_side(target, f"{where}.{key}") != size:
                raise ValueError(
                    f"{prefix}.{key}={target} with {flag}=true is not supported; accepted: {flag}=false, "
                    f"or {key} equal to size ({size})"
                )
    if section.get("do_sample_frames"):
        raise ValueError(
            f"{prefix}.do_sample_frames=true is not supported; accepted: false (every frame is tracked)"
        )
    rescale = section.get("rescale_factor", 1 / 255)
    if not is_number(rescale) or not rescale > 0:
        raise ValueError(f"{prefix}.rescale_factor={rescale!r}; accepted: a positive number")
    out["rescale_factor"] = 1.0 if section.get("do_rescale") is False else float(rescale)
    if section.get("do_normalize") is False:
        # no normalisation is x * rescale_factor: mean 0, std 1
        out["mean"], out["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        for key in ("mean", "std"):
            if section.get(f"image_{key}") is not None:
                try:
                    out[key] = channels(f"image_{key}", section[f"image_{key}"])
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{prefix}.image_{key}: {e}") from None
    return out


def settings_from_processor_config(data: dict, path: Path | str, video: bool = False) -> dict[str, Any]:
    """Processor arguments from a `processor_config.json` (or a flat `preprocessor_config.json`).

    The `image_processor` section gives `size`, `mask_size`, `resample`, `rescale_factor`,
    `image_mean`, `image_std`; with `video`, the `video_processor` section gives `video_resample`,
    `video_rescale_factor`, `video_mean`, `video_std` (its size must be the image size: both are
    the model's input). `target_size` and `point_pad_value` come from the top level.
    """
    image = data.get("image_processor", data)
    if not isinstance(image, dict):
        raise ValueError(f"{path}: image_processor must be an object, got {image!r}")
    found = section_settings(image, path, "image_processor")
    settings: dict[str, Any] = {k: found[k] for k in ("size", "mask_size", "resample") if k in found}
    settings["rescale_factor"] = found["rescale_factor"]
    settings.update({f"image_{k}": found[k] for k in ("mean", "std") if k in found})
    section = data.get("video_processor")
    if video and isinstance(section, dict):
        frames = section_settings(section, path, "video_processor")
        if "size" in frames and frames["size"] != settings.get("size", frames["size"]):
            raise ValueError(
                f"{path}: video_processor.size {section['size']} differs from image_processor.size "
                f"{image.get('size')}; accepted: the same size (both are the model's input size)"
            )
        settings.update(
            {f"video_{k}": frames[k] for k in ("resample", "rescale_factor", "mean", "std") if k in frames}
        )
    for key in ("target_size", "point_pad_value"):
        value = data.get(key)
        if value is None:
            continue
        if not is_number(value) or int(value) != value:
            raise ValueError(f"{path}: {key}={value!r}; accepted: an integer")
        if key == "target_size" and value <= 0:
            raise ValueError(f"{path}: target_size={value!r}; accepted: a positive integer")
        settings[key] = int(value)
    return settings


def settings_from_model_config(data: dict) -> dict[str, Any]:
    """`size` and `mask_size` derived from a model's `config.json` (no processor file)."""
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
