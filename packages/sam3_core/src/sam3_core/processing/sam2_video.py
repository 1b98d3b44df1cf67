"""`Sam2VideoProcessor`: the SAM 3 tracker's video processor with the SAM 2 family's settings,
the processor EdgeTAM's checkpoints use.

Defaults are those of the hub's `processor_config.json` for EdgeTAM: 1024 px input, 256 px masks,
ImageNet mean and std for images and video frames alike; `from_pretrained` reads the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..video.edgetam_session import EdgeTamVideoInferenceSession
from .image import IMAGENET_MEAN, IMAGENET_STD
from .video import Sam3TrackerVideoProcessor

__all__ = ["Sam2VideoProcessor"]


class Sam2VideoProcessor(Sam3TrackerVideoProcessor):
    """Prepares videos and prompts for `EdgeTamVideoModel` and post-processes its masks.

    Args: as `Sam3TrackerVideoProcessor`, with SAM 2's defaults (size 1024, mask_size 256,
    ImageNet normalisation).
    """

    session_class = EdgeTamVideoInferenceSession

    def __init__(
        self,
        size: int = 1024,
        target_size: int | None = None,
        point_pad_value: int = -10,
        mask_size: int = 256,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        rescale_factor: float = 1 / 255,
        resample: str | int = "bilinear",
        **video_settings: Any,
    ) -> None:
        super().__init__(
            size=size,
            target_size=target_size,
            point_pad_value=point_pad_value,
            mask_size=mask_size,
            image_mean=image_mean,
            image_std=image_std,
            rescale_factor=rescale_factor,
            resample=resample,
            **video_settings,
        )
