"""SAM3-LiteText: SAM 3's concept detector with a small MobileCLIP text encoder.

`Sam3LiteTextModel` is `Sam3Model` built around `LiteTextEncoder` in place of the 24-layer CLIP
encoder (about 42 M, 64 M or 124 M parameters instead of 353 M); image features, prompts, heads and
outputs are SAM 3's. `Sam3LiteTextTextModel` is the text encoder alone.

Hub layout (what the reference's `save_pretrained` writes): the detector's keys without a prefix
(`vision_encoder.*`, `text_encoder.*`, `text_projection.*`, heads), BatchNorm counters included.
There is no tracker in these checkpoints: clicks and video tracking take SAM 3's tracker from
another checkpoint (see the SDK's `tracker_model`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..checkpoint import PreTrainedModel
from ..checkpoint_keys import LITE_TEXT_DETECTOR, LITE_TEXT_TEXT_MODEL
from ..config.lite_text import Sam3LiteTextConfig, Sam3LiteTextTextConfig
from ..modeling.backbones.vit import Sam3ViTModel
from ..modeling.lite_text import LiteTextEncoder
from ..outputs import Sam3TextOutput
from .sam3 import Sam3Model

__all__ = ["Sam3LiteTextModel", "Sam3LiteTextTextModel"]


class Sam3LiteTextModel(Sam3Model):
    """SAM 3 promptable concept segmentation with the LiteText encoder; the API is `Sam3Model`'s."""

    config_class = Sam3LiteTextConfig
    config_key = None
    checkpoint_layout = LITE_TEXT_DETECTOR

    def __init__(self, config: Sam3LiteTextConfig, backbone: Sam3ViTModel | None = None):
        super().__init__(config, backbone=backbone, text_encoder=LiteTextEncoder(config.text_config))

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **unused: Any
    ) -> Sam3TextOutput:
        """Encode phrases once to reuse them with several images.

        Args:
            input_ids: (B, L) token ids; attention_mask: (B, L), 1 for tokens, 0 for padding.

        Returns:
            `Sam3TextOutput`: `text_embeds` (B, projection_dim) the pooled, projected phrase,
            `last_hidden_state` (B, L, text hidden), and `pooler_output` (B, L, detector hidden), the
            per-token prompt features `forward(text_embeds=...)` takes.
        """
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        hidden, phrase = self.text_encoder(input_ids, attention_mask)
        return Sam3TextOutput(
            text_embeds=phrase, last_hidden_state=hidden, pooler_output=self.text_projection(hidden)
        )


class Sam3LiteTextTextModel(LiteTextEncoder, PreTrainedModel):
    """The LiteText text encoder alone, from its own checkpoint or a whole LiteText one.

    `model(input_ids, attention_mask)` returns a `Sam3TextOutput` with `last_hidden_state`
    (B, L, hidden_size) and `pooler_output` (B, projection_dim), as the reference's does.
    """

    config_class = Sam3LiteTextTextConfig
    config_key = "text_config"
    checkpoint_layout = LITE_TEXT_TEXT_MODEL

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Sam3TextOutput:
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        hidden, phrase = super().forward(input_ids, attention_mask)
        return Sam3TextOutput(last_hidden_state=hidden, pooler_output=phrase)
