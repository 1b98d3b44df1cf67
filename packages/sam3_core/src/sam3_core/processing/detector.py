"""`Sam3Processor`: images, phrases and exemplar boxes in; model inputs out; results back in pixels.

Input nesting follows the reference processor:

    text:               "phrase" | ["phrase or None per image", ...]
    input_boxes:        [[[x1, y1, x2, y2], ...] or None per image]      pixels, xyxy
    input_boxes_labels: [[1 or 0 per box] or None per image]             1 positive, 0 negative

Boxes are normalised by each image's original size and turned into (cx, cy, w, h); images with
fewer boxes are padded with boxes of -10 and label -10. An image with boxes but no phrase gets the
phrase "visual", as the reference does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import resolve_checkpoint_dir
from ..scalars import is_int
from .batch import BatchEncoding
from .image import SAM_MEAN, SAM_STD, ImageInput, preprocess_images, resize_label_maps
from .processor_config import channels, resample_name, settings_from_processor_config
from .saving import image_processor_settings, write_processor_config
from .tokenizer import CLIPTokenizer

__all__ = ["Sam3Processor", "Sam3ProcessorOutput"]

VISUAL_PROMPT = "visual"  # the phrase the reference uses for box-only prompts


# The detector processor's output type (the same `.to()`-able dict as the other processors').
Sam3ProcessorOutput = BatchEncoding


def _as_nested_list(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    return value


class Sam3Processor:
    """Prepares inputs of `Sam3Model` and post-processes its outputs.

    Args:
        tokenizer: the CLIP tokenizer; required for text prompts.
        size: side of the square model input in pixels (1008 for SAM 3).
        point_pad_value: value of padded boxes and labels.
        text_max_length: tokens per phrase after padding/truncation (the reference uses 32).
        image_mean, image_std, rescale_factor: image normalisation, `(x * rescale_factor - mean) / std`
            per channel; SAM 3's maps [0, 255] to [-1, 1].
        resample: how images are resized: "bilinear" (SAM 3's), "bicubic", "lanczos" or "nearest",
            or the PIL code processor_config.json stores.
        mask_size: side that segmentation maps are resized to (288).
        target_size: kept for the processor file; boxes are normalised by the image size, so the
            detector's inputs do not depend on it. Defaults to `size`.
    """

    def __init__(
        self,
        tokenizer: CLIPTokenizer | None = None,
        size: int = 1008,
        point_pad_value: int = -10,
        text_max_length: int = 32,
        image_mean: Sequence[float] = SAM_MEAN,
        image_std: Sequence[float] = SAM_STD,
        rescale_factor: float = 1 / 255,
        resample: str | int = "bilinear",
        mask_size: int = 288,
        target_size: int | None = None,
    ):
        for name, value in (("size", size), ("mask_size", mask_size)):
            if not is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not rescale_factor > 0:
            raise ValueError(f"rescale_factor must be positive, got {rescale_factor!r}")
        self.tokenizer = tokenizer
        self.size = int(size)
        self.point_pad_value = point_pad_value
        self.text_max_length = text_max_length
        self.image_mean = channels("image_mean", image_mean)
        self.image_std = channels("image_std", image_std)
        self.rescale_factor = float(rescale_factor)
        self.resample = resample_name(resample)
        self.mask_size = int(mask_size)
        self.target_size = int(target_size) if target_size is not None else self.size

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> Sam3Processor:
        """Load from a checkpoint folder or hub id holding `processor_config.json` and `tokenizer.json`.

        Every field of the file's `image_processor` section that the reference acts on is read
        (size, resample, rescale, mean, std, mask size), with `point_pad_value` and `target_size`;
        keyword arguments override them.
        """
        hub_kwargs = {
            k: kwargs.pop(k) for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs
        }
        folder = Path(resolve_checkpoint_dir(name_or_path, **hub_kwargs))
        settings: dict[str, Any] = {}
        config_path = folder / "processor_config.json"
        if config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            settings = settings_from_processor_config(config, config_path)
            if "size" not in settings and "target_size" in settings:
                settings["size"] = settings["target_size"]
        elif (folder / "config.json").is_file():  # no processor file: the model's own image size
            model_cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            model_cfg = model_cfg.get("detector_config", model_cfg)
            size = model_cfg.get("vision_config", {}).get("backbone_config", {}).get("image_size")
            if isinstance(size, int):
                settings["size"] = size
        settings.update(kwargs)
        max_length = settings.get("text_max_length", 32)
        tokenizer = CLIPTokenizer.from_pretrained(folder, max_length=max_length)
        return cls(tokenizer=tokenizer, **settings)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `processor_config.json` and the tokenizer files (`tokenizer.json`,
        `tokenizer_config.json`): the files `from_pretrained` and the reference's read back."""
        image = image_processor_settings(
            self.size,
            self.mask_size,
            "Sam3ImageProcessor",
            mean=self.image_mean,
            std=self.image_std,
            rescale_factor=self.rescale_factor,
            resample=self.resample,
        )
        path = write_processor_config(
            save_directory,
            {
                "image_processor": image,
                "point_pad_value": self.point_pad_value,
                "processor_class": type(self).__name__,
                "target_size": self.target_size,
            },
        )
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)
        return path.parent

    # -- inputs ---------------------------------------------------------------------------------

    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput] | None = None,
        text: str | Sequence[str | None] | None = None,
        segmentation_maps: Any = None,
        input_boxes: Sequence[Sequence[Sequence[float]] | None] | torch.Tensor | np.ndarray | None = None,
        input_boxes_labels: Sequence[Sequence[int] | None] | torch.Tensor | np.ndarray | None = None,
        original_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None,
        return_tensors: str | None = "pt",
        device: str | torch.device | None = None,
    ) -> Sam3ProcessorOutput:
        """Build model inputs.

        Args:
            images: one image or a list (PIL, numpy, torch, or paths).
            text: one phrase, or one phrase (or None) per image.
            segmentation_maps: optional label maps, one (H, W) per image, resized to `mask_size`
                by the nearest pixel centre (returned as `labels`).
            input_boxes: per image a list of (x1, y1, x2, y2) boxes in pixels of the original image, or None.
            input_boxes_labels: per image a list of labels (1 positive, 0 negative), or None (all positive).
            original_sizes: (height, width) per image, when boxes are given without images.
            return_tensors: only "pt" is supported.

        Returns:
            `Sam3ProcessorOutput` with, as available: pixel_values (B, 3, S, S) float32,
            original_sizes (B, 2) long, input_ids and attention_mask (B, 32) long,
            input_boxes (B, N, 4) float32 normalised cxcywh, input_boxes_labels (B, N) long.
        """
        if return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors must be 'pt', got {return_tensors!r}")
        if images is None and text is None and input_boxes is None:
            raise ValueError("nothing to process: pass images, text and/or input_boxes")
        out = Sam3ProcessorOutput()
        sizes: list[tuple[int, int]] | None = None
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
            out["original_sizes"] = torch.tensor(sizes, dtype=torch.long)
        elif original_sizes is not None:
            sizes = [(int(h), int(w)) for h, w in _as_nested_list(original_sizes)]
            out["original_sizes"] = torch.tensor(sizes, dtype=torch.long)
        num_images = len(sizes) if sizes is not None else None
        if segmentation_maps is not None:
            if sizes is None:
                raise ValueError("segmentation_maps need images (or original_sizes), one map per image")
            out["labels"] = resize_label_maps(segmentation_maps, len(sizes), self.mask_size)

        boxes = self._check_boxes(input_boxes, num_images)
        labels = self._check_labels(input_boxes_labels, boxes)
        phrases = self._resolve_text(text, boxes, num_images)
        if phrases is not None:
            if self.tokenizer is None:
                raise ValueError(
                    "this processor has no tokenizer; load it with Sam3Processor.from_pretrained"
                )
            out.update(self.tokenizer(phrases, max_length=self.text_max_length))
        if boxes is not None:
            if sizes is None:
                raise ValueError("input_boxes need the image sizes: pass images (or original_sizes)")
            out["input_boxes"], out["input_boxes_labels"] = self._pad_boxes(boxes, labels, sizes)
        if device is not None:
            out = out.to(device)
        return out

    def _check_boxes(self, input_boxes: Any, num_images: int | None) -> list[list[list[float]] | None] | None:
        if input_boxes is None:
            return None
        boxes = _as_nested_list(input_boxes)
        if not isinstance(boxes, (list, tuple)):
            raise ValueError(
                f"input_boxes must be a list with one entry per image, got {type(input_boxes).__name__}"
            )
        if num_images is not None and len(boxes) != num_images:
            raise ValueError(f"input_boxes has {len(boxes)} entries but there are {num_images} images")
        out: list[list[list[float]] | None] = []
        for i, image_boxes in enumerate(boxes):
            if image_boxes is None:
                out.append(None)
                continue
            if not isinstance(image_boxes, (list, tuple)) or any(
                not isinstance(b, (list, tuple)) or len(b) != 4 for b in image_boxes
            ):
                raise ValueError(
                    f"input_boxes[{i}] must be a list of [x1, y1, x2, y2] boxes (nesting [image][box][4]), "
                    f"got {image_boxes!r}"
                )
            for j, (x1, y1, x2, y2) in enumerate(image_boxes):
                if x2 < x1 or y2 < y1:
                    raise ValueError(
                        f"input_boxes[{i}][{j}] = {[x1, y1, x2, y2]} is not (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2"
                    )
            out.append([[float(v) for v in b] for b in image_boxes])
        return out

    def _check_labels(self, input_boxes_labels: Any, boxes: list | None) -> list[list[int] | None] | None:
        if input_boxes_labels is None:
            if boxes is None:
                return None
            return [None if b is None else [1] * len(b) for b in boxes]
        if boxes is None:
            raise ValueError("input_boxes_labels were given without input_boxes")
        labels = _as_nested_list(input_boxes_labels)
        if not isinstance(labels, (list, tuple)) or len(labels) != len(boxes):
            raise ValueError(
                f"input_boxes_labels must have one entry per image ({len(boxes)}), got {input_boxes_labels!r}"
            )
        out: list[list[int] | None] = []
        for i, (image_labels, image_boxes) in enumerate(zip(labels, boxes, strict=True)):
            if image_labels is None and image_boxes is None:
                out.append(None)
                continue
            if image_boxes is None:
                raise ValueError(f"input_boxes_labels[{i}] = {image_labels!r} but image {i} has no boxes")
            if image_labels is None:
                out.append([1] * len(image_boxes))
                continue
            if not isinstance(image_labels, (list, tuple)) or len(image_labels) != len(image_boxes):
                raise ValueError(
                    f"input_boxes_labels[{i}] = {image_labels!r} must have one label per box "
                    f"({len(image_boxes)} boxes)"
                )
            bad = [v for v in image_labels if v not in (0, 1)]
            if bad:
                raise ValueError(
                    f"input_boxes_labels[{i}] has {bad[0]!r}; expected 1 (positive) or 0 (negative)"
                )
            out.append([int(v) for v in image_labels])
        return out

    def _resolve_text(self, text: Any, boxes: list | None, num_images: int | None) -> str | list[str] | None:
        """The phrase(s) to tokenize; "visual" where an image has boxes but no phrase."""
        if text is None:
            if boxes is None:
                return None
            missing = [i for i, b in enumerate(boxes) if not b]
            if missing:
                raise ValueError(f"image {missing[0]} has neither a text prompt nor boxes")
            return VISUAL_PROMPT
        if isinstance(text, str):
            self._check_phrase(text, None)
            return text
        if not isinstance(text, (list, tuple)):
            raise ValueError(
                f"text must be a string or a list of strings (or None), got {type(text).__name__}"
            )
        count = num_images if num_images is not None else (len(boxes) if boxes is not None else None)
        if count is not None and len(text) != count:
            raise ValueError(
                f"got {len(text)} text prompts for {count} images; pass one per image (None for none)"
            )
        if boxes is not None and len(text) != len(boxes):
            raise ValueError(f"got {len(text)} text prompts but boxes for {len(boxes)} images")
        phrases = []
        for i, phrase in enumerate(text):
            if phrase is None:
                if boxes is None or not boxes[i]:
                    raise ValueError(f"image {i} has neither a text prompt nor boxes")
                phrases.append(VISUAL_PROMPT)
            else:
                self._check_phrase(phrase, i)
                phrases.append(phrase)
        return phrases

    @staticmethod
    def _check_phrase(phrase: Any, index: int | None) -> None:
        where = "text" if index is None else f"text[{index}]"
        if not isinstance(phrase, str):
            raise ValueError(f"{where} must be a string, got {phrase!r} ({type(phrase).__name__})")
        if not phrase.strip():
            raise ValueError(f"{where} is empty; give a noun phrase such as 'yellow school bus'")

    def _pad_boxes(
        self, boxes: list, labels: list, sizes: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad to (B, N, 4) / (B, N), normalise by (w, h) and convert xyxy → cxcywh."""
        if len(boxes) != len(sizes):
            raise ValueError(f"input_boxes has {len(boxes)} entries but there are {len(sizes)} images")
        n = max((len(b) for b in boxes if b is not None), default=0)
        pad = float(self.point_pad_value)
        xyxy = torch.full((len(boxes), n, 4), pad, dtype=torch.float32)
        out_labels = torch.full((len(boxes), n), int(self.point_pad_value), dtype=torch.long)
        for i, (image_boxes, image_labels) in enumerate(zip(boxes, labels, strict=True)):
            if not image_boxes:
                continue
            h, w = sizes[i]
            scale = torch.tensor([w, h, w, h], dtype=torch.float32)
            xyxy[i, : len(image_boxes)] = torch.tensor(image_boxes, dtype=torch.float32) / scale
            out_labels[i, : len(image_labels)] = torch.tensor(image_labels, dtype=torch.long)
        x1, y1, x2, y2 = xyxy.unbind(-1)
        cxcywh = torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)
        return cxcywh, out_labels

    # -- outputs --------------------------------------------------------------------------------

    @staticmethod
    def _target_sizes(target_sizes: Any, batch: int) -> list[tuple[int, int]] | None:
        if target_sizes is None:
            return None
        sizes = [(int(h), int(w)) for h, w in _as_nested_list(target_sizes)]
        if len(sizes) != batch:
            raise ValueError(f"got {len(sizes)} target sizes for a batch of {batch} images")
        return sizes

    @staticmethod
    def _scores(outputs: Any) -> torch.Tensor:
        scores = outputs.pred_logits.sigmoid()  # (B, Q)
        if outputs.presence_logits is not None:
            scores = scores * outputs.presence_logits.sigmoid()
        return scores

    @staticmethod
    def _scale_boxes(boxes: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
        if size is None:
            return boxes
        h, w = size
        return boxes * torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)

    def post_process_instance_segmentation(
        self,
        outputs: Any,
        threshold: float = 0.3,
        mask_threshold: float = 0.5,
        target_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """Keep the instances scoring above `threshold` and binarise their masks.

        The score of a query is sigmoid(pred_logits) * sigmoid(presence_logits).

        Args:
            outputs: `Sam3Model` output.
            threshold: minimum score of a kept instance.
            mask_threshold: probability above which a mask pixel is on.
            target_sizes: (height, width) per image to resize masks and scale boxes to
                (usually `inputs["original_sizes"]`); None keeps the model's mask size and [0, 1] boxes.

        Returns:
            per image a dict: scores (K,), boxes (K, 4) xyxy in pixels, masks (K, H, W) long 0/1.
        """
        scores_all = self._scores(outputs)
        sizes = self._target_sizes(target_sizes, scores_all.shape[0])
        results = []
        for i in range(scores_all.shape[0]):
            keep = scores_all[i] > threshold
            size = None if sizes is None else sizes[i]
            probs = outputs.pred_masks[i][keep].sigmoid()  # (K, h, w)
            if size is not None:
                # (the reference leaves an empty result at the model's mask size; (0, H, W) is consistent)
                probs = (
                    F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
                    if probs.shape[0]
                    else probs.new_zeros((0, *size))
                )
            results.append(
                {
                    "scores": scores_all[i][keep],
                    "boxes": self._scale_boxes(outputs.pred_boxes[i][keep], size),
                    "masks": (probs > mask_threshold).to(torch.long),
                }
            )
        return results

    def post_process_object_detection(
        self,
        outputs: Any,
        threshold: float = 0.3,
        target_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """Per image a dict: scores (K,) and boxes (K, 4) xyxy (pixels with `target_sizes`)."""
        scores_all = self._scores(outputs)
        sizes = self._target_sizes(target_sizes, scores_all.shape[0])
        results = []
        for i in range(scores_all.shape[0]):
            keep = scores_all[i] > threshold
            size = None if sizes is None else sizes[i]
            results.append(
                {"scores": scores_all[i][keep], "boxes": self._scale_boxes(outputs.pred_boxes[i][keep], size)}
            )
        return results

    def post_process_semantic_segmentation(
        self,
        outputs: Any,
        target_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None,
        threshold: float = 0.5,
        return_segmentation_scores: bool = False,
    ) -> list[torch.Tensor] | list[dict[str, torch.Tensor]]:
        """Binarise `semantic_seg`: per image a (H, W) long map (1 = the concept).

        With `return_segmentation_scores`, per image a dict with `segmentation` (H, W) and
        `segmentation_scores` (1, H, W) probabilities.
        """
        if outputs.semantic_seg is None:
            raise ValueError("the model output has no semantic_seg")
        probs = outputs.semantic_seg.sigmoid()  # (B, 1, h, w)
        sizes = self._target_sizes(target_sizes, probs.shape[0])
        results: list = []
        for i in range(probs.shape[0]):
            p = probs[i]
            if sizes is not None:
                p = F.interpolate(p[None], size=sizes[i], mode="bilinear", align_corners=False)[0]
            seg = (p[0] > threshold).to(torch.long)
            results.append(
                {"segmentation": seg, "segmentation_scores": p} if return_segmentation_scores else seg
            )
        return results
