"""The trackers the Video tracking tab offers: SAM 3's (the loaded model's video tracker) and
EdgeTAM, the light one, from the checkpoint named by `--video-model` / `SAM3_VIDEO_MODEL`.

Each loads when a video is first tracked with it and is then shared by every browser session
(read-only: the tracking state of a video lives in its session)."""

from __future__ import annotations

import logging
import os
import threading

from sam3_sdk import VideoTracker
from sam3_sdk.testing import RANDOM_CHECKPOINTS, TINY_RANDOM_EDGETAM, resolve_name

from .loading import ModelSlot

log = logging.getLogger("sam3_demo")

DEFAULT_EDGETAM = "yonigozlan/edgetam-video-1"
SAM3, EDGETAM = "SAM 3", "EdgeTAM"  # the tab's choices


class VideoModels:
    """SAM 3's tracker (from `slot`) and EdgeTAM's (`edgetam`: a hub id, a folder or
    `tiny-random-edgetam`; default $SAM3_VIDEO_MODEL, else yonigozlan/edgetam-video-1)."""

    def __init__(self, slot: ModelSlot, edgetam: str | None = None, device: str | None = None) -> None:
        self.slot = slot
        self.edgetam_name = edgetam or os.environ.get("SAM3_VIDEO_MODEL") or DEFAULT_EDGETAM
        self.device = device
        self._edgetam: VideoTracker | None = None
        self._lock = threading.Lock()  # two sessions opening a video at once load a tracker once

    def is_random(self, choice: str) -> bool:
        return self.slot.is_random if choice == SAM3 else self.edgetam_name in RANDOM_CHECKPOINTS

    def choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs: a random checkpoint says so in its label."""
        return [
            (f"{choice} (RANDOM weights)" if self.is_random(choice) else choice, choice)
            for choice in (SAM3, EDGETAM)
        ]

    def describe(self, choice: str) -> str:
        """A line about the chosen tracker for the page."""
        if choice == SAM3:
            text = f"**SAM 3** video tracker of `{self.slot.name}`."
        else:
            text = f"**EdgeTAM**, the light tracker: `{self.edgetam_name}` (`--video-model` / `SAM3_VIDEO_MODEL`)."
        if self.is_random(choice):
            text += " Smoke-test mode: RANDOM weights, the masks mean nothing."
        return text

    def tracker(self, choice: str) -> VideoTracker:
        """The `VideoTracker` of a choice, loaded on first use. Raises RuntimeError with a
        sentence a person understands when it cannot be loaded."""
        if choice not in (SAM3, EDGETAM):
            raise RuntimeError(f"Unknown tracker {choice!r}; expected {SAM3!r} or {EDGETAM!r}.")
        with self._lock:
            if choice == SAM3:
                if self.slot.sam is None:
                    raise RuntimeError(f"No model is loaded: {self.slot.error}")
                return self.slot.sam.video_predictor  # SAM 3's video tracker loads on first use
            if self._edgetam is None:
                device = self.device or (self.slot.sam.device if self.slot.sam is not None else None)
                try:
                    self._edgetam = VideoTracker.from_pretrained(
                        resolve_name(self.edgetam_name), device=device
                    )
                except Exception as e:  # any failure becomes a sentence on the page; a later pick retries
                    message = (str(e) or type(e).__name__).rstrip(".") + "."
                    log.error("could not load the EdgeTAM tracker %s: %s", self.edgetam_name, message)
                    raise RuntimeError(
                        f"EdgeTAM (`{self.edgetam_name}`) could not be loaded: {message} "
                        f"Start the demo with `--video-model PATH` (a folder holding an EdgeTAM checkpoint), "
                        f"or `--video-model {TINY_RANDOM_EDGETAM}` for an offline smoke run; or pick {SAM3}."
                    ) from e
                log.info("loaded EdgeTAM tracker %s on %s", self.edgetam_name, self._edgetam.model.device)
            return self._edgetam
