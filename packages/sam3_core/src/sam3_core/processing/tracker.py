"""`Sam3TrackerProcessor`: images and click / box / mask prompts in, model inputs out; masks back.

Prompts are nested lists (or tensors / arrays of the same depth) in original-image pixels:

    input_points  [image][object][point][x, y]
    input_labels  [image][object][point]          1 positive, 0 negative, -1 not-a-point
    input_boxes   [image][box][x1, y1, x2, y2]

Ragged lists are padded with `point_pad_value` (-10), which the model ignores, and coordinates
are rescaled to the square model input (`target_size`). `post_process_masks` upsamples the
model's low-resolution mask logits to each original image size, with optional hole filling and
sprinkle removal done by a vectorised connected-components labelling (no per-pixel Python loops).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoint import resolve_checkpoint_dir
from ..scalars import as_int, is_int, is_number
from .batch import BatchEncoding
from .image import SAM_MEAN, SAM_STD, preprocess_images, resize_label_maps
from .image import post_process_masks as _upsample_masks
from .mask_cleanup import fill_holes_and_remove_sprinkles
from .processor_config import (
    channels,
    resample_name,
    settings_from_model_config,
    settings_from_processor_config,
)
from .saving import image_processor_settings, write_processor_config

_VALID_LABELS = {-10, -1, 0, 1, 2, 3}


def _to_lists(data: Any) -> Any:
    """Tensors / arrays / tuples -> nested Python lists (numbers stay numbers)."""
    if isinstance(data, Tensor):
        return data.detach().cpu().tolist()
    if isinstance(data, np.ndarray):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_to_lists(x) for x in data]
    return data


def _check_nesting(data: Any, depth: int, leaf_len: int | None, name: str, fmt: str, path: str = "") -> None:
    """Raise a ValueError naming the first element that breaks the expected nesting."""
    if depth == 0:
        if not is_number(data):
            raise ValueError(f"{name}{path} is {data!r}; expected a number. Nesting: {fmt}")
        if not math.isfinite(float(data)):
            raise ValueError(f"{name}{path} is {data!r}; expected a finite number")
        return
    if not isinstance(data, list):
        raise ValueError(f"{name}{path} is {data!r}; expected a list at this level. Nesting: {fmt}")
    if depth == 1 and leaf_len is not None and len(data) != leaf_len:
        raise ValueError(f"{name}{path} has {len(data)} values {data!r}; expected {leaf_len}. Nesting: {fmt}")
    for i, item in enumerate(data):
        _check_nesting(item, depth - 1, leaf_len, name, fmt, f"{path}[{i}]")


def _parse(data: Any, depth: int, leaf_len: int | None, name: str, fmt: str) -> list | None:
    if data is None:
        return None
    if isinstance(data, (Tensor, np.ndarray)) and data.ndim != depth:
        raise ValueError(f"{name} must have {depth} dimensions ({fmt}), got shape {tuple(data.shape)}")
    data = _to_lists(data)
    if not isinstance(data, list) or not data:
        raise ValueError(f"{name} must be a non-empty nested list ({fmt}), got {data!r}")
    _check_nesting(data, depth, leaf_len, name, fmt)
    return data


_POINTS_FMT = "[image][object][point][x, y]"


_LABELS_FMT = "[image][object][point] -> label"


_BOXES_FMT = "[image][box][x1, y1, x2, y2]"


def _pad_points(points: list, labels: list, pad: float) -> tuple[Tensor, Tensor, Tensor]:
    """Ragged points/labels -> (B, P, N, 2) float, (B, P, N) int64 padded, (B, P, N) bool real."""
    num_objects = max(len(img) for img in points)
    num_points = max((len(obj) for img in points for obj in img), default=0)
    if num_points == 0:
        raise ValueError("input_points has no point at all; give at least one [x, y]")
    b = len(points)
    coords = torch.full((b, num_objects, num_points, 2), float(pad), dtype=torch.float32)
    out_labels = torch.full((b, num_objects, num_points), int(pad), dtype=torch.int64)
    real = torch.zeros((b, num_objects, num_points), dtype=torch.bool)
    for i, img in enumerate(points):
        for j, obj in enumerate(img):
            if obj:
                coords[i, j, : len(obj)] = torch.tensor(obj, dtype=torch.float32)
                out_labels[i, j, : len(obj)] = torch.tensor(labels[i][j], dtype=torch.int64)
                real[i, j, : len(obj)] = True
    return coords, out_labels, real


def _check_labels_match(points: list, labels: list) -> None:
    if len(points) != len(labels):
        raise ValueError(f"input_points are for {len(points)} images but input_labels for {len(labels)}")
    for i, (p_img, l_img) in enumerate(zip(points, labels, strict=True)):
        if len(p_img) != len(l_img):
            raise ValueError(
                f"image {i}: input_points has {len(p_img)} objects but input_labels has {len(l_img)}"
            )
        for j, (p_obj, l_obj) in enumerate(zip(p_img, l_img, strict=True)):
            if len(p_obj) != len(l_obj):
                raise ValueError(
                    f"image {i}, object {j}: {len(p_obj)} points but {len(l_obj)} labels; "
                    "give one label per point"
                )
            for k, lab in enumerate(l_obj):
                if float(lab) != int(lab) or int(lab) not in _VALID_LABELS:
                    raise ValueError(
                        f"input_labels[{i}][{j}][{k}] is {lab!r}; expected 1 (positive click), 0 (negative "
                        "click), -1 (not a point), -10 (padding), or 2 / 3 (box corners)"
                    )


def _scale_coords(coords: Tensor, sizes: list[tuple[int, int]], target: int) -> Tensor:
    """Scale (B, ..., 2k) xy pixel coordinates of each image from its original size to `target`."""
    out = coords.clone()
    for i in range(coords.shape[0]):
        h, w = sizes[i] if len(sizes) > 1 else sizes[0]
        # The ratios are computed as the reference does (int / int64 tensor), so coordinates are
        # bit-identical to its own.
        out[i, ..., 0::2] = coords[i, ..., 0::2] * (target / torch.tensor(w))
        out[i, ..., 1::2] = coords[i, ..., 1::2] * (target / torch.tensor(h))
    return out


class Sam3TrackerProcessor:
    """Prepares images and prompts for `Sam3TrackerModel` and post-processes its masks.

    Args:
        size: side of the square model input in pixels (1008 for SAM 3).
        target_size: the size point / box coordinates are rescaled to; defaults to `size`.
        point_pad_value: the value that pads ragged points and labels (-10, ignored by the model).
        mask_size: side of the low-resolution masks (segmentation maps and mask inputs); 288.
        image_mean, image_std, rescale_factor: image normalisation, `(x * rescale_factor - mean) / std`
            per channel; SAM 3's maps [0, 255] to [-1, 1].
        resample: how images are resized: "bilinear" (SAM 3's), "bicubic", "lanczos" or "nearest",
            or the PIL code processor_config.json stores (2, 3, 1, 0).
    """

    def __init__(
        self,
        size: int = 1008,
        target_size: int | None = None,
        point_pad_value: int = -10,
        mask_size: int = 288,
        image_mean: Sequence[float] = SAM_MEAN,
        image_std: Sequence[float] = SAM_STD,
        rescale_factor: float = 1 / 255,
        resample: str | int = "bilinear",
    ) -> None:
        for name, value in (("size", size), ("mask_size", mask_size)):
            if not is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.size = int(size)
        self.target_size = as_int("target_size", target_size, 1) if target_size is not None else self.size
        self.point_pad_value = as_int("point_pad_value", point_pad_value)
        self.mask_size = int(mask_size)
        self.image_mean, self.image_std = (
            channels("image_mean", image_mean),
            channels("image_std", image_std),
        )
        if not rescale_factor > 0:
            raise ValueError(f"rescale_factor must be positive, got {rescale_factor!r}")
        self.rescale_factor = float(rescale_factor)
        self.resample = resample_name(resample)

    reads_video_settings = False  # a video processor also reads processor_config.json's video section

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, target_size={self.target_size}, "
            f"point_pad_value={self.point_pad_value}, mask_size={self.mask_size}, resample={self.resample!r})"
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> Sam3TrackerProcessor:
        """Settings from `processor_config.json` (or `preprocessor_config.json`) of a checkpoint
        folder or hub repo, else derived from its `config.json`. Keyword arguments override them."""
        folder = Path(resolve_checkpoint_dir(name_or_path, allow_patterns=("*.json",)))
        settings: dict[str, Any] = {}
        for name in ("processor_config.json", "preprocessor_config.json"):
            path = folder / name
            if path.is_file():
                settings = settings_from_processor_config(
                    json.loads(path.read_text()), path, video=cls.reads_video_settings
                )
                break
        else:
            config_path = folder / "config.json"
            if config_path.is_file():
                settings = settings_from_model_config(json.loads(config_path.read_text()))
        settings.update(kwargs)
        return cls(**settings)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `processor_config.json` (the reference's layout; `from_pretrained` reads it back)."""
        return write_processor_config(save_directory, self._processor_config()).parent

    def _processor_config(self) -> dict[str, Any]:
        return {
            "image_processor": image_processor_settings(
                self.size,
                self.mask_size,
                "Sam3ImageProcessor",
                mean=self.image_mean,
                std=self.image_std,
                rescale_factor=self.rescale_factor,
                resample=self.resample,
            ),
            "point_pad_value": self.point_pad_value,
            "processor_class": type(self).__name__,
            "target_size": self.target_size,
        }

    # -- inputs -------------------------------------------------------------------------------

    def __call__(
        self,
        images: Any = None,
        segmentation_maps: Any = None,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        input_masks: Any = None,
        original_sizes: Sequence[Sequence[int]] | Tensor | None = None,
        return_tensors: str | None = "pt",
        device: str | torch.device | None = None,
    ) -> BatchEncoding:
        """Preprocess images and prompts.

        Args:
            images: one image or a list (PIL, numpy HWC, torch CHW/HWC, or file paths).
            segmentation_maps: optional label maps, one per image, resized to `mask_size` by the
                nearest pixel centre.
            input_points: [image][object][point][x, y] in original-image pixels.
            input_labels: [image][object][point] labels; 1 for every point when omitted.
            input_boxes: [image][box][x1, y1, x2, y2] in original-image pixels (same count per image).
            input_masks: optional mask logits per image, (H, W) or (objects, H, W) each, resized
                (antialiased bilinear) to `mask_size`.
            original_sizes: [(height, width)] per image; needed when `images` is not given (e.g. to
                prompt again with cached `image_embeddings`).
            return_tensors: "pt" (or None): PyTorch tensors.
            device: where the image resize runs and the tensors live.

        Returns:
            A `BatchEncoding` with `pixel_values` (B, 3, S, S), `original_sizes` (B, 2),
            `input_points` (B, P, N, 2), `input_labels` (B, P, N), `input_boxes` (B, P, 4),
            `input_masks`, `labels` -- whichever apply.
        """
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported; use 'pt'")
        out = BatchEncoding()
        if images is not None:
            pixel_values, sizes = preprocess_images(
                images,
                self.size,
                device=device,
                mean=self.image_mean,
                std=self.image_std,
                rescale_factor=self.rescale_factor,
                resample=self.resample,
            )
            out["pixel_values"] = pixel_values
            if original_sizes is not None and len(_sizes_list(original_sizes)) not in (1, len(sizes)):
                raise ValueError(
                    f"got {len(_sizes_list(original_sizes))} original_sizes for {len(sizes)} images"
                )
        elif original_sizes is not None:
            sizes = _sizes_list(original_sizes)
        else:
            raise ValueError("give images, or original_sizes when prompting with cached image embeddings")
        out["original_sizes"] = torch.tensor(sizes, dtype=torch.int64, device=device)

        if segmentation_maps is not None:
            out["labels"] = resize_label_maps(segmentation_maps, len(sizes), self.mask_size, device)
        self._prompts(out, sizes, input_points, input_labels, input_boxes, device)
        if input_masks is not None:
            out["input_masks"] = self._mask_inputs(input_masks, len(sizes), device)
        return out

    def _prompts(self, out: BatchEncoding, sizes: list, points: Any, labels: Any, boxes: Any, device) -> None:
        points = _parse(points, 4, 2, "input_points", _POINTS_FMT)
        labels = _parse(labels, 3, None, "input_labels", _LABELS_FMT)
        boxes = _parse(boxes, 3, 4, "input_boxes", _BOXES_FMT)
        if labels is not None and points is None:
            raise ValueError("input_labels were given without input_points")
        for name, prompt in (("input_points", points), ("input_boxes", boxes)):
            if prompt is not None and len(sizes) != 1 and len(prompt) != len(sizes):
                raise ValueError(f"{name} are for {len(prompt)} images but {len(sizes)} images were given")
        if points is not None:
            if labels is None:
                labels = [[[1] * len(obj) for obj in img] for img in points]
            _check_labels_match(points, labels)
            coords, padded_labels, real = _pad_points(points, labels, self.point_pad_value)
            scaled = _scale_coords(coords, sizes, self.target_size)
            out["input_points"] = torch.where(real[..., None], scaled, coords).to(device)
            out["input_labels"] = padded_labels.to(device)
        if boxes is not None:
            counts = {len(img) for img in boxes}
            if len(counts) > 1:
                raise ValueError(
                    f"the images have different numbers of boxes ({[len(img) for img in boxes]}); boxes cannot "
                    "be padded, give the same number of boxes for every image"
                )
            if counts == {0}:
                raise ValueError("input_boxes holds no box; give [x1, y1, x2, y2] per object")
            box_tensor = torch.tensor(boxes, dtype=torch.float32)
            flipped = (box_tensor[..., 2] < box_tensor[..., 0]) | (box_tensor[..., 3] < box_tensor[..., 1])
            if flipped.any():
                i, j = (int(v) for v in flipped.nonzero()[0])
                raise ValueError(
                    f"input_boxes[{i}][{j}] = {boxes[i][j]} has x2 < x1 or y2 < y1; expected [x1, y1, x2, y2]"
                )
            if points is not None and box_tensor.shape[1] != out["input_points"].shape[1]:
                raise ValueError(
                    f"{box_tensor.shape[1]} boxes per image but {out['input_points'].shape[1]} objects with points; "
                    "with both prompts give one box per object"
                )
            out["input_boxes"] = _scale_coords(box_tensor, sizes, self.target_size).to(device)

    def _mask_inputs(self, masks: Any, num_images: int, device) -> Tensor:
        items = list(masks) if isinstance(masks, (list, tuple)) else list(torch.as_tensor(masks))
        if len(items) != num_images:
            raise ValueError(f"got mask inputs for {len(items)} images but {num_images} images")
        out = []
        for i, item in enumerate(items):
            m = torch.as_tensor(np.asarray(item) if not isinstance(item, Tensor) else item).float()
            if m.ndim == 2:
                m = m[None]
            if m.ndim != 3:
                raise ValueError(f"input_masks[{i}] must be (H, W) or (objects, H, W), got {tuple(m.shape)}")
            if not torch.isfinite(m).all():
                raise ValueError(f"input_masks[{i}] contains NaN or infinite values")
            if tuple(m.shape[-2:]) != (self.mask_size, self.mask_size):
                m = F.interpolate(
                    m[:, None],
                    size=(self.mask_size, self.mask_size),
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )[:, 0]
            out.append(m)
        if len({m.shape[0] for m in out}) > 1:
            raise ValueError(
                f"input_masks: every image needs the same number of masks, got {[m.shape[0] for m in out]}"
            )
        return torch.stack(out).to(device)

    # -- outputs ------------------------------------------------------------------------------

    def post_process_masks(
        self,
        masks: Tensor | Sequence[Tensor] | np.ndarray,
        original_sizes: Sequence[Sequence[int]] | Tensor,
        mask_threshold: float = 0.0,
        binarize: bool = True,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        apply_non_overlapping_constraints: bool = False,
    ) -> list[Tensor]:
        """Low-resolution mask logits -> masks at each original image size.

        Args:
            masks: `pred_masks` (B, P, M, h, w), or per image a (P, M, h, w) tensor / array.
            original_sizes: (height, width) per image (`inputs["original_sizes"]`).
            mask_threshold: logit threshold for binarising and for the cleanup below.
            binarize: return booleans (logit > threshold), else the upsampled logits.
            max_hole_area: fill background regions of at most this many low-res pixels.
            max_sprinkle_area: drop foreground regions of at most this many low-res pixels.
            apply_non_overlapping_constraints: at each pixel keep only the object with the highest
                logit (the others are clamped to <= -10).

        Returns:
            Per image a (P, M, H, W) tensor: bool when `binarize`, else logits in the masks' dtype.
        """
        sizes = _sizes_list(original_sizes)
        if isinstance(masks, np.ndarray):
            masks = torch.from_numpy(masks)
        if isinstance(masks, Tensor) and masks.ndim != 5:
            raise ValueError(f"masks must be (batch, objects, masks, h, w), got shape {tuple(masks.shape)}")
        if len(masks) != len(sizes):
            raise ValueError(f"got masks for {len(masks)} images but {len(sizes)} original sizes")
        cleaned = []
        for i, m in enumerate(masks):
            m = torch.from_numpy(m) if isinstance(m, np.ndarray) else m
            if not isinstance(m, Tensor) or m.ndim != 4:
                raise ValueError(
                    f"masks[{i}] must be a (objects, masks, h, w) tensor, got {getattr(m, 'shape', m)}"
                )
            if not m.is_floating_point():
                m = m.float()
            if max_hole_area > 0 or max_sprinkle_area > 0:  # the cleanup runs in fp32; the dtype stays
                m = fill_holes_and_remove_sprinkles(
                    m.float(), mask_threshold, max_hole_area, max_sprinkle_area
                ).to(m.dtype)
            cleaned.append(m)
        return _upsample_masks(
            cleaned,
            sizes,
            mask_threshold=mask_threshold,
            binarize=binarize,
            apply_non_overlapping=apply_non_overlapping_constraints,
        )


def _sizes_list(sizes: Sequence[Sequence[int]] | Tensor | np.ndarray) -> list[tuple[int, int]]:
    if isinstance(sizes, (Tensor, np.ndarray)):
        sizes = sizes.tolist()
    out = []
    for s in sizes:
        if len(s) != 2 or min(int(v) for v in s) <= 0:
            raise ValueError(f"each original size must be (height, width) with positive values, got {s!r}")
        out.append((int(s[0]), int(s[1])))
    if not out:
        raise ValueError("original_sizes is empty")
    return out
