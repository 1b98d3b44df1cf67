"""Inputs of a batch run: files, folders and glob patterns → named input files; images decoded and
preprocessed ahead of the model on a worker thread.

A `**` pattern is walked without ever entering a folder twice (symbolic links that form a loop
would otherwise make it endless); the run's output folder is never searched, so outputs never
become inputs of a later run. Each input carries its identity (resolved path, size, modification
time), which a resumed run compares with its record of the input.
"""

from __future__ import annotations

import fnmatch
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
    size: int = -1  # bytes (a folder of frames: of all its frames), when the run found it
    mtime_ns: int = -1  # modification time (a folder of frames: its newest frame's)

    @property
    def source(self) -> dict:
        """What identifies this input in its record: its resolved path and content (size and
        modification time as the run found them); a resumed run redoes an input whose differ."""
        return {"path": str(self.path.resolve()), "size": self.size, "mtime_ns": self.mtime_ns}


def file_identity(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file; of a folder of frames, the total size and the newest frame's time;
    (-1, -1) when it cannot be read (its reading then fails with the reason)."""
    try:
        if path.is_dir():
            stats = [p.stat() for p in sorted(path.iterdir()) if p.is_file()]
            return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def _match_parts(parts: list[str], pattern: list[str]) -> bool:
    """Whether path components match pattern components; `**` matches any number of folders. As
    in `glob`, wildcards do not match names starting with "." unless the pattern's part does."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(
            _match_parts(parts[i:], rest)
            for i in range(len(parts) + 1)
            if not any(p.startswith(".") for p in parts[:i])
        )
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _match_parts(parts[1:], rest)


def _walk_glob(pattern: str, exclude: Path | None) -> list[Path]:
    """The paths a recursive (`**`) glob pattern names, walking each real folder once: symbolic
    links are followed, but a folder already seen (a link loop) is not entered again."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    anchor, wanted = Path(*parts[:first]) if first else Path("."), list(parts[first:])
    seen: set[str] = set()
    found: list[Path] = []
    for folder, dirs, files in os.walk(anchor, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen or _inside(Path(real), exclude):
            dirs[:] = []
            continue
        seen.add(real)
        base = Path(folder)
        for name in sorted(dirs) + sorted(files):
            path = base / name
            relative = list(path.relative_to(anchor).parts)
            if _match_parts(relative, wanted):
                found.append(path)
    return found


def _matches(
    pattern: str, suffixes: Iterable[str], folder_as_video: bool, exclude: Path | None = None
) -> tuple[list[Path], str | None]:
    """Paths named by one command-line input (none inside `exclude`, the output folder), or why there
    are none."""
    suffixes = tuple(suffixes)
    if glob.has_magic(pattern):
        if "**" in Path(pattern).parts:
            found = sorted(_walk_glob(pattern, exclude))
        else:  # a fixed depth: no loop to fear
            found = sorted(Path(p) for p in glob.glob(pattern))
        found = [p for p in found if not _inside(p.resolve(), exclude)]
        found = [p for p in found if p.is_file() and p.suffix.lower() in suffixes] + [
            p for p in found if folder_as_video and p.is_dir()
        ]
        return found, None if found else f"no {'/'.join(suffixes)} file matches {pattern!r}"
    path = Path(pattern)
    if _inside(path.resolve(), exclude):
        return [], f"{pattern!r} is inside the output folder; outputs are never inputs"
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in suffixes and not _inside(p.resolve(), exclude)
        )
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
    patterns: list[str], suffixes: Iterable[str], folder_as_video: bool, exclude: str | os.PathLike | None
) -> tuple[list[InputFile], list[str]]:
    paths: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    out = Path(exclude).resolve() if exclude is not None else None
    for pattern in patterns:
        found, problem = _matches(pattern, suffixes, folder_as_video, out)
        if problem:
            problems.append(problem)
        for p in found:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                paths.append(p)
    names, keys = _names(paths)
    files = [
        InputFile(p, name=n, key=k, index=i, size=size, mtime_ns=mtime)
        for i, (p, n, k) in enumerate(zip(paths, names, keys))
        for size, mtime in [file_identity(p)]
    ]
    return files, problems


def expand_images(
    patterns: list[str], exclude: str | os.PathLike | None = None
) -> tuple[list[InputFile], list[str]]:
    """Image files named by `patterns` (files, folders searched recursively, globs), in order and
    without repeats, none inside `exclude` (the output folder); and a sentence for each pattern
    that named nothing."""
    return _expand(patterns, IMAGE_SUFFIXES, folder_as_video=False, exclude=exclude)


def expand_videos(
    patterns: list[str], exclude: str | os.PathLike | None = None
) -> tuple[list[InputFile], list[str]]:
    """Videos named by `patterns`: video files, folders of them, or a folder of frames (one video);
    none inside `exclude`."""
    return _expand(patterns, VIDEO_SUFFIXES, folder_as_video=True, exclude=exclude)


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
