"""Find by text in the Video tracking tab, in a real browser against the real server (tiny random
SAM 3): nothing found at the default threshold, then a lower one finds instances on the shown frame (legend and picker name the phrase), propagate,
the annotated video plays, a click adds an object, a found object is removed, and the downloads
carry the phrase. With EdgeTAM picked the text controls are disabled and say why."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from browser_artifacts import screenshot  # noqa: E402
from coco_files import load_youtube_vis  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from sam3_demo.video_text import found_message, parse_phrases  # noqa: E402
from sam3_sdk.video_results import VideoFrameMasks  # noqa: E402
from tab_flows import click_at, set_slider, write_clip  # noqa: E402

N, FPS = 4, 8
PHRASE = "shape"
THRESHOLD = 0.3  # random weights score ~0.4: nothing at SAM 3's 0.7, instances at 0.3


def test_phrases_and_found_messages():
    assert parse_phrases(" person ,dog,, Person,  red   car ") == ["person", "dog", "red car"]
    for bad in ("", " , ,", None):
        with pytest.raises(gr.Error, match="Type what to find"):
            parse_phrases(bad)
    with pytest.raises(gr.Error, match="9 phrases"):
        parse_phrases(",".join(f"p{i}" for i in range(9)))

    frame = VideoFrameMasks(2, [1, 4, 5], np.zeros((3, 8, 8), bool), [0.9, 0.8, 0.7])
    frame.phrases = {4: "dog", 5: "dog"}  # object 1 was clicked
    assert found_message(frame, ["dog", "cat"], 2) == (
        "Found 2 instances of 'dog' (object 4, score 0.80; object 5, score 0.70) on frame 2; nothing for 'cat'. "
        "Propagate to track them, or click to fix or add objects."
    )
    assert found_message(frame, ["cat"], 2).startswith("Nothing was found for 'cat' on frame 2.")


def _legend_ids(page) -> dict[int, str]:
    """Object id -> phrase ("" for clicked objects) as the legend lists them."""
    text = page.locator("#video-legend").inner_text()
    items = re.findall(r"Object (\d+)(?: · (.*?))?(?: ◀ clicking)?(?=\s+Object |\s*$)", text)
    return {int(i): phrase for i, phrase in items}


def _download_rle(page) -> dict:
    with page.expect_download() as info:
        page.locator("#video-download-rle").click()
    vis = load_youtube_vis(info.value.path())  # YouTube-VIS: every frame's RLE decoded by pycocotools
    data = vis["data"]
    names = {c["id"]: c["name"] for c in data["categories"]}
    # object id -> its category (the phrase that found it, or "object" for a click)
    data["phrases"] = {a["object_id"]: names[a["category_id"]] for a in data["annotations"]}
    return data


def _tracked(page, count: int | None = None) -> int:
    status = page.locator("#video-status")
    status.get_by_text("Tracked ").wait_for()
    page.wait_for_function("() => document.querySelector('#video-status').innerText.includes('over')")
    found = re.search(r"Tracked (\d+) object\(s\) over (\d+) frames", status.inner_text())
    assert found and int(found[2]) == N, status.inner_text()
    if count is not None:
        assert int(found[1]) == count
    return int(found[1])


def test_find_by_text_propagate_play_click_remove_download(page, demo_url, tmp_path):
    page.goto(demo_url)
    page.get_by_text("Smoke-test mode").wait_for()
    page.get_by_role("tab", name="Video tracking").click()

    # EdgeTAM has no text detector: the text controls are disabled and say so; SAM 3 enables them
    page.locator("#video-tracker").get_by_text("EdgeTAM").click()
    page.locator("#video-text-note").get_by_text("needs the SAM 3 tracker").wait_for()
    expect(page.locator("#video-find")).to_be_disabled()
    page.locator("#video-tracker").get_by_text("SAM 3").click()
    page.locator("#video-text-note").get_by_text("comma-separated").wait_for()
    expect(page.locator("#video-find")).to_be_enabled()

    page.locator("#video-upload input[type=file]").set_input_files(str(write_clip(tmp_path / "c.mp4", N)))
    status = page.locator("#video-status")
    status.get_by_text(f"{N} frames, 96x64 px").wait_for()

    # Nothing typed: a sentence, no crash
    page.locator("#video-find").click()
    page.get_by_text("Type what to find").first.wait_for()
    page.locator(".toast-close").first.click()  # the message would cover the page's right side

    page.locator("#video-text textarea, #video-text input").first.fill(PHRASE)
    page.locator("#video-find").click()
    status.get_by_text(f"Nothing was found for {PHRASE!r} on frame 0").wait_for()
    set_slider(page, "video-text-threshold", THRESHOLD)
    page.locator("#video-find").click()
    status.get_by_text(f"instances of {PHRASE!r}", exact=False).or_(
        status.get_by_text(f"instance of {PHRASE!r}", exact=False)
    ).wait_for()
    expect(page.locator("#video-legend")).to_contain_text(f" · {PHRASE}")  # the found objects listed
    found = {i: p for i, p in _legend_ids(page).items() if p == PHRASE}
    assert found, page.locator("#video-legend").inner_text()
    for obj_id in found:  # the picker lists the found objects with their phrase
        page.locator("#video-object").get_by_text(f"Object {obj_id} · {PHRASE}").wait_for()
    screenshot(page, "video_text_found")
    set_slider(page, "video-text-threshold", 0.5)  # objects exist: another threshold needs a Reset
    page.locator("#video-find").click()
    page.get_by_text("press Reset").first.wait_for()
    page.locator(".toast-close").first.click()
    set_slider(page, "video-text-threshold", THRESHOLD)

    page.locator("#video-propagate").click()
    tracked = _tracked(page)
    assert tracked >= len(found)
    page.wait_for_function(
        "() => { const v = document.querySelector('#video-result video');"
        " return v && v.src && v.readyState >= 1 && v.duration > 0; }"
    )
    assert abs(page.evaluate("document.querySelector('#video-result video').duration") - N / FPS) < 0.3
    page.evaluate("document.querySelector('#video-result video').play()")
    page.wait_for_function("() => document.querySelector('#video-result video').currentTime > 0")
    data = _download_rle(page)
    assert set(found) <= set(data["phrases"]) and data["videos"][0]["length"] == N
    assert set(data["phrases"].values()) == {PHRASE}  # every object so far was found by the phrase

    # A click adds an object of its own (clicks go to a new id after Find)
    phrase_ids = {i for i, p in _legend_ids(page).items() if p == PHRASE}
    clicked = int(re.search(r"Object (\d+) ◀", page.locator("#video-legend").inner_text())[1])
    assert clicked not in phrase_ids
    click_at(page, "#video-frame-view", 0.15, 0.85)
    status.get_by_text(f"Object {clicked} on frame 0").wait_for()

    # A click on a picked found object refines it; then remove it: it leaves the legend and every frame
    removed = min(phrase_ids)
    page.locator("#video-object").get_by_text(f"Object {removed} · {PHRASE}").click()
    status.get_by_text(f"Clicks now go to object {removed}").wait_for()
    click_at(page, "#video-frame-view", 0.5, 0.5)
    status.get_by_text(f"Object {removed} · {PHRASE} on frame 0").wait_for()
    page.locator("#video-remove-object").click()
    status.get_by_text(f"Object {removed} · {PHRASE} was removed").wait_for()
    expect(page.locator("#video-legend")).not_to_contain_text(f"Object {removed} · {PHRASE}")
    assert removed not in _legend_ids(page)

    page.locator("#video-propagate").click()
    _tracked(page)
    screenshot(page, "video_text")
    data = _download_rle(page)
    assert data["videos"][0]["length"] == N
    assert clicked in data["phrases"] and removed not in data["phrases"]
    assert {o for o, p in data["phrases"].items() if p == PHRASE} == set(data["phrases"]) - {clicked}
    assert data["phrases"][clicked] == "object"
