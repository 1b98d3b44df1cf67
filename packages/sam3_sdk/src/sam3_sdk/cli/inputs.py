"""Inputs of a batch run: files, folders and glob patterns → named input files; images decoded and
preprocessed ahead of the model on a worker thread."""

from __future__ import annotations

import glob
import io
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sam3_core import Sam3TrackerProcessor
from sam3_core.processing.image import load_image

from ..images import as_rgb_array
from ..video_io import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Decoded",
    "InputFile",
    "decode_image",
    "expand_images",
    "expand_videos",
    "prefetch",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts")


@dataclass(frozen=True)
class InputFile:
    """One input: its path and the unique name its outputs get (`key`, a relative POSIX path)."""

    path: Path
    name: str  # the path relative to the inputs' common folder (COCO `file_name`)
    key: str  # `name`, without its suffix unless that would clash
    index: int  # position in the run's input list (COCO image id - 1)


def _matches(pattern: str, suffixes: Iterable[str], folder_as_video: bool) -> tuple[list[Path], str | None]:
    """Paths named by one command-line input, or why there are none."""
    suffixes = tuple(suffixes)
    if glob.has_magic(pattern):
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        found = [p for p in found if p.is_file() and p.suffix.lower() in suffixes] + [
            p for p in found if folder_as_video and p.is_dir()
        ]
        return found, None if found else f"no {'/'.join(suffixes)} file matches {pattern!r}"
    path = Path(pattern)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not found and folder_as_video and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            return [path], None  # a folder of frames is one video
        return found, None if found else f"folder {pattern!r} holds no {'/'.join(suffixes)} files"
    if path.is_file():
        return [path], None  # named explicitly: tried whatever its suffix
    return [], f"{pattern!r} does not exist"


def _names(paths: list[Path]) -> tuple[list[str], list[str]]:
    """Unique output names: each path relative to the inputs' common folder, without its suffix
    unless two inputs would then share a name (a.jpg and a.png)."""
    absolute = [p.resolve() for p in paths]
    parents = [str(p if p.is_dir() else p.parent) for p in absolute]
    root = Path(os.path.commonpath(parents)) if parents else Path()
    rel = [p.relative_to(root).as_posix() if p != root else p.name for p in absolute]
    stems = [r.rsplit(".", 1)[0] if "." in Path(r).name else r for r in rel]
    clashes = {s for s in stems if stems.count(s) > 1}
    return rel, [r if s in clashes else s for r, s in zip(rel, stems)]


def _expand(
    patterns: list[str], suffixes: Iterable[str], folder_as_video: bool
) -> tuple[list[InputFile], list[str]]:
    paths: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for pattern in patterns:
        found, problem = _matches(pattern, suffixes, folder_as_video)
        if problem:
            problems.append(problem)
        for p in found:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                paths.append(p)
    names, keys = _names(paths)
    files = [InputFile(path=p, name=n, key=k, index=i) for i, (p, n, k) in enumerate(zip(paths, names, keys))]
    return files, problems


def expand_images(patterns: list[str]) -> tuple[list[InputFile], list[str]]:
    """Image files named by `patterns` (files, folders searched recursively, globs), in order and
    without repeats; and a sentence for each pattern that named nothing."""
    return _expand(patterns, IMAGE_SUFFIXES, folder_as_video=False)


def expand_videos(patterns: list[str]) -> tuple[list[InputFile], list[str]]:
    """Videos named by `patterns`: video files, folders of them, or a folder of frames (one video)."""
    return _expand(patterns, VIDEO_SUFFIXES, folder_as_video=True)


@dataclass
class Decoded:
    """An image read from disk and made ready for the backbone, or why it could not be."""

    item: InputFile
    image: np.ndarray | None = None  # (H, W, 3) uint8
    pixels: torch.Tensor | None = None  # (3, S, S) float32, resized and normalised for the backbone
    error: str | None = None


def decode_image(item: InputFile, processor: Sam3TrackerProcessor, data: bytes | None = None) -> Decoded:
    """Read one image (from `data`, its file's bytes, when given; else from disk) and preprocess it
    with `processor` (its config's size, resample and normalisation); any failure becomes
    `Decoded.error`: a bad file never raises."""
    source = io.BytesIO(data) if data is not None else item.path
    try:
        rgb = as_rgb_array(load_image(source) if data is not None else source)
        pixels = processor(images=rgb)["pixel_values"]
    except Exception as e:  # corrupt, truncated, not an image, unreadable: reported, then skipped
        message = str(e).replace(str(source), str(item.path))
        return Decoded(item, error=f"{type(e).__name__}: {message}")
    return Decoded(item, image=rgb, pixels=pixels[0])


_DONE = object()


def prefetch(items: list[InputFile], processor: Sam3TrackerProcessor, depth: int) -> Iterator[Decoded]:
    """`decode_image` of each item, in order. With depth > 0 a worker thread decodes up to `depth`
    images ahead (PIL and torch release the GIL while they decode and resize), so the model does not
    wait on the disk; depth 0 decodes on the caller's thread."""
    if depth <= 0:
        for item in items:
            yield decode_image(item, processor)
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        for item in items:
            if stop.is_set():
                return
            decoded = decode_image(item, processor)
            while not stop.is_set():
                try:
                    ready.put(decoded, timeout=0.1)
                    break
                except queue.Full:
                    continue
        ready.put(_DONE)

    worker = threading.Thread(target=work, name="sam3-prefetch", daemon=True)
    worker.start()
    try:
        while (decoded := ready.get()) is not _DONE:
            yield decoded
    finally:
        stop.set()  # the consumer stopped early (error, Ctrl-C): let the worker end
        while worker.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
