"""`load_video`: decode a video file (or URL) into RGB frames plus its metadata, with PyAV.

PyAV is an optional dependency of sam3_core (`pip install "sam3-core[video]"`); everything else in
sam3_core works without it. Frames from `load_video` go straight into
`Sam3TrackerVideoProcessor.init_video_session(video=frames)`.
"""

from __future__ import annotations

import io
import os
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["VideoMetadata", "default_sample_indices", "load_video"]


@dataclass
class VideoMetadata(Mapping):
    """What `load_video` knows about a video; also readable as a mapping (`metadata["fps"]`).

    total_num_frames: frames in the file; fps: frames per second (None when the file has no rate);
    width / height: pixels; duration: seconds; video_backend: the decoder; frames_indices: the
    indices of the frames returned.
    """

    total_num_frames: int
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    video_backend: str | None = None
    frames_indices: list[int] | None = None

    def __iter__(self) -> Iterator[str]:
        return (f.name for f in fields(self))

    def __len__(self) -> int:
        return len(fields(self))

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    @property
    def timestamps(self) -> list[float]:
        """Seconds of the returned frames."""
        if self.fps is None or self.frames_indices is None:
            raise ValueError("timestamps need both fps and frames_indices")
        return [i / self.fps for i in self.frames_indices]


def default_sample_indices(
    metadata: VideoMetadata, num_frames: int | None = None, fps: float | None = None, **unused: Any
) -> np.ndarray:
    """Frame indices to decode: every frame, `num_frames` evenly spread, or about `fps` per second."""
    total = metadata.total_num_frames
    if num_frames is None and fps is not None:
        if not metadata.fps:
            raise ValueError(f"cannot sample {fps} frames per second: the video has no frame rate")
        num_frames = max(1, int(total / metadata.fps * fps))
    if num_frames is None:
        return np.arange(total, dtype=int)
    if not 0 < num_frames <= total:
        raise ValueError(f"num_frames={num_frames} is outside 1..{total} (the frames of the video)")
    return np.arange(num_frames, dtype=int) * total // num_frames


def _import_av():
    try:
        import av
    except ImportError:
        raise ImportError(
            "load_video decodes videos with PyAV, which is not installed: pip install 'sam3-core[video]' "
            "(or pip install av). Or pass the frames yourself (a list of PIL images or arrays)."
        ) from None
    return av


def _open_source(video: str | os.PathLike) -> Any:
    text = str(video)
    if text.startswith(("http://", "https://")):
        with urllib.request.urlopen(text) as response:  # noqa: S310 (only http(s) reaches here)
            return io.BytesIO(response.read())
    if not os.path.isfile(text):
        raise ValueError(f"video {text!r} is neither an existing file nor an http(s) URL")
    return text


def load_video(
    video: Any,
    num_frames: int | None = None,
    fps: float | None = None,
    backend: str = "pyav",
    sample_indices_fn: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> tuple[np.ndarray, VideoMetadata | list[None]]:
    """Decode `video` (a file path or an http(s) URL) into frames.

    Args:
        num_frames: decode this many frames, evenly spread; `fps`: about this many per second
            (not both). Neither: every frame.
        backend: only "pyav".
        sample_indices_fn: `fn(metadata=..., **kwargs)` → the frame indices to decode; overrides
            `num_frames` / `fps`.

    Returns:
        (frames (T, H, W, 3) uint8 RGB numpy array, `VideoMetadata`). Frames given already (a list
        of images or an array) come back unchanged with one `None` metadata per frame.
    """
    if fps is not None and num_frames is not None and sample_indices_fn is None:
        raise ValueError("give num_frames or fps, not both")
    if not isinstance(video, (str, os.PathLike)):
        return video, [None] * len(video)
    if backend != "pyav":
        raise ValueError(f"backend {backend!r} is not available; sam3_core decodes videos with 'pyav'")
    av = _import_av()
    source = _open_source(video)
    try:
        container = av.open(source)
    except av.error.FFmpegError as e:
        raise ValueError(f"{str(video)!r} is not a readable video: {e}") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{str(video)!r} has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else None
        total = int(stream.frames)
        if total == 0:  # some containers do not store the count: decode to count
            total = sum(1 for _ in container.decode(video=0))
            container.seek(0)
        metadata = VideoMetadata(
            total_num_frames=total,
            fps=rate,
            width=stream.width,
            height=stream.height,
            duration=total / rate if rate else 0.0,
            video_backend="pyav",
        )
        if sample_indices_fn is None:
            indices = default_sample_indices(metadata, num_frames=num_frames, fps=fps)
        else:
            indices = np.asarray(sample_indices_fn(metadata=metadata, **kwargs), dtype=int)
        if len(indices) == 0:
            raise ValueError("no frame was selected for decoding")
        wanted = set(indices.tolist())
        frames = []
        for i, frame in enumerate(container.decode(video=0)):
            if i > indices.max():
                break
            if i in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
    metadata.frames_indices = indices
    return np.stack(frames), metadata
