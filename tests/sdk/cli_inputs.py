"""Inputs for the CLI tests: small images, a corrupt file and a short video written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image


def write_images(folder: Path, count: int, start: int = 0, suffix: str = ".jpg") -> list[Path]:
    """`count` small random images of different sizes (a smooth pattern plus noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        rng = np.random.RandomState(i)
        h, w = 40 + 4 * i, 56 + 2 * i
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) * 3 % 256], -1)
        rgb = np.clip(base + rng.randint(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        path = folder / f"img{i:02d}{suffix}"
        Image.fromarray(rgb).save(path)
        paths.append(path)
    return paths


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff this is not really a JPEG")
    return path


def write_video(path: Path, frames: int = 6, size: tuple[int, int] = (48, 64), fps: int = 10) -> Path:
    """An H.264 MP4 of a bright square moving right over a dark background."""
    h, w = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(frames):
            rgb = np.full((h, w, 3), 30, np.uint8)
            rgb[10:30, 8 + 3 * t : 28 + 3 * t] = (240, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
