"""Many users at once: 8 browser sessions (Playwright contexts in one Chromium) on one real demo
server, segmenting a concept, uploading, clicking and propagating a video at the same time.

Each session must see only its own phrase, clip, objects and downloads; at most `--max-concurrency`
model calls run at once while the others show their place in the queue; and when the tabs close the
server frees their state: the per-tab download folders go and the process's memory comes back to
within 10% of where it started."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coco_files import load_coco, load_youtube_vis  # noqa: E402
from demo_server import free_port, serve  # noqa: E402
from tab_flows import click_at, set_slider, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
USERS = 8
MAX_CONCURRENCY = 2
PHRASES = [
    "red ball",
    "yellow bus",
    "blue cup",
    "green tree",
    "black cat",
    "white boat",
    "pink hat",
    "grey car",
]

# Installed in every page: every queue position the video tab's status shows (Gradio's status
# tracker writes "queue: 3/6 |" while an event waits), until the propagation's result arrives.
WATCH = """(() => {
  const watch = window.watch = {queued: [], done: false};
  new MutationObserver(() => {
    const el = document.querySelector('#video-status');
    if (!el || watch.done) return;
    const q = el.textContent.match(/queue: (\\d+)\\/(\\d+)/);
    if (q) watch.queued.push([+q[1], +q[2]]);
    watch.done = /Tracked \\d+ object/.test(el.textContent);
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
})()"""
RUNNING = re.compile(r"model call (\w+) started \((\d+) running\)")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _export_folders(tmp: Path) -> list[Path]:
    return sorted((tmp / "gradio").glob("sam3-downloads-*"))  # Gradio's cache: $TMPDIR/gradio


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("many-users")
    tmp = base / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "SAM3_CACHE": str(base / "cache"),
        "TMPDIR": str(tmp),  # the per-tab download folders are made here, so the test can count them
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    command = [sys.executable, str(ROOT / "apps" / "demo" / "app.py"), "--model", "tiny-random",
               "--port", str(port), "--max-concurrency", str(MAX_CONCURRENCY)]  # fmt: skip
    with serve(command, port, env, base / "server.log") as (url, proc):
        yield url, proc, tmp, base / "server.log"


def _wait_until_freed(pid: int, tmp: Path, rss_mb: float | None, timeout_s: float = 60) -> None:
    """Wait for the closed tabs' download folders to go (and the RSS to drop below `rss_mb`)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and (_export_folders(tmp) or (rss_mb and _rss_mb(pid) > rss_mb)):
        time.sleep(0.5)
    time.sleep(0.5)


def _all(pages, action):
    for page in pages:
        action(page)


def press_at_once(pages, selector: str) -> None:
    """Press a button in every page at the same moment (one shared clock: each page sets a timer
    for the same instant), so that the requests reach the queue together."""
    for page in pages:
        page.locator(selector).wait_for()
    at = time.time() * 1000 + 150 * len(pages)
    _all(pages, lambda page: page.evaluate(
        "([sel, at]) => setTimeout(() => document.querySelector(sel).click(), at - Date.now())", [selector, at]
    ))  # fmt: skip


def users_at_once(
    browser, url: str, users: int, folder: Path, exports: Path, pid: int
) -> tuple[list[dict], float]:
    """`users` browser sessions segment a concept, upload a clip, click objects and propagate, each
    step pressed in all of them at once; checks that each sees only its own work, closes them and
    returns the queue positions each showed while its propagation waited, and the server's RSS (MB)
    while they were open."""
    clips = [
        write_clip(folder / f"clip{i}.mp4", frames=2 + i % 3, height=48, width=64 + 8 * i, seed=i)
        for i in range(users)
    ]
    contexts = [browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
                for _ in range(users)]  # fmt: skip
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.set_default_timeout(120_000)
        page.goto(url)
    for page in pages:
        page.get_by_text("Smoke-test mode").wait_for()

    # Segmenting: every user their own phrase.
    for i, page in enumerate(pages):
        page.locator("#concept-tab-examples img").nth(i % 2).click()
    for i, page in enumerate(pages):
        page.locator("#concept-status").get_by_text("press Segment").wait_for()
        page.locator("#concept-text textarea, #concept-text input").first.fill(PHRASES[i])
        set_slider(page, "concept-threshold", 0)
    press_at_once(pages, "#concept-run")
    for i, page in enumerate(pages):
        page.locator("#concept-status").get_by_text(f"found for {PHRASES[i]!r}").wait_for()
        with page.expect_download() as info:
            page.locator("#concept-download-rle").click()
        assert load_coco(info.value.path()).dataset["categories"] == [{"id": 1, "name": PHRASES[i]}]

    # Videos: each user their own clip (its own size and length) and number of objects.
    for i, page in enumerate(pages):
        page.get_by_role("tab", name="Video tracking").click()
        page.locator("#video-upload input[type=file]").set_input_files(str(clips[i]))
    for i, page in enumerate(pages):
        page.locator("#video-status").get_by_text(f"{2 + i % 3} frames, {64 + 8 * i}x48 px").wait_for()
    areas = [{} for _ in pages]
    for obj in (1, 2):
        clicking = [i for i in range(users) if obj <= 1 + i % 2]
        for i in clicking:
            if obj > 1:
                pages[i].locator("#video-new-object").click()
                pages[i].locator("#video-legend").get_by_text(f"Object {obj} ◀").wait_for()
            click_at(pages[i], "#video-frame-view", 0.25 + 0.05 * i, 0.3 + 0.2 * (obj - 1))
        for i in clicking:
            status = pages[i].locator("#video-status")
            status.get_by_text(f"object {obj} on frame 0", exact=False).wait_for()
            found = re.search(rf"Object {obj} on frame 0: (\d+) pixels", status.inner_text())
            areas[i][obj] = int(found.group(1)) if found else 0
    _all(pages, lambda page: page.evaluate(WATCH))
    press_at_once(pages, "#video-propagate")
    for i, page in enumerate(pages):
        page.locator("#video-status").get_by_text(f"Tracked {1 + i % 2} object(s)").wait_for()
    _all(pages, lambda page: page.wait_for_function("window.watch.done"))
    watches = [page.evaluate("window.watch") for page in pages]

    # Each user's downloads hold their own clip, objects and masks.
    for i, page in enumerate(pages):
        with page.expect_download() as info:
            page.locator("#video-download-rle").click()
        vis = load_youtube_vis(info.value.path())  # YouTube-VIS, every frame's RLE decoded
        video = vis["data"]["videos"][0]
        assert video["length"] == 2 + i % 3
        assert [a["object_id"] for a in vis["data"]["annotations"]] == list(range(1, 2 + i % 2))
        assert (video["height"], video["width"]) == (48, 64 + 8 * i)
        for obj, area in areas[i].items():  # the mask this user saw when clicking
            first = vis["masks"][obj][0]  # null where the mask is empty
            assert (0 if first is None else int(first.sum())) == area
    assert len(_export_folders(exports)) == 2 * users  # each tab's downloads in its own folder
    open_mb = _rss_mb(pid)
    for context in contexts:
        context.close()
    return watches, open_mb


def test_eight_users_at_once_see_only_their_own_work(browser, server, tmp_path):
    url, proc, tmp, log = server
    # A first round pays the one-time costs (lazy imports, first calls' buffers, handler threads,
    # Gradio's and the allocator's high-water marks) before the starting level is taken; the second
    # must then give back what its sessions took.
    users_at_once(browser, url, USERS, tmp_path, tmp, proc.pid)
    _wait_until_freed(proc.pid, tmp, None)
    start_mb = _rss_mb(proc.pid)

    watches, open_mb = users_at_once(browser, url, USERS, tmp_path, tmp, proc.pid)

    # The queue: never more than MAX_CONCURRENCY model calls at once (of any kind: concept searches,
    # clicks, propagations), and they did overlap; the others waited with their position shown.
    calls = RUNNING.findall(log.read_text())
    assert {name for name, _ in calls} >= {"on_run", "on_click", "on_propagate"}
    assert max(int(n) for _, n in calls) == MAX_CONCURRENCY, calls
    waited = [w["queued"] for w in watches if w["queued"]]
    assert len(waited) >= USERS - MAX_CONCURRENCY - 1, watches
    assert max(pos for queued in waited for pos, _ in queued) >= 3, watches
    assert all(1 <= pos <= size <= USERS for queued in waited for pos, size in queued), watches

    # Closed tabs: their state is deleted (sessions, images, downloads) and the memory comes back.
    _wait_until_freed(proc.pid, tmp, 1.1 * start_mb)
    end_mb = _rss_mb(proc.pid)
    print(f"server RSS: start {start_mb:.0f} MB, 8 users {open_mb:.0f} MB, tabs closed {end_mb:.0f} MB")
    assert _export_folders(tmp) == []
    assert open_mb > 1.1 * start_mb  # the sessions did hold memory: its return is worth checking
    assert end_mb <= 1.1 * start_mb, (start_mb, open_mb, end_mb)


def test_every_model_call_shares_one_queue_group(monkeypatch, tmp_path):
    """Gradio bounds each event listener on its own unless told otherwise: the app puts every handler
    that calls the model (the example gallery's too) in one group of --max-concurrency slots."""
    monkeypatch.setenv("SAM3_CACHE", str(tmp_path))
    sys.path.insert(0, str(ROOT / "apps" / "demo"))
    from sam3_demo.loading import ModelSlot
    from sam3_demo.ui import MODEL_QUEUE, build_app

    app = build_app(ModelSlot(name="none", error="not loaded"), max_concurrency=3)
    grouped = sorted(f.fn.__name__ for f in app.fns.values() if f.concurrency_id == MODEL_QUEUE)
    assert grouped == [
        "<lambda>",
        "generate_masks",  # the API's endpoints (sam3_demo.api)
        "on_click",
        "on_click",
        "on_find",
        "on_find",
        "on_propagate",
        "on_run",
        "on_run",
        "on_run",  # Segment everything
        "on_undo",
        "on_upload",
        "segment_concept",
        "segment_object",
        "track_video",
    ]
    assert all(f.concurrency_limit == 3 for f in app.fns.values() if f.concurrency_id == MODEL_QUEUE)
    others = {f.fn.__name__ for f in app.fns.values() if f.fn is not None and f.concurrency_id != MODEL_QUEUE}
    assert {
        "on_scrub",
        "on_choose",
        "on_new",
        "on_remove",
    } <= others  # cheap UI events do not wait for the model
