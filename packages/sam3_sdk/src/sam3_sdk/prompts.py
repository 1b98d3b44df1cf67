"""Validation of user prompts (pixels of the original image), with errors that say what is wrong."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sam3_core.scalars import is_int, is_number  # the core's: one rule for numpy scalars
from sam3_core.video.planner import DIRECTIONS

__all__ = [
    "MAX_OBJECT_ID",
    "check_object_id",
    "check_points",
    "check_box",
    "check_boxes",
    "check_direction",
    "check_frame",
    "check_mask",
    "check_max_frames",
    "check_threshold",
    "check_video_prompts",
    "is_int",
    "is_number",
]


def _finite_pairs(points, name: str) -> np.ndarray:
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of (x, y) pairs, got {points!r}") from None
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be a list of (x, y) pairs, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contain NaN or infinite coordinates: {arr.tolist()}")
    return arr


def check_points(
    points: Sequence[Sequence[float]] | None, labels: Sequence[int] | None, image_size: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Points (N, 2) as (x, y) pixels inside the image, labels (N,) of 1 (positive) / 0 (negative).

    Labels default to all positive. Returns (None, None) when there are no points.
    """
    if points is None or (hasattr(points, "__len__") and len(points) == 0):
        if labels is not None and len(labels):
            raise ValueError(f"got {len(labels)} labels but no points")
        return None, None
    pts = _finite_pairs(points, "points")
    h, w = image_size
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
    if outside.any():
        bad = pts[outside][0].tolist()
        raise ValueError(f"point {bad} is outside the image; x must be in [0, {w}] and y in [0, {h}]")
    if labels is None:
        labs = np.ones(len(pts), dtype=np.int64)
    else:
        labs = np.asarray(labels).reshape(-1)
        if len(labs) != len(pts):
            raise ValueError(f"got {len(pts)} points but {len(labs)} labels; give one label per point")
        if not np.isin(labs, (0, 1)).all():
            raise ValueError(f"labels must be 1 (positive) or 0 (negative), got {labs.tolist()}")
        labs = labs.astype(np.int64)
    return pts.astype(np.float32), labs


def check_box(
    box: Sequence[float] | None, image_size: tuple[int, int], name: str = "box"
) -> np.ndarray | None:
    """A box (x1, y1, x2, y2) in pixels with x1 < x2 and y1 < y2, inside the image."""
    if box is None:
        return None
    try:
        arr = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (x1, y1, x2, y2), got {box!r}") from None
    if arr.size != 4:
        raise ValueError(f"{name} must have 4 numbers (x1, y1, x2, y2), got {arr.size}: {arr.tolist()}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has NaN or infinite values: {arr.tolist()}")
    x1, y1, x2, y2 = arr.tolist()
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"{name} {arr.tolist()} is empty or inverted; expected x1 < x2 and y1 < y2")
    h, w = image_size
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        raise ValueError(f"{name} {arr.tolist()} goes outside the image (width {w}, height {h})")
    return arr.astype(np.float32)


def check_boxes(boxes, image_size: tuple[int, int]) -> np.ndarray | None:
    """Several boxes, (N, 4) xyxy pixels, each checked like `check_box`."""
    if boxes is None:
        return None
    arr = np.asarray(boxes, dtype=object if not len(boxes) else None)
    if len(boxes) == 0:
        return None
    if arr.ndim == 1 and len(arr) == 4 and all(is_number(v) for v in boxes):
        boxes = [boxes]
    return np.stack([check_box(b, image_size, name=f"box {i}") for i, b in enumerate(boxes)])


def check_mask(mask, image_size: tuple[int, int]) -> np.ndarray | None:
    """A prompt mask: (H, W) booleans (or 0/1 numbers) at the image's size."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != tuple(image_size):
        raise ValueError(f"mask must have the image's size {tuple(image_size)} (H, W), got {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("mask must be boolean (or 0/1 values)")
        arr = arr.astype(bool)
    return arr


def check_threshold(value: float, name: str) -> float:
    if not is_number(value) or math.isnan(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


MAX_OBJECT_ID = 65535  # index masks hold object ids as pixel values: 8-bit PNGs up to 255, 16-bit above


def check_object_id(obj_id: Any) -> int:
    """A video object id as an int in 1..65535, or a ValueError saying why not: ids are the pixel
    values of the index masks (`VideoFrameMasks.index_mask`, the PNG exports), where 0 is the
    background."""
    if not is_int(obj_id):
        raise ValueError(f"obj_id must be an int, got {obj_id!r}")
    if not 1 <= obj_id <= MAX_OBJECT_ID:
        raise ValueError(
            f"object id {int(obj_id)} is out of range; expected an int in 1..{MAX_OBJECT_ID} (ids are the "
            "pixel values of the index masks, where 0 is the background)"
        )
    return int(obj_id)


def check_direction(direction: Any) -> str:
    """A propagation direction: one of the core planner's `DIRECTIONS`."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction


def check_frame(frame: Any, num_frames: int) -> int:
    """A video frame index as an int in 0..num_frames - 1, or a ValueError saying why not."""
    if not is_int(frame):
        raise ValueError(f"frame must be an int frame index, got {frame!r}")
    if not 0 <= frame < num_frames:
        raise ValueError(
            f"frame {int(frame)} is past the end of the video; expected a frame in 0..{num_frames - 1}"
        )
    return int(frame)


def check_max_frames(max_frames: Any) -> int | None:
    """How many frames a propagation pass may go beyond its start: None (no limit) or an int >= 0."""
    if max_frames is not None and (not is_int(max_frames) or max_frames < 0):
        raise ValueError(f"max_frames must be a non-negative int, got {max_frames!r}")
    return None if max_frames is None else int(max_frames)


def check_video_prompts(prompts: Any) -> dict[int, dict]:
    """{obj_id: dict(frame=..., points=..., labels=..., box=..., mask=...)}, checked for shape."""
    allowed = {"frame", "points", "labels", "box", "mask"}
    if not isinstance(prompts, Mapping) or not prompts:
        raise ValueError(
            "prompts must be a non-empty dict {obj_id: dict(frame=0, points=[(x, y)], labels=[1], box=..., "
            f"mask=...)}}, got {prompts!r}"
        )
    out = {}
    for obj_id, prompt in prompts.items():
        check_object_id(obj_id)
        if not isinstance(prompt, Mapping):
            raise ValueError(f"the prompt of object {obj_id} must be a dict, got {type(prompt).__name__}")
        unknown = set(prompt) - allowed
        if unknown:
            raise ValueError(
                f"object {obj_id}: unknown prompt keys {sorted(unknown)}; expected {sorted(allowed)}"
            )
        out[int(obj_id)] = dict(prompt)
    return out
