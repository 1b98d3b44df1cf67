"""Video tracking in a real browser: upload a clip, click, propagate, watch the result, download."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from coco_files import load_youtube_vis  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import click_at  # noqa: E402
from test_videos import make_video  # noqa: E402

H, W, N = 96, 128, 6


def _write_clip(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for rgb in make_video(N, H, W, seed=2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_upload_click_propagate_play_download(page, demo_url, tmp_path):
    clip = _write_clip(tmp_path / "clip.mp4")
    page.goto(demo_url)
    page.get_by_text("Smoke-test mode").wait_for()
    page.get_by_role("tab", name="Video tracking").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(clip))
    status = page.locator("#video-status")
    status.get_by_text(f"{N} frames, {W}x{H} px").wait_for()

    before = page.locator("#video-frame-view img").first.get_attribute("src")
    click_at(page, "#video-frame-view", 0.4, 0.4)
    status.get_by_text("Object 1 on frame 0").wait_for()
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
        arg=["#video-frame-view img", before],
    )

    # A second object, with its own id
    page.locator("#video-new-object").click()
    page.locator("#video-legend").get_by_text("Object 2").wait_for()
    click_at(page, "#video-frame-view", 0.7, 0.6)  # the picture is redrawn for the new object
    status.get_by_text("Object 2 on frame 0").wait_for()

    page.locator("#video-propagate").click()
    status.get_by_text(f"Tracked 2 object(s) over {N} frames.").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#video-result video');"
        " return v && v.src && v.readyState >= 1 && v.duration > 0; }"
    )
    duration = page.evaluate("document.querySelector('#video-result video').duration")
    assert abs(duration - N / 8) < 0.3
    page.evaluate("document.querySelector('#video-result video').play()")
    page.wait_for_function("() => document.querySelector('#video-result video').currentTime > 0")
    screenshot(page, "video_tab")

    with page.expect_download() as info:
        page.locator("#video-download-mp4").click()
    with av.open(info.value.path()) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (W, H) and stream.average_rate == 8
        assert sum(1 for _ in container.decode(stream)) == N

    with page.expect_download() as info:
        page.locator("#video-download-zip").click()
    with zipfile.ZipFile(info.value.path()) as zf:
        assert zf.namelist() == [f"frame_{i:06d}.png" for i in range(N)]
        index_masks = [np.array(Image.open(io.BytesIO(zf.read(f"frame_{t:06d}.png")))) for t in range(N)]
        index = index_masks[3]
    assert index.shape == (H, W) and set(np.unique(index)) <= {0, 1, 2}

    with page.expect_download() as info:
        page.locator("#video-download-rle").click()
    vis = load_youtube_vis(info.value.path())  # YouTube-VIS: every frame's RLE decoded by pycocotools
    assert vis["data"]["videos"][0]["length"] == N and sorted(vis["masks"]) == [1, 2]
    for t in range(N):  # each frame's masks agree with the index PNGs of the zip
        for masks in vis["masks"].values():
            if masks[t] is not None:
                assert (index_masks[t][masks[t]] > 0).all()

    # Reset clears the objects and the downloads
    page.locator("#video-reset").click()
    status.get_by_text("Cleared. Click on an object.").wait_for()
    expect(page.locator("#video-download-mp4")).to_be_disabled()


def test_unreadable_upload_is_refused_with_a_message(page, demo_url, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    page.goto(demo_url)
    page.get_by_role("tab", name="Video tracking").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(junk))
    page.get_by_text("cannot be read as a video").first.wait_for()
