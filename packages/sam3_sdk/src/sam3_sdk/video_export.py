"""Video exports: an annotated MP4 (H.264, yuv420p), a zip of PNG index masks. Written atomically
(`atomic.atomic_path`): a failure leaves nothing behind.

The exporters read tracking results through two small protocols (`VideoMasks` and
`VideoFrameMasks` satisfy them), so this module sits below the result types that call it.
"""

from __future__ import annotations

import io
import os
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
from PIL import Image

from .atomic import atomic_path
from .video_io import VideoLike, VideoReader, open_video

__all__ = ["write_annotated_mp4", "write_png_zip", "atomic_path", "FrameMasksLike", "TrackedVideoLike"]


class FrameMasksLike(Protocol):
    """One frame's tracked objects, as the exporters read them (`VideoFrameMasks`)."""

    def __len__(self) -> int: ...

    def index_mask(self) -> np.ndarray: ...

    def overlay(self, image: Any, alpha: float = 0.5) -> Image.Image: ...


class TrackedVideoLike(Protocol):
    """A video's tracking results, as the exporters read them (`VideoMasks`)."""

    @property
    def size(self) -> tuple[int, int]: ...

    @property
    def frames(self) -> list[int]: ...

    def get(self, frame_idx: int) -> FrameMasksLike | None: ...


def _even(rgb: np.ndarray) -> np.ndarray:
    """Pad the bottom / right edge by one pixel where a side is odd (yuv420p needs even sizes)."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_annotated_mp4(
    video: VideoLike | VideoReader,
    masks: TrackedVideoLike,
    path: str | os.PathLike,
    fps: float | None = None,
    alpha: float = 0.5,
    crf: int = 20,
    progress: Any = None,
) -> Path:
    """The video with each object's mask drawn in its colour, as an MP4 (libx264, yuv420p).

    Frames keep the video's size (a one-pixel edge is added to odd sides) and frame rate (`fps`
    overrides it). Frames without results are written as they are. progress(done, total) per frame.
    """
    reader = open_video(video)
    if tuple(reader.size) != tuple(masks.size):
        raise ValueError(f"the masks are {tuple(masks.size)} (H, W) but the video is {tuple(reader.size)}")
    rate = Fraction(fps if fps is not None else reader.fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {float(rate)}")
    h, w = reader.size
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream(
                "libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"}
            )
            stream.width, stream.height = w + w % 2, h + h % 2
            stream.pix_fmt = "yuv420p"
            total = len(reader)
            for i in range(total):
                rgb = reader[i]
                result = masks.get(i)
                if result is not None and len(result):
                    rgb = np.asarray(result.overlay(rgb, alpha=alpha))
                frame = av.VideoFrame.from_ndarray(_even(rgb), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                if progress is not None:
                    progress(i + 1, total)
            for packet in stream.encode():
                container.mux(packet)
    return Path(path)


def write_png_zip(masks: TrackedVideoLike, path: str | os.PathLike) -> Path:
    """A zip with `frame_000000.png` per frame with results: an index mask (pixel value = object id,
    0 background; 8-bit, or 16-bit when an id exceeds 255)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for frame_idx in masks.frames:
                buf = io.BytesIO()
                Image.fromarray(masks.get(frame_idx).index_mask()).save(buf, format="PNG")
                zf.writestr(f"frame_{frame_idx:06d}.png", buf.getvalue())
    return Path(path)
