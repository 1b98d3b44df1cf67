"""Which model the demo serves, and what to tell people when it cannot be loaded.

The demo's edge resolves a random checkpoint's name (`tiny-random`, `tiny-random-litetext`,
`tiny-random-edgetam`) into its cache folder with `sam3_sdk.testing`; the SDK loads folders and hub
ids only."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from sam3_sdk import Sam3
from sam3_sdk.testing import RANDOM_CHECKPOINTS, TINY_RANDOM, resolve_name

log = logging.getLogger("sam3_demo")

DEFAULT_MODEL = "facebook/sam3"


@dataclass
class ModelSlot:
    """The loaded model, or why there is none. Shared by every browser session (read-only)."""

    name: str
    sam: Sam3 | None = None
    error: str | None = None

    @property
    def is_random(self) -> bool:
        return self.name in RANDOM_CHECKPOINTS

    def banner(self) -> str:
        if self.error:
            if os.environ.get("SPACE_ID"):  # on a Hugging Face Space: the fix is in its settings
                return (
                    f"**The model `{self.name}` could not be loaded.** {self.error}\n\n"
                    f"To fix this Space: accept the licence on https://huggingface.co/{self.name} with your "
                    "account, create a read token (https://huggingface.co/settings/tokens), add it in the "
                    "Space's *Settings → Variables and secrets* as the secret `HF_TOKEN`, and restart the "
                    f"Space. The variable `SAM3_MODEL` chooses another model (`{TINY_RANDOM}` runs with "
                    "random weights)."
                )
            return (
                f"**The model `{self.name}` could not be loaded.** {self.error}\n\n"
                f"For an offline smoke run with meaningless masks, start the demo with `--model {TINY_RANDOM}`."
            )
        if self.is_random:
            return (
                f"**Smoke-test mode:** the model is `{self.name}`, a tiny checkpoint with RANDOM weights. "
                "Everything works, but the masks mean nothing. Use `--model facebook/sam3` for real results."
            )
        return f"Model: `{self.name}`"


def load_model(
    name: str | None = None, device: str | None = None, tracker_model: str | None = None
) -> ModelSlot:
    """Load `name` (a hub id, a folder, `tiny-random` or `tiny-random-litetext`); never raises:
    errors go into the slot.

    tracker_model: for a SAM3-LiteText `name` (no tracker of its own), the SAM 3 checkpoint whose
    tracker serves clicks and video (default $SAM3_TRACKER_MODEL; none: concept segmentation only).
    Called once per process, before the app is built. A gated hub model reads the token from
    `HF_TOKEN` (a Space secret) through huggingface_hub."""
    name = name or os.environ.get("SAM3_MODEL") or DEFAULT_MODEL
    tracker_model = tracker_model or os.environ.get("SAM3_TRACKER_MODEL") or None
    try:
        extra = {} if tracker_model is None else {"tracker_model": resolve_name(tracker_model)}
        sam = Sam3.from_pretrained(resolve_name(name), device=device, **extra)
    except Exception as e:  # any failure becomes a sentence on the page and in the console
        message = str(e) or type(e).__name__
        log.error("could not load model %s: %s", name, message)
        return ModelSlot(name=name, error=message)
    log.info("loaded model %s on %s", name, sam.device)
    return ModelSlot(name=name, sam=sam)
