"""Video files at the edges: limits read from the container header before any frame is decoded
(size, duration, frame count, resolution), zero-frame and variable-size files, rotation, and the
demo's upload check, which states the limit and deletes the refused upload (DISCARD_AFTER_S later)."""

from __future__ import annotations

import re
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sam3_sdk.video_io import check_video_limits, open_video, probe_video

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))


def _clip(path: Path, frames: int, h: int = 24, w: int = 32, fps: int = 8, fmt: str | None = None,
          start: int = 0, rotation: int = 0) -> Path:  # fmt: skip
    """An H.264 clip whose frame t is filled with the value 40 * t (top-left 4x4 corner white)."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for t in range(frames):
            rgb = np.full((h, w, 3), 40 * t % 256, np.uint8)
            rgb[:4, :4] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = start + t, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _scramble_frames(path: Path) -> Path:
    """Overwrite the coded frames (the mp4 `mdat` payload) with zeros; the header stays intact."""
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    end = data.index(b"moov") - 4 if data.index(b"moov") > start else len(data)
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))
    return path


def test_probe_reads_the_header_only(tmp_path):
    path = _scramble_frames(_clip(tmp_path / "clip.mp4", frames=5, h=24, w=32))
    info = probe_video(path)  # no frame of this file can be decoded any more
    assert (info.width, info.height, info.num_frames, info.fps) == (32, 24, 5, 8.0)
    assert info.duration_s == pytest.approx(5 / 8) and info.file_bytes == path.stat().st_size
    assert info.codec == "h264"


LIMITS = {
    "bytes": (dict(max_bytes=1000), r"clip\.mp4 is 0\.\d MB; videos up to 0 MB are accepted"),
    "side": (
        dict(max_side=30),
        "clip.mp4 has 32x24 frames; videos up to 30 px on the long side are accepted",
    ),
    "seconds": (dict(max_seconds=0.5), "clip.mp4 lasts 1.2 s; videos up to 0.5 s are accepted"),
    "frames": (dict(max_frames=4), "clip.mp4 has 10 frames; videos up to 4 frames are accepted"),
}


@pytest.mark.parametrize("case", sorted(LIMITS))
def test_limits_are_stated_when_refused(tmp_path, case):
    limits, expected = LIMITS[case]
    info = probe_video(_clip(tmp_path / "clip.mp4", frames=10))
    pattern = expected if case == "bytes" else re.escape(expected)
    with pytest.raises(ValueError, match=pattern):
        check_video_limits(info, **limits)
    check_video_limits(info, max_bytes=10**6, max_side=32, max_seconds=2, max_frames=10)  # within


def _zero_frames(path: Path) -> Path:
    """An MP4 from an encoder that stopped before its first frame: header and track, no samples."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        container.start_encoding()
    return path


def test_zero_frame_video_is_refused_by_name(tmp_path):
    path = _zero_frames(tmp_path / "empty.mp4")
    # FFmpeg drops a track without samples: the file holds no stream at all.
    for read in (probe_video, open_video):
        with pytest.raises(ValueError, match=re.escape("empty.mp4' has no video stream (it holds nothing)")):
            read(path)


def test_variable_size_video_is_refused_at_the_first_odd_frame(tmp_path):
    # Two MPEG-TS segments of different sizes, joined byte to byte as a broadcast recorder would.
    first = _clip(tmp_path / "a.ts", frames=2, h=24, w=32, fmt="mpegts")
    second = _clip(tmp_path / "b.ts", frames=2, h=48, w=64, fmt="mpegts", start=2)
    path = tmp_path / "joined.ts"
    path.write_bytes(first.read_bytes() + second.read_bytes())
    video = open_video(path)
    assert len(video) == 4 and video.size == (24, 32) and video[1].shape == (24, 32, 3)
    with pytest.raises(
        ValueError, match=re.escape("frame 2 of") + ".*" + re.escape("is 48x64 but frame 0 is 24x32")
    ):
        video[2]


def test_rotated_video_reads_upright(tmp_path):
    video = open_video(_clip(tmp_path / "phone.mp4", frames=2, h=24, w=32, rotation=90))
    assert video.size == (32, 24)  # displayed: rotated a quarter turn
    frame = video[0]
    assert frame.shape == (32, 24, 3)
    assert frame[-3:, :3].min() > 200 and frame[:3, :3].max() < 60  # the white corner went bottom-left


def test_demo_refuses_a_long_upload_from_the_header_and_deletes_it(tmp_path, monkeypatch):
    gr = pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    import sam3_demo.uploads
    from sam3_demo.uploads import MAX_VIDEO_SECONDS, check_video

    monkeypatch.setattr(sam3_demo.uploads, "DISCARD_AFTER_S", 0.0)  # delayed: see the test below

    upload = tmp_path / "uploads" / "0123abcd" / "long.mp4"
    upload.parent.mkdir(parents=True)
    _scramble_frames(_clip(upload, frames=MAX_VIDEO_SECONDS + 5, fps=1))  # 65 s at 1 fps
    with pytest.raises(
        gr.Error, match=re.escape(f"long.mp4 lasts 65.0 s; videos up to {MAX_VIDEO_SECONDS} s")
    ):
        check_video(upload, max_frames=900, max_side=1920, limits="Videos up to 900 frames.")
    assert not upload.exists() and not upload.parent.exists()  # the refused upload is gone

    kept = _clip(tmp_path / "mine.mp4", frames=3)  # not in the upload folder: left alone
    with pytest.raises(gr.Error, match="mine.mp4 has 3 frames; videos up to 2 frames are accepted"):
        check_video(kept, max_frames=2, max_side=1920, limits="")
    assert kept.exists()
    check_video(kept, max_frames=900, max_side=1920, limits="")


def test_a_refused_upload_is_deleted_after_a_delay_not_at_once(tmp_path, monkeypatch):
    """The upload widget may have asked for the refused file already (the server checked that it
    exists): it stays until DISCARD_AFTER_S has passed, so that request is served in full."""
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    import sam3_demo.uploads
    from sam3_demo.uploads import discard_upload

    monkeypatch.setattr(sam3_demo.uploads, "DISCARD_AFTER_S", 1.0)
    upload = tmp_path / "uploads" / "0123abcd" / "junk.mp4"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"not a video")
    discard_upload(upload)
    assert upload.read_bytes() == b"not a video"  # still there for a request under way
    deadline = time.monotonic() + 30
    while upload.parent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not upload.exists() and not upload.parent.exists()
