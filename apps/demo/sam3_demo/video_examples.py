"""The Video tracking tab's example clip, drawn on first use (no binary files in the repo)."""

from __future__ import annotations

import av
import numpy as np

from .examples import EXAMPLES_DIR


def example_videos() -> list[str]:
    """A short generated example clip (written once into the cache folder)."""
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    path = EXAMPLES_DIR / "moving-shapes.mp4"
    if not path.exists():
        h, w, n = 180, 320, 24
        ys, xs = np.mgrid[0:h, 0:w]
        tmp = path.with_name(".moving-shapes.tmp.mp4")
        with av.open(str(tmp), "w") as container:
            stream = container.add_stream("libx264", rate=12)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for t in range(n):
                rgb = np.zeros((h, w, 3), np.uint8)
                rgb[...] = (ys * 200 // h)[..., None] * np.array([0.4, 0.6, 1.0])
                cx, cy = 60 + 8 * t, 90 + 20 * np.sin(t / 4)
                rgb[((xs - cx) / 40) ** 2 + ((ys - cy) / 30) ** 2 <= 1] = (230, 60, 40)
                rgb[40:90, 250 - 4 * t : 300 - 4 * t] = (250, 210, 40)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        tmp.replace(path)
    return [str(path)]
