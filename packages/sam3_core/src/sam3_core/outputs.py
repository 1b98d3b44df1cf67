"""Output containers: dataclasses with attribute access, `out["name"]` and tuple conversion."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from .scalars import is_int

__all__ = ["ModelOutput", "Sam3VisionOutput"]


@dataclass
class ModelOutput:
    """Base of every model output. Fields left at `None` are skipped by `keys()` and `to_tuple()`."""

    def __getitem__(self, key: str | int) -> Any:
        if is_int(key):
            return self.to_tuple()[int(key)]
        if key not in self.keys():
            raise KeyError(f"{type(self).__name__} has no output {key!r}; it has {self.keys()}")
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, k) for k in self.keys())


@dataclass
class Sam3VisionOutput(ModelOutput):
    """Image features of the ViT backbone and its FPN neck.

    last_hidden_state: (B, H*W, C) backbone tokens, H = W = image_size / patch_size.
    fpn_hidden_states: one (B, fpn_hidden_size, h_i, w_i) map per FPN level, finest first.
    fpn_position_encoding: sine position encodings, same shapes as `fpn_hidden_states`.
    """

    last_hidden_state: torch.Tensor | None = None
    fpn_hidden_states: tuple[torch.Tensor, ...] | None = None
    fpn_position_encoding: tuple[torch.Tensor, ...] | None = None


@dataclass
class Sam3TextOutput(ModelOutput):
    """Encoded phrases of the concept detector (`Sam3Model.get_text_features`).

    text_embeds: (B, projection_dim) CLIP's projected embedding of each phrase (its end token).
    last_hidden_state: (B, L, text_hidden) CLIP token states.
    pooler_output: (B, L, detector_hidden) the same tokens projected for the detector; this is what
        `Sam3Model.forward(text_embeds=...)` consumes (the reference's name for it).
    """

    text_embeds: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None


@dataclass
class Sam3ImageSegmentationOutput(ModelOutput):
    """Concept segmentation of `Sam3Model`, Q = num_queries candidate instances per image.

    pred_masks: (B, Q, h, w) instance mask logits at 4x the backbone grid (288 for 1008 px inputs).
    pred_boxes: (B, Q, 4) boxes (x1, y1, x2, y2) normalised to [0, 1].
    pred_logits: (B, Q) per-instance match logits (prompt · query).
    presence_logits: (B, 1) whether the concept is present at all; final score =
        sigmoid(pred_logits) * sigmoid(presence_logits).
    semantic_seg: (B, 1, h, w) semantic segmentation logits.
    decoder_reference_boxes: (num_layers, B, Q, 4) the boxes (cx, cy, w, h in [0, 1]) each DETR
        decoder layer started from.
    """

    pred_masks: torch.Tensor | None = None
    pred_boxes: torch.Tensor | None = None
    pred_logits: torch.Tensor | None = None
    presence_logits: torch.Tensor | None = None
    semantic_seg: torch.Tensor | None = None
    decoder_reference_boxes: torch.Tensor | None = None


__all__ += ["Sam3TextOutput", "Sam3ImageSegmentationOutput"]


@dataclass
class Sam3TrackerVideoSegmentationOutput(ModelOutput):
    """One frame of `Sam3TrackerVideoModel` (forward / propagate_in_video_iterator).

    object_ids: the client ids of the objects, in the order of the masks.
    pred_masks: (num_objects, 1, 4h, 4w) low-resolution mask logits (288 x 288 for a 1008 px model);
        `Sam3TrackerVideoProcessor.post_process_masks` brings them to the video size.
    object_score_logits: (num_objects, 1) logit that each object is visible on the frame.
    frame_idx: the frame these masks belong to.
    """

    object_ids: list[int] | None = None
    pred_masks: torch.Tensor | None = None
    object_score_logits: torch.Tensor | None = None
    frame_idx: int | None = None


__all__ += ["Sam3TrackerVideoSegmentationOutput"]
