"""Image inputs of the SDK: PIL images, numpy arrays (HWC uint8, grayscale, RGBA) or file paths."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from sam3_core.processing.image import load_image

ImageLike = Image.Image | np.ndarray | str | os.PathLike

__all__ = ["ImageLike", "MAX_IMAGE_PIXELS", "as_rgb_array", "image_file_size"]

# Files larger than this are refused from their header, before any pixel is decoded: a 20000 x 20000
# PNG of a few KB would otherwise need 1.2 GB as RGB (and far more as model input).
MAX_IMAGE_PIXELS = 100_000_000


def image_file_size(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(height, width) of an image file read from its header only (EXIF rotation applied).

    Raises ValueError for missing, empty or unreadable files and for images above `max_pixels`.
    """
    name = str(path)
    if not os.path.exists(name):
        raise ValueError(f"image file {name!r} does not exist")
    if os.path.isdir(name):
        raise ValueError(f"{name!r} is a folder; expected an image file")
    if os.path.getsize(name) == 0:
        raise ValueError(f"image file {name!r} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(name) as im:
                w, h = im.size
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                    w, h = h, w
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        found = re.search(r"\((\d+) pixels\)", str(e))  # PIL names the size in its message
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels to open safely"
        raise ValueError(
            f"image {name!r} has {size}; images up to {max_pixels:,} pixels are accepted"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{name!r} is not a readable image (corrupt or unsupported format): {e}") from None
    if w * h > max_pixels:
        raise ValueError(
            f"image {name!r} is {w}x{h} ({w * h:,} pixels); images up to {max_pixels:,} pixels are accepted"
        )
    return h, w


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer / float grayscale → 8-bit "L" (PIL's own conversion clips at 255)."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image
    arr = np.asarray(image, dtype=np.float64)
    top = (
        65535.0
        if image.mode.startswith("I;16") or (image.mode == "I" and arr.max(initial=0) > 255)
        else 255.0
    )
    if image.mode == "F" and arr.size and np.isfinite(arr).all() and arr.max() <= 1:
        top = 1.0
    return Image.fromarray(np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")


def as_rgb_array(image: ImageLike) -> np.ndarray:
    """Any supported image → (H, W, 3) uint8 RGB array (transparency composited on white).

    Files: the size is checked from the header first (`image_file_size`), EXIF orientation is applied
    (as a browser shows the photo), 16-bit images are scaled to 8 bits, CMYK / palette converted.
    Raises ValueError with the reason for unreadable files, empty arrays, wrong shapes or dtypes.
    """
    if isinstance(image, (str, os.PathLike)):
        image_file_size(image)
        image = ImageOps.exif_transpose(load_image(image))
    if isinstance(image, Image.Image):
        image = _to_8bit(image)
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
        if np.issubdtype(arr.dtype, np.complexfloating):  # casting would drop the imaginary part
            raise ValueError(
                f"image arrays must be real: uint8 (or float in [0, 1]), got complex dtype {arr.dtype}"
            )
        if not np.isfinite(arr).all():
            raise ValueError("the image array contains NaN or infinite values")
        if np.issubdtype(arr.dtype, np.floating) and arr.min() >= 0 and arr.max() <= 1:
            arr = arr * 255.0
        elif arr.dtype == np.uint16:
            arr = arr / 257.0  # 16-bit → 8-bit, full range kept
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=-1)
    if arr.shape[-1] == 4:
        alpha = arr[..., 3:].astype(np.float32) / 255.0
        rgb = arr[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)
