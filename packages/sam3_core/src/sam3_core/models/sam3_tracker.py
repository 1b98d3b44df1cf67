"""`Sam3TrackerModel`: promptable segmentation of still images with points, boxes and masks.

The SAM 3 backbone with the tracker's own FPN neck feeds the prompt encoder and mask decoder; those
parts and the image-feature path are `TrackerBase`'s (`tracker_base.py`), shared with the video
tracker. This file adds the image API: input checks, embeddings reuse, the reference's outputs.

Loading: the combined `facebook/sam3` checkpoint holds the backbone under `detector_model.` and
the tracker under `tracker_model.` / `tracker_neck.`; a single-model layout (keys already without
those prefixes) loads too. The memory modules of the video tracker are ignored on purpose.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..checkpoint_keys import IMAGE_TRACKER
from ..config import (
    BaseConfig,
    Sam3TrackerConfig,
    Sam3TrackerMaskDecoderConfig,
    Sam3TrackerPromptEncoderConfig,
    Sam3TrackerVideoConfig,
)
from ..modeling.backbones.vit import Sam3ViTModel
from ..outputs import ModelOutput, Sam3VisionOutput
from .tracker_base import TrackerBase

_VALID_LABELS = (-10, -1, 0, 1, 2, 3)


@dataclass
class Sam3TrackerImageSegmentationOutput(ModelOutput):
    """Output of `Sam3TrackerModel.forward`.

    iou_scores: (B, P, M) predicted IoU of each mask (M = 3 with multimask output, else 1).
    pred_masks: (B, P, M, 4h, 4w) low-resolution mask logits (288 x 288 for a 1008 px model);
        `Sam3TrackerProcessor.post_process_masks` brings them to the original image size.
    object_score_logits: (B, P, 1) logit that the prompted object is present.
    image_embeddings: the three (B, C_i, h_i, w_i) feature maps the decoder used, finest first;
        pass them back as `image_embeddings=` to prompt the same images again without the backbone.
    """

    iou_scores: Tensor | None = None
    pred_masks: Tensor | None = None
    object_score_logits: Tensor | None = None
    image_embeddings: list[Tensor] | None = None
    vision_hidden_states: tuple[Tensor, ...] | None = None
    vision_attentions: tuple[Tensor, ...] | None = None
    mask_decoder_attentions: tuple[Tensor, ...] | None = None


class Sam3TrackerModel(TrackerBase):
    """SAM 3 tracker on images: segment one object per prompt (points, a box, a mask, or a mix).

    Args:
        config: a `Sam3TrackerConfig` (or a combined `Sam3VideoConfig`; its tracker part is used).
        backbone: an existing ViT to share with other models (one trunk, a neck each).
    """

    config_class = Sam3TrackerConfig
    config_key = "tracker_config"
    checkpoint_layout = IMAGE_TRACKER  # the video tracker's memory modules are not read

    def __init__(self, config: Sam3TrackerConfig, backbone: Sam3ViTModel | None = None) -> None:
        if hasattr(config, "tracker_config"):  # a combined sam3_video config
            config = _tracker_config_of(config.tracker_config)
        # `no_memory_embedding` is in the checkpoint but unused on images: the reference adds it
        # to the *fourth* FPN level (0.5x), which the decoder never reads, so it has no effect;
        # we match its numbers and skip the addition. (SAM 2, with three levels, did add it.)
        super().__init__(config, backbone=backbone)

    # ------------------------------------------------------------------------------------------
    # Checkpoint layout
    # ------------------------------------------------------------------------------------------

    @classmethod
    def config_from_checkpoint_dict(cls, data: dict[str, Any]) -> Sam3TrackerConfig:
        tracker = data.get("tracker_config") if isinstance(data.get("tracker_config"), dict) else data
        if tracker.get("model_type") == "sam3_tracker_video":
            return _tracker_config_of(Sam3TrackerVideoConfig.from_dict(tracker))
        return super().config_from_checkpoint_dict(data)

    @classmethod
    def _accepts_model_type(cls, model_type: str) -> bool:
        return model_type == "sam3_tracker_video"

    # ------------------------------------------------------------------------------------------
    # Image features
    # ------------------------------------------------------------------------------------------

    def get_image_features(self, pixel_values: Tensor) -> Sam3VisionOutput:
        """Backbone + tracker neck, with the decoder's high-resolution projections applied once.

        pixel_values: (B, 3, S, S) from the processor.
        Returns a `Sam3VisionOutput` whose `fpn_hidden_states` / `fpn_position_encoding` are lists
        of (h_i * w_i, B, C_i) sequences, finest level first (the reference's layout); levels 0
        and 1 went through `mask_decoder.conv_s0` / `conv_s1`.
        """
        features = self._image_features(pixel_values)
        vision = features.vision
        maps = features.maps + list(vision.fpn_hidden_states[3:])
        return dataclasses.replace(
            vision,
            fpn_hidden_states=[m.flatten(2).permute(2, 0, 1) for m in maps],
            fpn_position_encoding=[p.flatten(2).permute(2, 0, 1) for p in vision.fpn_position_encoding],
        )

    def image_embeddings_from_vision(self, vision: Sam3VisionOutput) -> list[Tensor]:
        """The decoder's three maps from this model's vision output (or from
        `vision_encoder.from_backbone_map(...)` when the backbone map comes from a shared backbone)."""
        return self._image_features_from_vision(vision).maps

    @torch.no_grad()
    def get_image_embeddings(self, pixel_values: Tensor) -> list[Tensor]:
        """pixel_values (B, 3, S, S) -> [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w), (B, C, h, w)].

        Compute them once per image and pass them as `image_embeddings=` to `forward` for every
        new prompt on that image.
        """
        return self._image_features(pixel_values).maps

    @torch.no_grad()
    def get_prompt_embeddings(
        self,
        input_points: Tensor | None = None,
        input_labels: Tensor | None = None,
        input_boxes: Tensor | None = None,
        input_masks: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(sparse (B, P, T, C), dense) prompt embeddings; see `PromptEncoder.forward`."""
        return self.prompt_encoder(input_points, input_labels, input_boxes, input_masks)

    # ------------------------------------------------------------------------------------------
    # Prompted segmentation
    # ------------------------------------------------------------------------------------------

    def forward(
        self,
        pixel_values: Tensor | None = None,
        input_points: Tensor | None = None,
        input_labels: Tensor | None = None,
        input_boxes: Tensor | None = None,
        input_masks: Tensor | None = None,
        image_embeddings: list[Tensor] | tuple[Tensor, ...] | None = None,
        multimask_output: bool = True,
        attention_similarity: Tensor | None = None,
        target_embedding: Tensor | None = None,
        original_sizes: Any = None,
        labels: Any = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> Sam3TrackerImageSegmentationOutput | tuple:
        """Segment P objects on each of B images.

        Args:
            pixel_values: (B, 3, S, S) images from the processor; or give `image_embeddings`.
            input_points: (B, P, N, 2) click coordinates in model-input pixels (x, y).
            input_labels: (B, P, N) 1 positive, 0 negative, -1 not-a-point, -10 padding; default 1.
            input_boxes: (B, P, 4) xyxy boxes in model-input pixels, one per object.
            input_masks: (B, H, W) or (B, P, H, W) mask logits (e.g. an earlier `pred_masks`).
            image_embeddings: the list from `get_image_embeddings` or an earlier output.
            multimask_output: 3 candidate masks per object (for ambiguous single clicks), else 1.
            attention_similarity, target_embedding: PerSAM-style target guidance (optional).
            original_sizes, labels: processor outputs that the model does not use (accepted so that
                `model(**processor(...))` works).
            output_hidden_states: also return `vision_hidden_states`, the ViT's token maps
                (B, h, w, C) after its input layer norm and after each layer (needs `pixel_values`).
                Defaults to `config.output_hidden_states`.
            output_attentions: attention weights are not available (the attention kernels do not
                form them); True raises.
            return_dict: False returns the output's non-empty fields as a tuple. Defaults to
                `config.return_dict`.
        """
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("give exactly one of pixel_values or image_embeddings")
        if output_attentions if output_attentions is not None else self.config.output_attentions:
            raise ValueError(
                "output_attentions=True is not supported: the fused attention kernels never form the "
                "attention weights"
            )
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        hidden_states = None
        if pixel_values is not None:
            if output_hidden_states:
                image_embeddings, hidden_states = self._image_features_with_hidden_states(pixel_values)
            else:
                image_embeddings = self._image_features(pixel_values).maps
        else:
            image_embeddings = self._check_image_embeddings(image_embeddings)
        batch_size = image_embeddings[-1].shape[0]
        input_points, input_labels, input_boxes, input_masks = self._check_prompts(
            batch_size, input_points, input_labels, input_boxes, input_masks
        )
        decoded = self.decode_masks(
            image_embeddings,
            input_points,
            input_labels,
            input_boxes,
            input_masks,
            multimask_output=multimask_output,
            batch_size=batch_size,
            attention_similarity=attention_similarity,
            target_embedding=target_embedding,
        )
        output = Sam3TrackerImageSegmentationOutput(
            iou_scores=decoded.iou_scores,
            pred_masks=decoded.masks,
            object_score_logits=decoded.object_score_logits,
            image_embeddings=image_embeddings,
            vision_hidden_states=hidden_states,
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()

    def _image_features_with_hidden_states(
        self, pixel_values: Tensor
    ) -> tuple[list[Tensor], tuple[Tensor, ...]]:
        """The decoder's maps plus the ViT's token maps: its first layer's input, then every layer's
        output, each (B, h, w, C)."""
        if self.vision_encoder is None:
            return self._image_features(pixel_values).maps, ()  # raises the usual error
        layers = self.vision_encoder.backbone.layers
        states: list[Tensor] = []
        handles = [layers[0].register_forward_pre_hook(lambda _m, args: states.append(args[0]))]
        handles += [layer.register_forward_hook(lambda _m, _a, out: states.append(out)) for layer in layers]
        try:
            maps = self._image_features(pixel_values).maps
        finally:
            for handle in handles:
                handle.remove()
        return maps, tuple(states)

    # ------------------------------------------------------------------------------------------
    # Input checks
    # ------------------------------------------------------------------------------------------

    def _check_image_embeddings(self, embeddings: list[Tensor] | tuple[Tensor, ...]) -> list[Tensor]:
        if not isinstance(embeddings, (list, tuple)) or len(embeddings) != 3:
            raise ValueError(
                "image_embeddings must be the list of 3 feature maps from get_image_embeddings() "
                f"(or outputs.image_embeddings), got {type(embeddings).__name__}"
                + (f" of length {len(embeddings)}" if isinstance(embeddings, (list, tuple)) else "")
            )
        grid = self.prompt_encoder.image_embedding_size
        hidden = self.config.vision_config.fpn_hidden_size
        expected = [
            (hidden // 8, 4 * grid[0], 4 * grid[1]),
            (hidden // 4, 2 * grid[0], 2 * grid[1]),
            (hidden, *grid),
        ]
        batch = embeddings[-1].shape[0]
        for i, (emb, shape) in enumerate(zip(embeddings, expected, strict=True)):
            if emb.ndim != 4 or tuple(emb.shape[1:]) != shape or emb.shape[0] != batch:
                raise ValueError(
                    f"image_embeddings[{i}] has shape {tuple(emb.shape)}; expected ({batch}, {', '.join(map(str, shape))})"
                )
        return [e.to(device=self.device, dtype=self.dtype) for e in embeddings]

    def _check_prompts(
        self,
        batch_size: int,
        points: Tensor | None,
        labels: Tensor | None,
        boxes: Tensor | None,
        masks: Tensor | None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
        """Validate prompt tensors (shapes, batch sizes, finite values, label values); move them."""
        device = self.device
        if points is not None:
            points = _as_float(points, "input_points")
            if points.ndim != 4 or points.shape[-1] != 2:
                raise ValueError(
                    f"input_points must be (batch, objects, points, 2), got shape {tuple(points.shape)}"
                )
            _check_batch("input_points", points, batch_size)
            points = points.to(device)
        if labels is not None:
            labels = torch.as_tensor(labels)
            if points is None:
                raise ValueError("input_labels were given without input_points")
            if labels.is_floating_point() and _has_values(labels) and not torch.equal(labels, labels.round()):
                raise ValueError("input_labels must be integers (1, 0, -1 or -10)")
            if tuple(labels.shape) != tuple(points.shape[:-1]):
                raise ValueError(
                    f"input_labels shape {tuple(labels.shape)} does not match input_points shape "
                    f"{tuple(points.shape)}; expected labels of shape {tuple(points.shape[:-1])}"
                )
            labels = labels.to(dtype=torch.int64)
            bad = (
                labels[~torch.isin(labels, torch.tensor(_VALID_LABELS, device=labels.device))]
                if _has_values(labels)
                else labels[:0]
            )
            if bad.numel():
                raise ValueError(
                    f"input_labels contains {bad.unique().tolist()}; expected 1 (positive), 0 (negative), "
                    "-1 (not a point), -10 (padding), or 2 / 3 (box corners)"
                )
            labels = labels.to(device)
        if boxes is not None:
            boxes = _as_float(boxes, "input_boxes")
            if boxes.ndim != 3 or boxes.shape[-1] != 4:
                raise ValueError(f"input_boxes must be (batch, boxes, 4), got shape {tuple(boxes.shape)}")
            _check_batch("input_boxes", boxes, batch_size)
            if points is not None and points.shape[1] != boxes.shape[1]:
                raise ValueError(
                    f"got {points.shape[1]} objects with points but {boxes.shape[1]} boxes; with both prompts "
                    "give one box per object"
                )
            boxes = boxes.to(device)
        if masks is not None:
            masks = torch.as_tensor(masks)
            if masks.dtype == torch.bool:
                masks = masks.float()
            if masks.ndim not in (3, 4):
                raise ValueError(
                    f"input_masks must be (batch, H, W) or (batch, objects, H, W), got {tuple(masks.shape)}"
                )
            _check_batch("input_masks", masks, batch_size)
            objects = points.shape[1] if points is not None else boxes.shape[1] if boxes is not None else 1
            if masks.ndim == 4 and masks.shape[1] not in (1, objects):
                raise ValueError(
                    f"input_masks has {masks.shape[1]} masks per image but the prompts have {objects} objects"
                )
            if masks.is_floating_point() and _has_values(masks) and not torch.isfinite(masks).all():
                raise ValueError("input_masks contains NaN or infinite values")
            masks = masks.to(device)  # one mask per image applies to all its objects
        return points, labels, boxes, masks


def _tracker_config_of(config: BaseConfig | dict) -> Sam3TrackerConfig:
    """The image tracker's config out of a tracker (video) config."""
    if isinstance(config, dict):
        config = (
            Sam3TrackerVideoConfig.from_dict(config)
            if config.get("model_type") == "sam3_tracker_video"
            else (Sam3TrackerConfig.from_dict(config))
        )
    if isinstance(config, Sam3TrackerConfig):
        return config
    return Sam3TrackerConfig(
        vision_config=config.vision_config,
        prompt_encoder_config=Sam3TrackerPromptEncoderConfig.from_dict(
            config.prompt_encoder_config.to_dict()
        ),
        mask_decoder_config=Sam3TrackerMaskDecoderConfig.from_dict(config.mask_decoder_config.to_dict()),
        initializer_range=config.initializer_range,
    )


def _as_float(x: Any, name: str) -> Tensor:
    x = torch.as_tensor(x)
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
    x = x.float() if not x.is_floating_point() else x
    if _has_values(x) and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _has_values(x: Tensor) -> bool:
    """False for tensors on the `meta` device (shapes only): value checks are skipped there, so the
    device test can run a whole forward on meta inputs."""
    return x.device.type != "meta"


def _check_batch(name: str, x: Tensor, batch_size: int) -> None:
    if x.shape[0] != batch_size:
        raise ValueError(f"{name} is for {x.shape[0]} images but {batch_size} images were given")
