"""Image preprocessing shared by every SAM 3 processor, and mask upsampling.

Preprocessing: convert to RGB uint8 (transparency composited on white, grayscale repeated), resize
to the model's square size (antialiased bilinear by default; bicubic, lanczos or nearest as a
processor config asks), then `(x * rescale_factor - mean) / std` (SAM 3's defaults map [0, 255] to
[-1, 1]). This reproduces the reference's `pixel_values`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..scalars import is_int

__all__ = [
    "ImageInput",
    "load_image",
    "to_rgb_tensor",
    "resize_images",
    "RESAMPLE_MODES",
    "normalize_images",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SAM_MEAN",
    "SAM_STD",
    "preprocess_images",
    "resize_label_maps",
    "post_process_masks",
    "apply_non_overlapping_constraints",
]

ImageInput = Image.Image | np.ndarray | torch.Tensor | str | os.PathLike


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file, with a clear error for missing, unreadable or corrupt files."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy() if im.mode != "P" else im.convert("RGBA")
    except FileNotFoundError:
        raise ValueError(f"image file {str(path)!r} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(
            f"{str(path)!r} is not a readable image (corrupt or unsupported format): {e}"
        ) from None


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _channels_first(t: torch.Tensor) -> torch.Tensor:
    """(C, H, W) view of a 2D or 3D image tensor; channels are the first axis of size 1, 3 or 4."""
    if t.ndim == 2:
        return t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(f"an image must have 2 (H, W) or 3 (H, W, C) dimensions, got shape {tuple(t.shape)}")
    if t.shape[0] in (1, 3, 4):
        return t
    if t.shape[-1] in (1, 3, 4):
        return t.permute(2, 0, 1)
    raise ValueError(
        f"cannot find the channel axis (1, 3 or 4 channels) in an image of shape {tuple(t.shape)}"
    )


def to_rgb_tensor(image: ImageInput) -> torch.Tensor:
    """Any supported image → (3, H, W) tensor, uint8 for 8-bit inputs (floats are kept as floats).

    Accepts PIL images (any mode), numpy arrays and torch tensors (HWC or CHW, 1/3/4 channels,
    uint8 or float in [0, 255]), and file paths.
    """
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        return torch.from_numpy(_pil_to_rgb(image).copy()).permute(2, 0, 1).contiguous()
    if isinstance(image, np.ndarray):
        if image.dtype == bool or not (np.issubdtype(image.dtype, np.number)):
            raise ValueError(f"image arrays must be numeric (uint8 or float), got dtype {image.dtype}")
        image = torch.from_numpy(np.array(image, copy=True, order="C"))
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"expected a PIL image, a numpy array, a torch tensor or a file path, got {type(image).__name__}"
        )
    if image.is_complex() or image.dtype == torch.bool:
        raise ValueError(f"image tensors must be uint8 or float, got {image.dtype}")
    if image.is_floating_point() and not torch.isfinite(image).all():
        raise ValueError("the image contains NaN or infinite values")
    if min(image.shape[-2:] if image.ndim == 2 else image.shape) == 0:
        raise ValueError(f"the image is empty (shape {tuple(image.shape)})")
    chw = _channels_first(image)
    if chw.shape[0] == 1:
        chw = chw.expand(3, -1, -1)
    elif chw.shape[0] == 4:
        rgb, alpha = chw[:3].float() / 255.0, chw[3:].float() / 255.0
        if image.is_floating_point():  # float RGBA is expected in [0, 1]
            rgb, alpha = chw[:3].float(), chw[3:].float()
        composite = rgb * alpha + (1 - alpha)
        chw = composite if image.is_floating_point() else composite.mul(255.999).to(torch.uint8)
    if chw.dtype not in (torch.uint8, torch.float32, torch.float64):
        chw = chw.float()
    return chw.contiguous()


def _native_uint8_resize(device: torch.device, resample: str) -> bool:
    # Where torch resizes uint8 natively (rounding inside the kernel), as the reference lets it:
    # on the CPU, bicubic and lanczos always, bilinear on x86 with AVX2 and on ARM; nearest everywhere.
    if resample == "nearest":
        return True
    if device.type != "cpu":
        return False
    if resample != "bilinear":
        return True
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in (
        "aarch64",
        "arm64",
    )


RESAMPLE_MODES = ("nearest", "bilinear", "bicubic", "lanczos")


def resize_images(images: torch.Tensor, size: tuple[int, int], resample: str = "bilinear") -> torch.Tensor:
    """Resize (N, C, H, W) images to `size` (height, width), keeping the dtype.

    `resample`: "bilinear", "bicubic" or "lanczos" (antialiased, as torchvision's tensor resize) or
    "nearest" (the reference's nearest: pixel centres, `nearest-exact`). uint8 images are resized
    in uint8 where torch can, else in float32 then clamped and rounded, as the reference does; so
    the values equal the reference's on the same device.
    """
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"resample={resample!r} is not supported; expected one of {RESAMPLE_MODES}")
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if resample == "lanczos" and images.device.type != "cpu":
        # torch has lanczos on the CPU only; the reference falls back to bicubic elsewhere, which
        # is not the interpolation the config asks for, so the resize runs on the CPU instead.
        return resize_images(images.cpu(), size, resample).to(images.device)
    mode = "nearest-exact" if resample == "nearest" else resample
    antialias = resample != "nearest"
    align = None if resample == "nearest" else False
    if images.dtype == torch.uint8 and not _native_uint8_resize(images.device, resample):
        out = F.interpolate(images.float(), size=size, mode=mode, align_corners=align, antialias=antialias)
        if resample in ("bicubic", "lanczos"):  # their kernels overshoot [0, 255]
            out = out.clamp_(0, 255)
        return out.round_().to(torch.uint8)
    if images.dtype not in (torch.uint8, torch.float32, torch.float64):
        images = images.float()
    return F.interpolate(images, size=size, mode=mode, align_corners=align, antialias=antialias)


SAM_MEAN = SAM_STD = (0.5, 0.5, 0.5)  # SAM 3's normalisation: [0, 255] → [-1, 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # EdgeTAM's (and SAM 2's)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(
    images: torch.Tensor,
    mean: Sequence[float] = SAM_MEAN,
    std: Sequence[float] = SAM_STD,
    rescale_factor: float = 1 / 255,
) -> torch.Tensor:
    """(..., 3, H, W) pixel values in [0, 255] → float32 `(x * rescale_factor - mean) / std`.

    Computed as the reference does (one subtraction and one division, by `mean / rescale_factor`
    and `std / rescale_factor` in float32), so the result matches it bit for bit.
    """
    shift = torch.tensor(list(mean), dtype=torch.float32, device=images.device) * (1.0 / rescale_factor)
    scale = torch.tensor(list(std), dtype=torch.float32, device=images.device) * (1.0 / rescale_factor)
    return (images.to(torch.float32) - shift[:, None, None]) / scale[:, None, None]


def preprocess_images(
    images: ImageInput | Sequence[ImageInput],
    size: int | tuple[int, int] = 1008,
    device: str | torch.device | None = None,
    mean: Sequence[float] = SAM_MEAN,
    std: Sequence[float] = SAM_STD,
    rescale_factor: float = 1 / 255,
    resample: str = "bilinear",
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Images → (`pixel_values` (N, 3, H, W) float32, `original_sizes` [(h, w), ...]).

    `images` is one image or a list of them (PIL, numpy, torch or paths, of any sizes).
    `device` is where the resize runs and the result lives; `mean`, `std`, `rescale_factor` as in
    `normalize_images`; `resample` as in `resize_images`.
    """
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError("no images were given (an empty list)")
        items = list(images)
    else:
        items = [images]
    size = (int(size), int(size)) if is_int(size) else tuple(int(s) for s in size)
    out = []
    original_sizes = []
    for item in items:
        rgb = to_rgb_tensor(item)
        if device is not None:
            rgb = rgb.to(device)
        original_sizes.append((int(rgb.shape[-2]), int(rgb.shape[-1])))
        out.append(
            normalize_images(resize_images(rgb.unsqueeze(0), size, resample), mean, std, rescale_factor)
        )
    return torch.cat(out), original_sizes


def resize_label_maps(
    maps: Any, num_images: int, mask_size: int, device: str | torch.device | None = None
) -> torch.Tensor:
    """Segmentation label maps, one (H, W) (or (1, H, W)) per image, -> (N, mask_size, mask_size)
    int64, resized by the nearest pixel centre as the reference does."""
    items = list(maps) if isinstance(maps, (list, tuple)) else [maps]
    if len(items) != num_images:
        raise ValueError(f"got {len(items)} segmentation maps for {num_images} images")
    out = []
    for i, item in enumerate(items):
        m = item if isinstance(item, torch.Tensor) else torch.as_tensor(np.asarray(item))
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        if m.ndim != 2:
            raise ValueError(f"segmentation map {i} must be (H, W), got shape {tuple(m.shape)}")
        m = F.interpolate(m[None, None].float(), size=(mask_size, mask_size), mode="nearest-exact")
        out.append(m[0, 0].round().to(torch.int64))
    return torch.stack(out).to(device)


def apply_non_overlapping_constraints(masks: torch.Tensor) -> torch.Tensor:
    """Keep, at each pixel, only the object with the highest logit; others are clamped to ≤ -10.

    masks: (num_objects, C, H, W) logits.
    """
    if masks.shape[0] == 1:
        return masks
    winner = masks.argmax(dim=0, keepdim=True)
    keep = winner == torch.arange(masks.shape[0], device=masks.device)[:, None, None, None]
    return torch.where(keep, masks, torch.clamp(masks, max=-10.0))


def post_process_masks(
    masks: Sequence[torch.Tensor] | torch.Tensor,
    original_sizes: Sequence[Sequence[int]] | torch.Tensor | np.ndarray,
    mask_threshold: float = 0.0,
    binarize: bool = True,
    apply_non_overlapping: bool = False,
) -> list[torch.Tensor]:
    """Upsample low-resolution mask logits to each image's original size.

    masks: per image a (num_objects, C, h, w) tensor (or one (B, num_objects, C, h, w) tensor).
    original_sizes: (height, width) per image.
    Returns per image a (num_objects, C, H, W) tensor: booleans (logit > mask_threshold) when
    `binarize`, else the upsampled logits.
    """
    if isinstance(original_sizes, (torch.Tensor, np.ndarray)):
        original_sizes = original_sizes.tolist()
    if len(masks) != len(original_sizes):
        raise ValueError(f"got masks for {len(masks)} images but {len(original_sizes)} original sizes")
    out = []
    for mask, hw in zip(masks, original_sizes):
        mask = _as_tensor(mask)
        if mask.ndim != 4:
            raise ValueError(f"each image's masks must be (objects, C, h, w), got shape {tuple(mask.shape)}")
        up = F.interpolate(
            mask.float() if mask.dtype == torch.bool else mask,
            size=tuple(int(v) for v in hw),
            mode="bilinear",
            align_corners=False,
        )
        if apply_non_overlapping:
            up = apply_non_overlapping_constraints(up)
        out.append(up > mask_threshold if binarize else up)
    return out


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"masks must be torch tensors or numpy arrays, got {type(x).__name__}")
    return x
