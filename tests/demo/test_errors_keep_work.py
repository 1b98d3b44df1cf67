"""Expected errors keep the user's work, in a real browser, on every tab: an empty phrase, a bad click
(a click whose coordinates the server refuses, sent by rewriting the page's request) and a failed
upload each show their message in the tab's status line, and the picture, the masks, the table, the
objects and the downloads stay as they were (no red "Error" pills in their place). The server log
says each in one line, without a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from coco_files import coco_masks, load_coco  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import click_at, set_slider, wait_picture, wait_table, write_clip  # noqa: E402


class LogTail:
    def __init__(self, path: Path) -> None:
        self.path, self.start = path, path.stat().st_size

    def text(self) -> str:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            f.seek(self.start)
            return f.read()


def bad_clicks(page, index=(99999, 5)):
    """From now on, the page's click (select) events reach the server with `index` as coordinates."""

    def rewrite(route):
        body = json.loads(route.request.post_data or "{}")
        if isinstance(body.get("event_data"), dict) and "index" in body["event_data"]:
            body["event_data"]["index"] = list(index)
            return route.continue_(post_data=json.dumps(body))
        return route.continue_()

    page.route("**/queue/join*", rewrite)


def picture(page, selector: str) -> dict:
    """The picture shown in `selector` (its URL and natural size), once it has loaded."""
    wait_picture(page, selector)
    return page.evaluate(
        "(sel) => { const i = document.querySelector(sel + ' img');"
        " return i ? {src: i.src, w: i.naturalWidth, h: i.naturalHeight} : null; }",
        selector,
    )


def assert_no_error_pills(page) -> None:
    """No output shows Gradio's red "Error" in place of its value (toasts aside: the browser's own
    "Video not playable" for a junk video is one)."""
    pills = page.evaluate(
        "() => [...document.querySelectorAll('span, div, p')].filter(e => e.childElementCount === 0"
        " && e.textContent.trim() === 'Error' && !e.closest('[class*=toast]')).length"
    )
    assert pills == 0


def test_concept_tab_keeps_its_work(page, demo_server, tmp_path):
    url, log_path = demo_server
    log = LogTail(log_path)
    page.goto(url)
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-tab-examples img").first.click()
    status = page.locator("#concept-status")
    status.get_by_text("press Segment").wait_for()
    text = page.locator("#concept-text textarea, #concept-text input").first
    text.fill("red ball")
    set_slider(page, "concept-threshold", 0)
    page.locator("#concept-run").click()
    status.get_by_text("found for 'red ball'").wait_for()
    rows = page.locator("#concept-table [role=row]")
    n_rows = wait_table(page, "#concept-table", "#concept-status", "instances?") + 1
    first_row = rows.nth(1).inner_text()
    shown = picture(page, "#concept-image")

    def assert_kept():
        # Each a wait: an output the refusal re-sent is redrawn over a few frames.
        expect(rows).to_have_count(n_rows)
        expect(rows.nth(1)).to_have_text(first_row, use_inner_text=True)
        expect(page.locator("#concept-download-rle")).to_be_enabled()
        expect(page.locator("#concept-download-png")).to_be_enabled()
        assert_no_error_pills(page)

    # An empty phrase (and no exemplar box)
    text.fill("")
    page.locator("#concept-run").click()
    status.get_by_text("Type a concept such as").wait_for()
    assert picture(page, "#concept-image") == shown
    assert_kept()

    # A bad click
    bad_clicks(page)
    click_at(page, "#concept-image", 0.5, 0.5)
    status.get_by_text("A click must be two pixel coordinates").wait_for()
    page.unroute("**/queue/join*")
    assert picture(page, "#concept-image") == shown
    assert_kept()

    # A failed upload (text named .png: the page lets it through, the server refuses it): the picture
    # before it comes back
    fake = tmp_path / "broken.png"
    fake.write_text("not an image")
    page.locator("#concept-image input[type=file]").set_input_files(str(fake))
    status.get_by_text("broken.png' is not a readable image").wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('#concept-image img'); return i && i.naturalWidth === 480; }"
    )
    assert_kept()
    screenshot(page, "concept_tab_error_kept_work")
    with page.expect_download() as info:
        page.locator("#concept-download-rle").click()
    assert len(json.loads(Path(info.value.path()).read_text())["annotations"]) == n_rows - 1
    logged = log.text()
    assert "Traceback" not in logged, logged[-3000:]
    assert "on_run refused: Type a concept" in logged and "upload refused" in logged


def test_point_tab_keeps_its_work(page, demo_server, tmp_path):
    url, log_path = demo_server
    log = LogTail(log_path)
    page.goto(url)
    page.get_by_role("tab", name="Point prompting").click()
    page.locator("#point-tab-examples img").first.click()
    page.get_by_text("Click on the object.", exact=True).wait_for()
    status = page.locator("#point-status")
    click_at(page, "#point-image", 0.3, 0.45)
    status.get_by_text("Mask 1 of 3").wait_for()
    shown = picture(page, "#point-image")
    labels = page.locator("#point-candidates label")
    expect(labels).to_have_count(3)
    candidates = labels.all_inner_texts()

    def assert_kept():
        expect(labels).to_have_text(candidates, use_inner_text=True)
        expect(page.locator("#point-download-png")).to_be_enabled()
        expect(page.locator("#point-download-rle")).to_be_enabled()
        assert_no_error_pills(page)

    bad_clicks(page, index=("abc", 3))
    click_at(page, "#point-image", 0.5, 0.5)
    status.get_by_text("A click must be two pixel coordinates").wait_for()
    page.unroute("**/queue/join*")
    assert picture(page, "#point-image") == shown
    assert_kept()

    fake = tmp_path / "broken.png"
    fake.write_text("not an image")
    page.locator("#point-image input[type=file]").set_input_files(str(fake))
    status.get_by_text("broken.png' is not a readable image").wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('#point-image img'); return i && i.naturalWidth === 480; }"
    )
    assert_kept()

    # The refused click and upload left the one point: a box's first corner gives a hint over the mask.
    page.locator("#point-mode").get_by_text("Box (2 clicks)").click()
    click_at(page, "#point-image", 0.1, 0.1)
    status.get_by_text("Box started (the blue square): click its opposite corner. Mask 1 of 3").wait_for()
    screenshot(page, "point_tab_error_kept_work")
    with page.expect_download() as info:
        page.locator("#point-download-rle").click()
    coco = load_coco(info.value.path())  # the kept mask's COCO file, still a valid one
    assert len(coco.getAnnIds()) == 1 and coco_masks(coco).any()
    logged = log.text()
    assert "Traceback" not in logged, logged[-3000:]
    assert "on_click refused: A click must be" in logged


def test_video_tab_keeps_its_work(page, demo_server, tmp_path):
    url, log_path = demo_server
    log = LogTail(log_path)
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    page.goto(url)
    page.get_by_role("tab", name="Video tracking").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(clip))
    status = page.locator("#video-status")
    status.get_by_text("Scrub to a frame").wait_for()
    click_at(page, "#video-frame-view", 0.4, 0.4)
    status.get_by_text("Object 1 on frame 0").wait_for()
    shown = picture(page, "#video-frame-view")
    legend = page.locator("#video-legend").inner_text()

    def assert_kept():
        assert picture(page, "#video-frame-view") == shown
        expect(page.locator("#video-legend")).to_have_text(legend, use_inner_text=True)
        assert_no_error_pills(page)

    bad_clicks(page, index=(99999, 5))
    click_at(page, "#video-frame-view", 0.5, 0.5)
    status.get_by_text(
        "A click must be two pixel coordinates [x, y] inside the 960x640 image"
    ).wait_for()  # the frame shown 10x
    page.unroute("**/queue/join*")
    assert_kept()

    # Another video, unreadable: the clear button, then the upload. The video before it comes back.
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    page.locator("#video-upload button[aria-label=Clear]").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(junk))
    status.get_by_text("cannot be read as a video").wait_for()
    page.locator("#video-upload video").wait_for()
    assert_kept()
    screenshot(page, "video_tab_error_kept_work")

    # The session is intact: the clicked object propagates.
    page.locator("#video-propagate").click()
    status.get_by_text("Tracked 1 object(s) over 4 frames.").wait_for()
    logged = log.text()
    assert "Traceback" not in logged, logged[-3000:]
    assert "video upload refused" in logged
