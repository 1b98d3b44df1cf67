"""`EdgeTamVideoInferenceSession`: the state of one video tracked by `EdgeTamVideoModel`.

EdgeTAM runs on the SAM 3 tracker's engine and model glue, so its session is that session; only
the frames' normalisation differs, and the processor (`Sam2VideoProcessor`) sets it.
"""

from __future__ import annotations

from ..processing.image import IMAGENET_MEAN, IMAGENET_STD
from .session import FrameNormalization, Sam3TrackerVideoInferenceSession

__all__ = ["EdgeTamVideoInferenceSession", "EDGETAM_FRAME_NORMALIZATION"]

EDGETAM_FRAME_NORMALIZATION: FrameNormalization = (IMAGENET_MEAN, IMAGENET_STD, 1 / 255)


class EdgeTamVideoInferenceSession(Sam3TrackerVideoInferenceSession):
    """As `Sam3TrackerVideoInferenceSession`; frames normalised with the ImageNet mean and std
    unless `frame_normalization` says otherwise."""

    def __init__(
        self, *args, frame_normalization: FrameNormalization = EDGETAM_FRAME_NORMALIZATION, **kwargs
    ):
        super().__init__(*args, frame_normalization=frame_normalization, **kwargs)
