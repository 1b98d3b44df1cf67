"""Upload limits in a real browser: a video over the length limit is refused from its header with a
message stating the limit, and the server deletes the refused upload (DISCARD_AFTER_S later)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from gradio.utils import get_upload_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))
from sam3_demo.uploads import DISCARD_AFTER_S, MAX_VIDEO_SECONDS  # noqa: E402


def _long_clip(path: Path, seconds: int) -> Path:
    """`seconds` one-second frames of 32x24 (a few KB)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for t in range(seconds):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), t % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _copies(name: str) -> list[Path]:
    """The files called `name` in Gradio's upload folder. Every Gradio server on the machine shares
    that folder and deletes its subfolders as it goes, also while this looks: os.walk passes over a
    folder that vanished between being listed and being read (Path.rglob raised FileNotFoundError)."""
    return [Path(folder) / name for folder, _, files in os.walk(get_upload_folder()) if name in files]


def test_too_long_video_is_refused_with_the_limit_and_deleted(page, demo_url, tmp_path):
    name = f"long-{uuid.uuid4().hex[:8]}.mp4"
    clip = _long_clip(tmp_path / name, MAX_VIDEO_SECONDS + 5)
    page.goto(demo_url)
    page.get_by_role("tab", name="Video tracking").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(clip))
    page.get_by_text(
        f"{name} lasts {MAX_VIDEO_SECONDS + 5}.0 s; videos up to {MAX_VIDEO_SECONDS} s are accepted"
    ).first.wait_for()
    deadline = time.monotonic() + DISCARD_AFTER_S + 30  # deleted DISCARD_AFTER_S after the refusal
    while _copies(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _copies(name)  # the server kept no copy
