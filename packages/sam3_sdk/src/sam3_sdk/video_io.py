"""Video inputs: files decoded lazily with PyAV, folders of frames, lists / arrays of images.

Every source becomes a `VideoReader`: `len(reader)`, `reader.fps`, `reader.size` (height, width),
`reader[i]` → (H, W, 3) uint8 RGB, and iteration in order. Files are never expanded in memory:
an index of packet timestamps is read up front (no decoding), then frames are decoded on
demand — sequentially when read in order, from the nearest keyframe after a seek — and only a
bounded number of decoded frames is kept.

A reader can be shared by threads (a preview, a propagation and an export reading one video): a
file's single decoder is held by one read at a time (a lock), so concurrent reads wait for each
other and each gets the frame it asked for.
"""

from __future__ import annotations

import math
import os
import threading
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from .cache import LRUCache
from .images import as_rgb_array
from .prompts import is_int, is_number

__all__ = [
    "MAX_FRAME_PIXELS",
    "VideoReader",
    "VideoLike",
    "VideoInfo",
    "open_video",
    "probe_video",
    "check_video_limits",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_FPS = 30.0  # for sources without timing (folders, lists of images)
DEFAULT_CACHE_BYTES = 256 * 2**20  # decoded frames kept by a file reader

VideoLike = str | os.PathLike | Sequence[Any] | np.ndarray


class VideoReader(Sequence[np.ndarray]):
    """Frames of a video, read on demand.

    Build one with `open_video(...)`. `reader[i]` is frame i as (H, W, 3) uint8 RGB, upright
    (rotation metadata applied); negative indices count from the end. `timestamps` holds each
    frame's time in seconds (variable frame rates are kept).
    """

    def __init__(self, source: _Source, name: str) -> None:
        self._source = source
        self.name = name

    def __len__(self) -> int:
        return self._source.num_frames

    @property
    def fps(self) -> float:
        """Average frames per second."""
        return self._source.fps

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames as displayed."""
        return self._source.size

    @property
    def height(self) -> int:
        return self.size[0]

    @property
    def width(self) -> int:
        return self.size[1]

    @property
    def timestamps(self) -> list[float]:
        """Presentation time of each frame in seconds."""
        return self._source.timestamps

    def check_index(self, frame_idx: Any, name: str = "frame") -> int:
        """`frame_idx` as a valid non-negative index, or a ValueError naming the range."""
        if not is_int(frame_idx):
            raise ValueError(f"{name} must be an int frame index, got {frame_idx!r}")
        n = len(self)
        if not -n <= frame_idx < n:
            raise ValueError(f"{name} {int(frame_idx)} is out of range; the video has frames 0..{n - 1}")
        return int(frame_idx) % n

    def __getitem__(self, frame_idx: int) -> np.ndarray:  # type: ignore[override]
        if isinstance(frame_idx, slice):
            raise TypeError("slices are not supported; read frames one at a time (memory stays bounded)")
        try:
            i = self.check_index(frame_idx)
        except ValueError as e:
            raise IndexError(str(e)) from None
        return self._source.frame(i)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self._source.frame(i)

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.size
        return f"VideoReader({self.name!r}, frames={len(self)}, size={h}x{w}, fps={self.fps:.3g})"


# A frame above this (e.g. 16384 x 16384) would need gigabytes once decoded: refused from the header.
MAX_FRAME_PIXELS = 8192 * 8192


def open_video(video: VideoLike | VideoReader, fps: float | None = None) -> VideoReader:
    """A `VideoReader` for a video file (mp4, webm, mov, avi, ... through PyAV), a folder of
    JPEG/PNG frames (sorted by name), a list of images (PIL, numpy, paths) or a (T, H, W, 3) array.

    fps: the frame rate of sources that have none (default 30); ignored for files.
    Raises ValueError for missing or unreadable files, files without a video stream, empty
    folders / lists and frames of different sizes.
    """
    if isinstance(video, VideoReader):
        return video
    if fps is not None and (not is_number(fps) or not fps > 0 or not math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if path.is_dir():
            names = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not names:
                raise ValueError(
                    f"folder {str(path)!r} holds no frames; expected {', '.join(IMAGE_SUFFIXES)} files"
                )
            return VideoReader(_ImageListSource([str(p) for p in names], fps or DEFAULT_FPS), str(path))
        if not path.exists():
            raise ValueError(f"video file {str(path)!r} does not exist")
        return VideoReader(_AvSource(str(path)), str(path))
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[-1] not in (1, 3, 4):
            raise ValueError(f"a video array must be (frames, H, W, 3), got shape {video.shape}")
        return VideoReader(_ImageListSource(video, fps or DEFAULT_FPS), "array")
    if isinstance(video, (list, tuple)):
        return VideoReader(_ImageListSource(list(video), fps or DEFAULT_FPS), "frames")
    raise TypeError(
        f"video must be a file path, a folder of frames, a list of images or a (T, H, W, 3) array, "
        f"got {type(video).__name__}"
    )


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's container header says, read without decoding a frame.

    num_frames is the header's count, or duration x fps where the container has none (0 when
    neither is known); duration_s is 0.0 when unknown.
    """

    path: str
    file_bytes: int
    width: int
    height: int
    fps: float
    duration_s: float
    num_frames: int
    codec: str


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The size, length and frame rate of a video file, from its container header only.

    Raises ValueError (naming the file) for missing, unreadable and audio-only files.
    """
    path = str(path)
    if not Path(path).is_file():
        raise ValueError(f"video file {path!r} does not exist")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path!r} as a video: {e}") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise ValueError(
                f"{path!r} has no video stream (it holds {', '.join(kinds)}); expected a video file"
            )
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frames = int(stream.frames or round(duration * fps))
        return VideoInfo(
            path=path, file_bytes=Path(path).stat().st_size, width=int(stream.codec_context.width),
            height=int(stream.codec_context.height), fps=fps, duration_s=max(duration, 0.0),
            num_frames=frames, codec=stream.codec_context.name,
        )  # fmt: skip


def check_video_limits(
    info: VideoInfo,
    *,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
    max_frames: int | None = None,
    max_side: int | None = None,
) -> None:
    """Raise ValueError, stating the value found and the limit, if `info` exceeds any limit given."""
    name = Path(info.path).name
    if max_bytes is not None and info.file_bytes > max_bytes:
        raise ValueError(
            f"{name} is {info.file_bytes / 2**20:.1f} MB; videos up to {max_bytes / 2**20:.0f} MB are accepted"
        )
    if max_side is not None and max(info.width, info.height) > max_side:
        raise ValueError(
            f"{name} has {info.width}x{info.height} frames; videos up to {max_side} px on the long side are accepted"
        )
    if max_seconds is not None and info.duration_s > max_seconds:
        raise ValueError(f"{name} lasts {info.duration_s:.1f} s; videos up to {max_seconds:g} s are accepted")
    if max_frames is not None and info.num_frames > max_frames:
        raise ValueError(
            f"{name} has {info.num_frames} frames; videos up to {max_frames} frames are accepted"
        )


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


class _Source:
    num_frames: int
    fps: float
    size: tuple[int, int]
    timestamps: list[float]

    def frame(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ImageListSource(_Source):
    """Images held by the caller (or paths), converted to RGB uint8 when read."""

    def __init__(self, frames: Sequence[Any], fps: float) -> None:
        if len(frames) == 0:
            raise ValueError("the video has no frames (an empty list or array)")
        self._frames = frames
        self.num_frames = len(frames)
        self.fps = float(fps)
        self.timestamps = [i / self.fps for i in range(self.num_frames)]
        first = self._read(0)
        self.size = (int(first.shape[0]), int(first.shape[1]))

    def _read(self, i: int) -> np.ndarray:
        try:
            return as_rgb_array(self._frames[i])
        except (ValueError, TypeError, OSError) as e:
            raise ValueError(f"video frame {i} cannot be read: {e}") from None

    def frame(self, i: int) -> np.ndarray:
        rgb = self._read(i)
        if rgb.shape[:2] != self.size:
            raise ValueError(
                f"video frame {i} is {rgb.shape[0]}x{rgb.shape[1]} but frame 0 is {self.size[0]}x{self.size[1]}"
            )
        return rgb


class _AvSource(_Source):
    """A video file through PyAV: a timestamp index up front, frames decoded when asked for."""

    def __init__(self, path: str, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.path = path
        try:
            container = av.open(path)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read {path!r} as a video: {e}") from None
        try:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["nothing"]
                raise ValueError(
                    f"{path!r} has no video stream (it holds {', '.join(kinds)}); expected a video file"
                )
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > MAX_FRAME_PIXELS:  # refused from the header, before a frame is decoded
                raise ValueError(
                    f"{path!r} has {w}x{h} frames; frames up to {MAX_FRAME_PIXELS:,} pixels are accepted"
                )
            pts = []
            try:
                for packet in container.demux(stream):
                    if packet.size and packet.pts is not None:
                        pts.append(packet.pts)
            except av.FFmpegError as e:
                raise ValueError(f"cannot read {path!r}: {e}") from None
            if not pts:
                raise ValueError(f"{path!r} has a video stream but no frames")
            time_base = float(stream.time_base) if stream.time_base else 1.0
            rate = stream.average_rate or stream.guessed_rate
        finally:
            container.close()
        self._pts = sorted(set(pts))
        self._index = {p: i for i, p in enumerate(self._pts)}
        self.num_frames = len(self._pts)
        start = self._pts[0]
        self.timestamps = [(p - start) * time_base for p in self._pts]
        if rate:
            self.fps = float(rate)
        elif self.num_frames > 1 and self.timestamps[-1] > 0:
            self.fps = (self.num_frames - 1) / self.timestamps[-1]
        else:
            self.fps = DEFAULT_FPS
        self._container = None
        self._decoder: Iterator[Any] | None = None
        self._next = -1  # index of the frame the running decoder yields next (-1: unknown)
        self._cache: LRUCache[int, np.ndarray] = LRUCache(2)  # decoded frames by index
        # One decoder and cache per file: a seek in one thread under another's decode crashes FFmpeg,
        # so every read holds this lock (re-entrant: `frame` calls `_decode_to`).
        self._lock = threading.RLock()
        first = self._decode_to(0)
        self.size = (int(first.shape[0]), int(first.shape[1]))
        self._cache.maxsize = max(2, cache_bytes // max(1, first.nbytes))

    @property
    def _cache_frames(self) -> int:
        return self._cache.maxsize

    def _restart(self, i: int) -> None:
        if self._container is None:
            self._container = av.open(self.path)
            self._container.streams.video[0].thread_type = "AUTO"
        stream = self._container.streams.video[0]
        # Seek to the keyframe at or before frame i; decoding goes on from there.
        self._container.seek(self._pts[i], stream=stream, backward=True, any_frame=False)
        self._decoder = self._container.decode(stream)
        self._next = -1

    def _to_rgb(self, frame: Any) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        turns = round(frame.rotation / 90) % 4 if frame.rotation else 0
        return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb

    def _decode_to(self, i: int) -> np.ndarray:
        # Continue the running decoder when frame i is a little ahead; otherwise seek.
        if self._decoder is None or self._next < 0 or not self._next <= i <= self._next + 32:
            self._restart(i)
        try:
            for frame in self._decoder:
                if frame.pts is None:
                    idx = self._next if self._next >= 0 else 0
                else:
                    idx = bisect_right(self._pts, frame.pts) - 1  # pts not in the index: the one before
                    idx = max(idx, 0)
                self._next = idx + 1
                if idx <= i - self._cache_frames:
                    continue  # too far before frame i to be kept
                rgb = self._to_rgb(frame)
                size = getattr(self, "size", None)  # unset while frame 0 is read
                if size is not None and rgb.shape[:2] != size:
                    raise ValueError(
                        f"frame {idx} of {self.path!r} is {rgb.shape[0]}x{rgb.shape[1]} but frame 0 is "
                        f"{size[0]}x{size[1]}; expected frames of one size (re-encode the video at one size)"
                    )
                self._cache.put(idx, rgb)
                if idx >= i:
                    return rgb if idx == i else self._cache.peek(i, rgb)
        except av.FFmpegError as e:
            raise ValueError(f"cannot decode frame {i} of {self.path!r}: {e}") from None
        self._decoder = None
        raise ValueError(f"frame {i} of {self.path!r} could not be decoded (the file may be truncated)")

    def frame(self, i: int) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(i)
            if cached is not None:
                return cached
            return self._decode_to(i)

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container, self._decoder, self._next = None, None, -1
            self._cache.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
