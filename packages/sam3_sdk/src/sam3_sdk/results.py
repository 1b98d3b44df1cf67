"""Result types: boolean masks at the image's size with scores and boxes, and their exports."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sam3_core.processing.masks import masks_to_boxes as core_masks_to_boxes

from .atomic import write_atomically
from .coco import DEFAULT_CATEGORY, annotation, coco_dataset
from .images import ImageLike, as_rgb_array

__all__ = ["Instances", "ObjectMasks", "palette", "masks_to_boxes", "overlay_masks", "write_atomically"]

# Distinct, readable colours; index i is used for instance / object i.
_PALETTE = np.array(
    [
        [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
        [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
        [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180],
    ],
    dtype=np.uint8,
)  # fmt: skip


def palette(i: int) -> tuple[int, int, int]:
    """The display colour (R, G, B) of instance or object number `i`."""
    return tuple(int(c) for c in _PALETTE[i % len(_PALETTE)])


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool masks → (N, 4) float32 xyxy pixel boxes, x2 / y2 exclusive (a one-pixel mask
    has width 1); zeros for empty masks. The numpy face of `sam3_core.processing.masks.masks_to_boxes`."""
    masks = np.ascontiguousarray(masks, dtype=bool)
    return core_masks_to_boxes(torch.from_numpy(masks)).numpy()


def overlay_masks(
    image: ImageLike,
    masks: np.ndarray,
    alpha: float = 0.5,
    highlight: int | None = None,
    colors: list[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """Colour each mask over the image (one colour per mask, outlines drawn); `highlight` dims the others."""
    rgb = as_rgb_array(image).astype(np.float32)
    if masks.shape[1:] != rgb.shape[:2]:
        raise ValueError(f"masks are {masks.shape[1:]} but the image is {rgb.shape[:2]}")
    out = rgb.copy()
    for i, mask in enumerate(masks):
        color = np.array(colors[i] if colors else palette(i), dtype=np.float32)
        a = alpha if highlight is None or highlight == i else alpha * 0.25
        out[mask] = out[mask] * (1 - a) + color * a
        edge = mask & ~_eroded(mask)
        if highlight is None or highlight == i:
            out[edge] = color
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _eroded(mask: np.ndarray) -> np.ndarray:
    m = np.pad(mask, 1, constant_values=False)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


@dataclass
class Instances:
    """Masks found in one image.

    masks: (N, H, W) bool at the image's original size. scores: (N,) float32 in [0, 1].
    boxes: (N, 4) float32 xyxy pixels. prompt: what was asked (text, points, boxes...).
    """

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    prompt: Any = None
    extra: dict = field(default_factory=dict)  # per-instance extras, e.g. "stability_score"

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        if self.masks.ndim != 3 or not (len(self.masks) == len(self.scores) == len(self.boxes)):
            raise ValueError(
                f"masks {self.masks.shape}, scores {self.scores.shape} and boxes {self.boxes.shape} disagree"
            )

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the masks."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    @property
    def areas(self) -> np.ndarray:
        """(N,) int64 pixels per mask (empty for no instances)."""
        return self.masks.sum(axis=(1, 2), dtype=np.int64)

    def to_coco_rle(self) -> list[dict]:
        """One COCO record per instance: id, segmentation (compressed RLE), area, bbox (the mask's
        own box, XYWH, inside the image), iscrowd, score, and the `extra` fields."""
        records = []
        for i, mask in enumerate(self.masks):
            extra = {}
            for key, values in self.extra.items():
                value = values[i]
                extra[key] = value.tolist() if isinstance(value, np.ndarray) else value
            records.append({"id": i + 1, **annotation(mask, self.scores[i], **extra)})
        return records

    @property
    def category(self) -> str:
        """The category name of the instances in COCO files: the phrase asked for, else "object"."""
        text = self.prompt.get("text") if isinstance(self.prompt, dict) else self.prompt
        return text if isinstance(text, str) and text.strip() else DEFAULT_CATEGORY

    def to_coco(self, file_name: str = "image.png", category: str | None = None) -> dict:
        """A COCO instances file of this one image (`pycocotools.coco.COCO` loads it; no instances
        gives an empty `annotations` list): image id 1 named `file_name`, every instance in
        `category` (default `self.category`). Layout: `sam3_sdk.coco`."""
        h, w = self.image_size
        category = category or self.category
        annotations = []
        for record in self.to_coco_rle():
            record.pop("id")
            annotations.append({"image_id": 1, "category": category, **record})
        return coco_dataset(
            [{"id": 1, "file_name": file_name, "height": h, "width": w}], annotations, [category]
        )

    def save_coco_json(
        self, path: str | os.PathLike, file_name: str = "image.png", category: str | None = None
    ) -> Path:
        """`to_coco` as a JSON file (written atomically)."""
        return write_atomically(path, json.dumps(self.to_coco(file_name, category)).encode())

    def to_json(self) -> str:
        """The COCO RLE records plus the image size and prompt, as JSON text (not a COCO file:
        see `to_coco` / `save_coco_json` for that)."""
        h, w = self.image_size
        prompt = (
            self.prompt
            if isinstance(self.prompt, (str, int, float, list, dict, type(None)))
            else str(self.prompt)
        )
        return json.dumps({"image_size": [h, w], "prompt": prompt, "annotations": self.to_coco_rle()})

    def save_json(self, path: str | os.PathLike) -> Path:
        return write_atomically(path, self.to_json().encode())

    def index_mask(self) -> np.ndarray:
        """(H, W) uint8/uint16: 0 background, i+1 where instance i is (later instances on top)."""
        dtype = np.uint8 if len(self) < 255 else np.uint16
        out = np.zeros(self.image_size, dtype=dtype)
        for i, mask in enumerate(self.masks):
            out[mask] = i + 1
        return out

    def to_png_bytes(self, index: int | None = None) -> bytes:
        """PNG of one instance's mask (0/255), or of the index mask of all instances when `index` is None."""
        if index is None:
            array = self.index_mask()
        else:
            if not -len(self) <= index < len(self):
                raise IndexError(f"instance {index} does not exist; there are {len(self)}")
            array = self.masks[index].astype(np.uint8) * 255
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        return buf.getvalue()

    def save_png(self, path: str | os.PathLike, index: int | None = None) -> Path:
        return write_atomically(path, self.to_png_bytes(index))

    def overlay(self, image: ImageLike, alpha: float = 0.5, highlight: int | None = None) -> Image.Image:
        """The image with every instance drawn in its own colour."""
        return overlay_masks(image, self.masks, alpha=alpha, highlight=highlight)


@dataclass
class ObjectMasks(Instances):
    """Candidate masks of ONE prompted object (several when multimask), best first by predicted IoU.

    low_res_logits: (N, h, w) float32 mask logits at the model's resolution, to refine with later.
    """

    low_res_logits: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """The best candidate, (H, W) bool."""
        return self.masks[0]

    @property
    def score(self) -> float:
        return float(self.scores[0])
