"""Video exports: an annotated MP4 (H.264, yuv420p), a zip of PNG index masks. Written atomically:
to a temporary file beside the target, renamed when complete (a failure leaves nothing behind)."""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .video_io import VideoLike, VideoReader, open_video

if TYPE_CHECKING:
    from .video import VideoMasks

__all__ = ["write_annotated_mp4", "write_png_zip", "atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`; renamed to `path` when the block succeeds, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _even(rgb: np.ndarray) -> np.ndarray:
    """Pad the bottom / right edge by one pixel where a side is odd (yuv420p needs even sizes)."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_annotated_mp4(
    video: VideoLike | VideoReader,
    masks: VideoMasks,
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
    import av

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


def write_png_zip(masks: VideoMasks, path: str | os.PathLike) -> Path:
    """A zip with `frame_000000.png` per frame with results: an index mask (pixel value = object id,
    0 background; 8-bit, or 16-bit when an id exceeds 255)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for frame_idx in masks.frames:
                buf = io.BytesIO()
                Image.fromarray(masks[frame_idx].index_mask()).save(buf, format="PNG")
                zf.writestr(f"frame_{frame_idx:06d}.png", buf.getvalue())
    return Path(path)
