"""The video tab's frame, in a real browser, for every way of choosing it: typing a number (+ Enter),
the arrow keys, dragging the slider, pausing the tracked video. The slider's number, the picture's
frame number, the picture itself and the frame a click goes to are the same; a click sent at once
after choosing (before the picture arrived) is not lost and goes to the chosen frame."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from tab_flows import click_at, set_slider  # noqa: E402

N, H, W, FPS = 12, 64, 96, 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """N frames, each a flat grey of its own with a white bar at its own place: a picture names its frame."""
    path = tmp_path_factory.mktemp("frames") / "frames.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            rgb = np.full((H, W, 3), 30 + 15 * i, np.uint8)
            rgb[:, 7 * i : 7 * i + 6] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in container.decode(video=0)]
    return path, frames


def slider_value(page) -> int:
    return int(float(page.locator("#video-frame input[type=number]").input_value()))


def label_frame(page) -> int:
    text = page.locator("#video-frame-view label").first.inner_text()  # "Frame 7: click on the object"
    return int(text.split(":")[0].split()[-1])


def picture_frame(page, frames) -> int:
    """The frame whose pixels the picture shows (nearest in mean squared difference)."""
    src = page.locator("#video-frame-view img").first.get_attribute("src")
    picture = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"), np.float32)
    scale = picture.shape[0] // H  # small videos are shown enlarged by a whole factor
    picture = picture[scale // 2 :: scale, scale // 2 :: scale][:H, :W]
    return int(np.argmin([np.mean((picture - f) ** 2) for f in frames]))


def wait_shown(page, n: int) -> None:
    """The picture of frame n has arrived (its label names it)."""
    page.wait_for_function(
        "(n) => { const l = document.querySelector('#video-frame-view label');"
        " return l && l.textContent.includes('Frame ' + n + ':'); }",
        arg=n,
    )


def click_now(page, fx: float, fy: float) -> None:
    """A mouse click at (fx, fy) of the frame's picture, at once: the picture may still be loading
    (each frame change replaces it; the page holds such a click until it has loaded, video_order.py)."""
    box = page.locator("#video-frame-view img").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def open_clip(page, url, path) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Video tracking").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(path))
    page.locator("#video-status").get_by_text(f"{N} frames, {W}x{H} px").wait_for()
    wait_shown(page, 0)


def typed(page, n: int) -> int:
    set_slider(page, "video-frame", n)
    return n


def arrows(page, n: int) -> int:
    start = slider_value(page)
    knob = page.locator("#video-frame input[type=range]")
    knob.focus()
    for _ in range(n - start):
        knob.press("ArrowRight")
    return n


def drag(page, n: int) -> int:
    knob = page.locator("#video-frame input[type=range]")
    box = knob.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    for fraction in (0.2, 0.4, n / (N - 1)):  # the thumb passes other frames on its way
        page.mouse.move(box["x"] + box["width"] * fraction, y, steps=3)
    page.mouse.up()
    return slider_value(page)  # where the drag ended (the thumb's width shifts it by a frame or so)


@pytest.mark.parametrize("choose", [typed, arrows, drag], ids=["typed-number", "arrow-keys", "drag"])
def test_the_chosen_frame_is_shown_and_clicked(page, demo_url, clip, choose):
    path, frames = clip
    open_clip(page, demo_url, path)
    status = page.locator("#video-status")

    # A click at once after choosing: not lost, and on the chosen frame.
    n = choose(page, 5)
    assert n > 0
    click_now(page, 0.3, 0.3)
    status.get_by_text(f"bject 1 on frame {n}:").wait_for()  # "Object 1 on..." or "object 1" when empty
    wait_shown(page, n)
    assert slider_value(page) == n and label_frame(page) == n

    # Another frame the same way: its number and picture, once it arrived.
    m = choose(page, 9)
    assert m != n
    wait_shown(page, m)
    status.get_by_text(f"Frame {m}").wait_for()
    assert slider_value(page) == m and label_frame(page) == m
    assert picture_frame(page, frames) == m
    click_at(page, "#video-frame-view", 0.6, 0.5)
    status.get_by_text(f"bject 1 on frame {m}:").wait_for()
    assert slider_value(page) == m and label_frame(page) == m


def test_pausing_the_tracked_video_chooses_its_frame(page, demo_url, clip):
    path, frames = clip
    open_clip(page, demo_url, path)
    status = page.locator("#video-status")
    click_at(page, "#video-frame-view", 0.3, 0.3)
    status.get_by_text("Object 1 on frame 0:").wait_for()
    page.locator("#video-propagate").click()
    status.get_by_text(f"Tracked 1 object(s) over {N} frames.").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#video-result video'); return v && v.readyState >= 2; }"
    )
    # Play, then pause between frames: the frame shown is the last one starting before the pause.
    seconds = page.evaluate(
        """async () => { const v = document.querySelector('#video-result video');
        v.muted = true; await v.play();
        await new Promise(r => { const f = () => v.currentTime > 0.6 ? r() : requestAnimationFrame(f); f(); });
        v.pause(); return v.currentTime; }"""
    )
    n = min(N - 1, int(seconds * FPS + 1e-3))
    status.get_by_text(f"Frame {n} (where the tracked video was paused)").wait_for()
    wait_shown(page, n)
    assert slider_value(page) == n and label_frame(page) == n
    click_at(page, "#video-frame-view", 0.6, 0.5)
    status.get_by_text(f"bject 1 on frame {n}:").wait_for()  # "Object 1 on..." or "object 1" when empty
    assert slider_value(page) == n and label_frame(page) == n
    screenshot(page, "video_tab_frame_from_player")


def test_a_click_on_a_picture_still_loading_is_not_lost(page, demo_url, clip):
    """The chosen frame's picture is held back in the network: a click on it while it loads (which
    Gradio alone drops: it maps a click through the picture's natural size) is sent once it has loaded,
    to the chosen frame (video_order.HEAD)."""
    path, _ = clip
    open_clip(page, demo_url, path)
    held = []
    page.route("**/gradio_api/file=**", lambda route: held.append(route))
    set_slider(page, "video-frame", 7)
    wait_shown(page, 7)
    page.wait_for_function(
        "() => { const i = document.querySelector('#video-frame-view img');"
        " return i && !(i.complete && i.naturalWidth > 0); }"
    )
    box = page.locator("#video-frame-view img").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.wait_for_timeout(300)  # time for a (wrongly) sent click to reach the server
    status = page.locator("#video-status")
    assert "bject 1 on frame" not in status.inner_text()  # held: the picture has not loaded
    for route in held:
        route.continue_()
    page.unroute("**/gradio_api/file=**")
    status.get_by_text("bject 1 on frame 7:").wait_for()
    assert slider_value(page) == 7 and label_frame(page) == 7
