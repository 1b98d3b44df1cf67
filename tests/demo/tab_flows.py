"""What a user does in each tab, step by step in a real browser (shared by the Space and the
many-users tests). Each flow starts from a loaded page and returns what the page showed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
from playwright.sync_api import expect
from test_videos import make_video

# The picture in a selector has loaded. Gradio swaps in the new picture in the same update that
# writes the status line, and maps a click through the picture's natural size: a click while the new
# one loads selects nothing (seen for up to 0.2 s after the status line, more under load).
PICTURE_LOADED = (
    "(sel) => { const i = document.querySelector(sel + ' img');"
    " return !!i && !!i.src && i.complete && i.naturalWidth > 0; }"
)


def write_clip(path: Path, frames: int = 3, height: int = 64, width: int = 96, seed: int = 2) -> Path:
    """A short H.264 clip of moving shapes (8 fps)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in make_video(frames, height, width, seed=seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def set_slider(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def wait_picture(page, selector: str) -> None:
    """Wait until the picture shown in `selector` has loaded (see PICTURE_LOADED)."""
    page.wait_for_function(PICTURE_LOADED, arg=selector)


def wait_table(page, table: str, status: str, counted: str) -> int:
    """The number n of results the status line `status` announces ("20 instances found ...", with
    `counted` the regex of the counted word), once the table `table` shows all n rows (and its
    header). Gradio's virtual table draws its rows over a few frames after the status line shows
    (12 of 20 rows seen for 0.2 s), so a count read at once can be short."""
    text = page.locator(status).inner_text()
    found = re.search(rf"(\d+) {counted} found", text)
    assert found, f"no '<n> {counted} found' in the status line: {text!r}"
    n = int(found[1])
    expect(page.locator(f"{table} [role=row]")).to_have_count(n + 1)
    return n


def click_at(page, selector: str, fx: float, fy: float) -> None:
    """Click at the fractions (fx, fy) of the width and height of the image shown in `selector`,
    once it has loaded."""
    shown = page.locator(f"{selector} img").first
    shown.wait_for()
    wait_picture(page, selector)
    shown.scroll_into_view_if_needed()
    box = shown.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def concept_flow(page, phrase: str, example: int = 0) -> dict:
    """Example image, a phrase, threshold 0 (random weights: keep every query), Segment, download."""
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-tab-examples img").nth(example).click()
    page.locator("#concept-status").get_by_text("press Segment").wait_for()
    page.locator("#concept-text textarea, #concept-text input").first.fill(phrase)
    set_slider(page, "concept-threshold", 0)
    page.locator("#concept-run").click()
    page.locator("#concept-status").get_by_text(f"found for {phrase!r}").wait_for()
    with page.expect_download() as info:
        page.locator("#concept-download-rle").click()
    return json.loads(Path(info.value.path()).read_text())


def point_flow(page, fx: float, fy: float) -> dict:
    """Example image, one positive click at (fx, fy) of the image, download the mask's COCO RLE."""
    page.get_by_role("tab", name="Point prompting").click()
    page.locator("#point-tab-examples img").first.click()
    page.get_by_text("Click on the object.", exact=True).wait_for()
    click_at(page, "#point-image", fx, fy)
    page.locator("#point-status").get_by_text("Mask 1 of 3").wait_for()
    with page.expect_download() as info:
        page.locator("#point-download-rle").click()
    return json.loads(Path(info.value.path()).read_text())


def video_flow(page, clip: Path, clicks: list[tuple[float, float]]) -> dict:
    """Upload `clip`; object i clicked at clicks[i] on frame 0; propagate; download the COCO RLE."""
    page.get_by_role("tab", name="Video tracking").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(clip))
    status = page.locator("#video-status")
    status.get_by_text("Scrub to a frame").wait_for()
    for i, (fx, fy) in enumerate(clicks):
        if i:
            page.locator("#video-new-object").click()
            page.locator("#video-legend").get_by_text(f"Object {i + 1} ◀").wait_for()
        click_at(page, "#video-frame-view", fx, fy)
        status.get_by_text(f"object {i + 1} on frame 0", exact=False).wait_for()
    page.locator("#video-propagate").click()
    status.get_by_text(f"Tracked {len(clicks)} object(s)").wait_for()
    with page.expect_download() as info:
        page.locator("#video-download-rle").click()
    return json.loads(Path(info.value.path()).read_text())
