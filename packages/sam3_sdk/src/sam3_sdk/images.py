"""Image inputs of the SDK: PIL images, numpy arrays (HWC uint8, grayscale, RGBA) or file paths."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from sam3_core.processing.image import load_image

ImageLike = Image.Image | np.ndarray | str | os.PathLike

__all__ = ["ImageLike", "as_rgb_array"]


def as_rgb_array(image: ImageLike) -> np.ndarray:
    """Any supported image → (H, W, 3) uint8 RGB array (transparency composited on white).

    Raises ValueError with the reason for unreadable files, empty arrays, wrong shapes or dtypes.
    """
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB")).copy()
        return np.asarray(image.convert("RGB")).copy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a PIL image, a numpy array or a file path, got {type(image).__name__}")
    arr = image
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"the image array is empty (shape {arr.shape})")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
            raise ValueError(f"image arrays must be uint8 (or float in [0, 1]), got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise ValueError("the image array contains NaN or infinite values")
        if np.issubdtype(arr.dtype, np.floating) and arr.min() >= 0 and arr.max() <= 1:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=-1)
    if arr.shape[-1] == 4:
        alpha = arr[..., 3:].astype(np.float32) / 255.0
        rgb = arr[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)
