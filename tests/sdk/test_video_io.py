"""Video reading through PyAV (real files written by the tests), folders and lists of frames."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image
from sam3_sdk.video_io import _AvSource, open_video
from test_videos import make_video


def write_video(path, frames, codec="libx264", fps=10, rotation=None, pts_ms=None, fmt=None):
    """Encode (H, W, 3) uint8 frames with PyAV; `pts_ms` gives variable frame times in ms."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _close(a: np.ndarray, b: np.ndarray, tol: float = 12.0) -> bool:
    """Lossy codecs: frames match the originals on average within `tol` grey levels."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean()) < tol


@pytest.fixture(scope="module")
def frames():
    return make_video(12, 48, 64, seed=3)


@pytest.mark.parametrize(
    "name, codec",
    [("clip.mp4", "libx264"), ("clip.webm", "libvpx-vp9"), ("vp8.webm", "libvpx"), ("clip.mov", "libx264"),
     ("clip.avi", "mpeg4")],
)  # fmt: skip
def test_containers_decode_in_order_and_by_index(tmp_path, frames, name, codec):
    path = write_video(tmp_path / name, frames, codec=codec)
    reader = open_video(path)
    assert len(reader) == 12 and reader.size == (48, 64) and reader.fps == pytest.approx(10)
    decoded = list(reader)
    assert all(f.dtype == np.uint8 and f.shape == (48, 64, 3) for f in decoded)
    assert all(_close(d, f) for d, f in zip(decoded, frames))
    # frame 7 is closer to original frame 7 than to its neighbours (the order is right)
    errs = [np.abs(decoded[7].astype(int) - f.astype(int)).mean() for f in frames]
    assert int(np.argmin(errs)) == 7
    # random access (seeks) gives exactly the sequentially decoded frames
    for i in (9, 2, 11, 0, 5, -1):
        np.testing.assert_array_equal(reader[i], decoded[i])
    assert reader.timestamps[:3] == pytest.approx([0.0, 0.1, 0.2])


def test_rotation_metadata_is_applied(tmp_path, frames):
    path = write_video(tmp_path / "rotated.mp4", frames, rotation=90)
    reader = open_video(path)
    assert reader.size == (64, 48)  # displayed upright: portrait
    upright = np.rot90(frames[4], k=1)  # 90 degrees counter-clockwise, as the display matrix says
    assert _close(reader[4], upright)


def test_variable_frame_rate_keeps_timestamps(tmp_path, frames):
    pts = [0, 40, 80, 200, 240, 400, 440, 480, 600, 700, 710, 900]
    path = write_video(tmp_path / "vfr.mkv", frames, pts_ms=pts, fmt="matroska")
    reader = open_video(path)
    assert len(reader) == 12
    assert reader.timestamps == pytest.approx([p / 1000 for p in pts], abs=1e-3)
    assert _close(reader[9], frames[9])


def test_lazy_decoding_keeps_a_bounded_cache(tmp_path):
    frames = make_video(60, 32, 48, seed=1)
    path = write_video(tmp_path / "long.mp4", frames)
    source = _AvSource(str(path), cache_bytes=5 * 32 * 48 * 3)  # room for 5 decoded frames
    assert source._cache_frames == 5
    sequential = [source.frame(i).copy() for i in range(60)]
    assert len(source._cache) <= 5
    for i in (55, 3, 30, 29, 28, 59):  # seeks, and backward steps
        np.testing.assert_array_equal(source.frame(i), sequential[i])
        assert len(source._cache) <= 5
    source.close()


def test_folder_and_list_and_array_sources(tmp_path, frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:4]):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    reader = open_video(folder, fps=5)
    assert len(reader) == 4 and reader.fps == 5 and reader.size == (48, 64)
    np.testing.assert_array_equal(reader[2], frames[2])
    pil = open_video([Image.fromarray(f) for f in frames[:3]])
    np.testing.assert_array_equal(pil[1], frames[1])
    arr = open_video(np.stack(frames[:5]))
    assert len(arr) == 5 and arr.fps == 30.0
    np.testing.assert_array_equal(list(arr)[4], frames[4])


def test_unreadable_inputs_give_clear_errors(tmp_path, frames):
    with pytest.raises(ValueError, match="does not exist"):
        open_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="cannot read"):
        open_video(junk)
    audio = tmp_path / "sound.wav"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        for packet in stream.encode(samples):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(ValueError, match="no video stream.*audio"):
        open_video(audio)
    empty_video = tmp_path / "empty.mp4"
    with av.open(str(empty_video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # the header, with a video stream but no frames
    assert empty_video.stat().st_size > 0
    with pytest.raises(ValueError, match="no frames|no video stream"):
        open_video(empty_video)
    with pytest.raises(ValueError, match="no frames"):
        open_video([])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no frames"):
        open_video(empty)
    with pytest.raises(ValueError, match="frame 1 is 10x10 but frame 0 is 48x64"):
        list(open_video([frames[0], np.zeros((10, 10, 3), np.uint8)]))
    with pytest.raises(ValueError, match="fps must be a positive number"):
        open_video(frames, fps=0)
    reader = open_video(frames)
    with pytest.raises(IndexError, match="frame 12 is out of range; the video has frames 0..11"):
        reader[12]
