"""The Video tracking tab with EdgeTAM picked, in a real browser: a demo started with
`--video-model tiny-random-edgetam`: the example opens with it; on an uploaded clip, click,
propagate, the annotated video plays; switching back to SAM 3 reopens the video."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))
from browser_artifacts import screenshot  # noqa: E402
from coco_files import load_youtube_vis  # noqa: E402
from demo_server import free_port, serve  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from sam3_demo.loading import ModelSlot  # noqa: E402
from sam3_demo.video_models import EDGETAM, SAM3, VideoModels  # noqa: E402
from tab_flows import click_at, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N, FPS = 4, 8


def test_edgetam_checkpoint_comes_from_the_flag_or_the_environment(monkeypatch):
    slot = ModelSlot(name="facebook/sam3")
    monkeypatch.setenv("SAM3_VIDEO_MODEL", "tiny-random-edgetam")
    models = VideoModels(slot)
    assert models.edgetam_name == "tiny-random-edgetam"
    assert models.choices() == [(SAM3, SAM3), (f"{EDGETAM} (RANDOM weights)", EDGETAM)]
    assert VideoModels(slot, "some/edgetam").choices()[1] == (EDGETAM, EDGETAM)  # the flag wins
    monkeypatch.delenv("SAM3_VIDEO_MODEL")
    assert VideoModels(slot).edgetam_name == "yonigozlan/edgetam-video-1"


def test_track_with_edgetam_click_propagate_play(browser, tmp_path):
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "SAM3_CACHE": str(cache),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    command = [sys.executable, str(ROOT / "apps" / "demo" / "app.py"), "--model", "tiny-random",
               "--video-model", "tiny-random-edgetam", "--port", str(port)]  # fmt: skip
    log = tmp_path / "server.log"
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    with serve(command, port, env, log) as (url, _):
        page.goto(url)
        page.get_by_role("tab", name="Video tracking").click()
        page.locator("#video-tracker").get_by_text("EdgeTAM (RANDOM weights)").click()
        note = page.locator("#video-tracker-note")
        note.get_by_text("tiny-random-edgetam").wait_for()
        expect(note).to_contain_text("RANDOM weights")

        page.locator("#video-tab-examples").get_by_role("button").first.click()
        status = page.locator("#video-status")
        status.get_by_text("24 frames, 320x180 px, 12 fps, tracked with EdgeTAM").wait_for()

        page.locator("#video-upload").get_by_label("Clear").click()  # another video in its place
        page.locator("#video-upload input[type=file]").set_input_files(str(write_clip(tmp_path / "c.mp4", N)))
        status.get_by_text(f"{N} frames, 96x64 px, {FPS} fps, tracked with EdgeTAM").wait_for()
        click_at(page, "#video-frame-view", 0.4, 0.4)
        status.get_by_text("Object 1 on frame 0").wait_for()
        page.locator("#video-propagate").click()
        status.get_by_text(f"Tracked 1 object(s) over {N} frames.").wait_for()

        page.wait_for_function(
            "() => { const v = document.querySelector('#video-result video');"
            " return v && v.src && v.readyState >= 1 && v.duration > 0; }"
        )
        assert abs(page.evaluate("document.querySelector('#video-result video').duration") - N / FPS) < 0.3
        page.evaluate("document.querySelector('#video-result video').play()")
        page.wait_for_function("() => document.querySelector('#video-result video').currentTime > 0")
        screenshot(page, "video_tab_edgetam")

        with page.expect_download() as info:
            page.locator("#video-download-rle").click()
        vis = load_youtube_vis(info.value.path())  # YouTube-VIS, every frame's RLE decoded
        assert vis["data"]["videos"][0]["length"] == N and list(vis["masks"]) == [1]

        # Back to SAM 3: the same video, reopened with it, its objects and downloads cleared
        page.locator("#video-tracker").get_by_text("SAM 3 (RANDOM weights)").click()
        status.get_by_text("Now tracking with SAM 3; the objects were cleared.").wait_for()
        expect(page.locator("#video-download-mp4")).to_be_disabled()
        context.close()
    server_log = log.read_text()
    assert "loaded EdgeTAM tracker tiny-random-edgetam" in server_log  # EdgeTAM did the tracking
    assert (cache / "tiny-random-edgetam" / "model.safetensors").is_file()
