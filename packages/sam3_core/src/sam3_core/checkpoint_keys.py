"""Where each model's tensors sit in the combined `facebook/sam3` checkpoint (the hub layout).

The hub file is the `state_dict()` of the reference's combined video model:

    hub key                                    detector            trackers               vision model
    detector_model.vision_encoder.backbone.X   vision_encoder.     vision_encoder.        backbone.X
                                               backbone.X          backbone.X
    detector_model.vision_encoder.neck.X       vision_encoder.     -                      neck.X ("detector")
                                               neck.X
    detector_model.Y (text encoder, heads)     Y                   -                      -
    tracker_neck.X                             -                   vision_encoder.neck.X  neck.X ("tracker")
    tracker_model.Z                            -                   Z (*)                  -

    (*) the image tracker has no memory modules: their keys are ignored for it.

EdgeTAM's checkpoint is its own (`EDGETAM_VIDEO` below). Keys without a hub prefix are a single-model checkpoint (saved from one of our models) and keep
their names. Every other model's tensors are ignored on purpose, so loading stays strict: a key is
either mapped onto the model or named here as not its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "HUB_PREFIXES",
    "KeyLayout",
    "Rename",
    "DETECTOR",
    "IMAGE_TRACKER",
    "VIDEO_TRACKER",
    "VISION_WITH_DETECTOR_NECK",
    "VISION_WITH_TRACKER_NECK",
    "VISION_LAYOUTS",
    "EDGETAM_VIDEO",
    "SAM3_VIDEO",
    "LITE_TEXT_DETECTOR",
    "LITE_TEXT_TEXT_MODEL",
]

HUB_PREFIXES = ("detector_model.", "tracker_model.", "tracker_neck.")
_BACKBONE = "detector_model.vision_encoder.backbone."


@dataclass(frozen=True)
class Rename:
    """A part of a key spelled `hub` in the checkpoint and `model` in the model, at a key-component
    boundary; `{i}` in both stands for the same layer index."""

    hub: str
    model: str

    def to_model(self, key: str) -> str:
        return _pattern(self.hub).sub(_replacement(self.model), key)

    def to_hub(self, key: str) -> str:
        return _pattern(self.model).sub(_replacement(self.hub), key)


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(r"(?:^|(?<=\.))" + re.escape(template).replace(re.escape("{i}"), r"(\d+)"))


def _replacement(template: str) -> str:
    return template.replace("\\", "\\\\").replace("{i}", r"\g<1>")


@dataclass(frozen=True)
class KeyLayout:
    """How one model's `state_dict()` keys map onto the hub layout, and back.

    rules: (hub prefix, model prefix) pairs, most specific hub prefix first.
    ignored: hub prefixes of the family's other models, deliberately not read.
    ignored_model_keys: keys of the family (after mapping) that this model does not have.
    writes_own_keys: the hub checkpoint of this model holds its own keys (a single-model
        checkpoint); the rules only read other layouts.
    renames: parts of keys named differently in the checkpoint and in the model (after the prefixes).
    """

    name: str
    rules: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...] = ()
    ignored_model_keys: re.Pattern[str] | None = None
    writes_own_keys: bool = False
    renames: tuple[Rename, ...] = ()

    def to_model(self, hub_key: str) -> str | None:
        """The model key of a checkpoint key, or None when the tensor is deliberately not this model's."""
        key = None
        for hub, ours in self.rules:
            if hub_key.startswith(hub):
                key = ours + hub_key[len(hub) :]
                break
        else:
            if hub_key.startswith(self.ignored):
                return None
            key = hub_key  # a single-model checkpoint: already our names
        for rename in self.renames:
            key = rename.to_model(key)
        if self.ignored_model_keys is not None and self.ignored_model_keys.match(key):
            return None
        return key

    def to_hub(self, model_key: str) -> str:
        """The hub key of one of this model's keys (the inverse of `to_model`)."""
        if self.writes_own_keys:
            return model_key
        for rename in self.renames:
            model_key = rename.to_hub(model_key)
        matching = [(hub, ours) for hub, ours in self.rules if model_key.startswith(ours)]
        if not matching:
            raise KeyError(
                f"{model_key!r} has no place in the hub layout of the {self.name}; expected a key "
                f"starting with one of {[ours for _, ours in self.rules]}"
            )
        hub, ours = max(matching, key=lambda rule: len(rule[1]))
        return hub + model_key[len(ours) :]


DETECTOR = KeyLayout(
    "concept detector (Sam3Model)",
    rules=(("detector_model.", ""),),
    ignored=("tracker_model.", "tracker_neck."),
)

_TRACKER_RULES = (
    (_BACKBONE, "vision_encoder.backbone."),
    ("tracker_neck.", "vision_encoder.neck."),
    ("tracker_model.", ""),
)

VIDEO_TRACKER = KeyLayout(
    "video tracker (Sam3TrackerVideoModel)", rules=_TRACKER_RULES, ignored=("detector_model.",)
)

# The tracker tensors that only the video model has (memory encoder and attention, object pointers).
_VIDEO_ONLY = re.compile(
    r"^(memory_|mask_downsample|object_pointer_proj|temporal_positional_encoding_projection_layer"
    r"|no_memory_positional_encoding$|no_object_pointer$|occlusion_spatial_embedding_parameter$)"
)

IMAGE_TRACKER = KeyLayout(
    "image tracker (Sam3TrackerModel)",
    rules=_TRACKER_RULES,
    ignored=("detector_model.",),
    ignored_model_keys=_VIDEO_ONLY,
)

VISION_WITH_DETECTOR_NECK = KeyLayout(
    "vision model with the detector's neck (Sam3VisionModel)",
    rules=((_BACKBONE, "backbone."), ("detector_model.vision_encoder.neck.", "neck.")),
    ignored=HUB_PREFIXES,
)

VISION_WITH_TRACKER_NECK = KeyLayout(
    "vision model with the trackers' neck (Sam3VisionModel)",
    rules=((_BACKBONE, "backbone."), ("tracker_neck.", "neck.")),
    ignored=HUB_PREFIXES,
)

VISION_LAYOUTS = {"detector": VISION_WITH_DETECTOR_NECK, "tracker": VISION_WITH_TRACKER_NECK}


# The combined model (`Sam3VideoModel`) is the hub layout itself: detector, tracker heads and the
# tracker's neck under their hub prefixes; the backbone is read once, as the detector's.
SAM3_VIDEO = KeyLayout(
    "text-prompted video model (Sam3VideoModel)",
    rules=tuple((prefix, prefix) for prefix in HUB_PREFIXES),
)


# EdgeTAM (`yonigozlan/edgetam-video-1`) is a single-model checkpoint: its keys are the model's,
# except that the reference wraps the RepViT in timm (`vision_encoder.backbone.timm_model.X`), our
# backbone being that module itself, and that its memory attention's MLP is `mlp.up_proj` /
# `mlp.down_proj` where the memory-attention layer EdgeTAM shares with SAM 3 says `linear1` / `linear2`
# (the names of the SAM 3 checkpoint).
EDGETAM_VIDEO = KeyLayout(
    "EdgeTAM video tracker (EdgeTamVideoModel)",
    rules=(("vision_encoder.backbone.timm_model.", "vision_encoder.backbone."), ("", "")),
    renames=(
        Rename("memory_attention.layers.{i}.mlp.up_proj.", "memory_attention.layers.{i}.linear1."),
        Rename("memory_attention.layers.{i}.mlp.down_proj.", "memory_attention.layers.{i}.linear2."),
    ),
)


# SAM3-LiteText (`yonigozlan/sam3-litetext-s0`, ...) is a single-model checkpoint: the reference's
# `save_pretrained` writes the detector's own keys, unprefixed. A `detector_model.` prefix (the
# combined layout) is read too; a tracker's tensors there are not the detector's.
LITE_TEXT_DETECTOR = KeyLayout(
    "SAM3-LiteText concept detector (Sam3LiteTextModel)",
    rules=(("detector_model.", ""),),
    ignored=("tracker_model.", "tracker_neck."),
    writes_own_keys=True,
)

# The LiteText text encoder alone: its own checkpoint (unprefixed), or the `text_encoder.` part of
# a whole LiteText checkpoint, whose other parts are ignored.
_LITE_TEXT_DETECTOR_PARTS = (
    "vision_encoder.",
    "text_projection.",
    "geometry_encoder.",
    "detr_encoder.",
    "detr_decoder.",
    "mask_decoder.",
    "dot_product_scoring.",
)
LITE_TEXT_TEXT_MODEL = KeyLayout(
    "SAM3-LiteText text encoder (Sam3LiteTextTextModel)",
    rules=(("detector_model.text_encoder.", ""), ("text_encoder.", "")),
    ignored=(*HUB_PREFIXES, *_LITE_TEXT_DETECTOR_PARTS),
    writes_own_keys=True,
)
