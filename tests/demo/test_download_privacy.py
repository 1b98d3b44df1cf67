"""Who can read a download, and for how long (issue 26): each tab's downloads lie in a folder of
Gradio's cache with a random name (never derived from the input: the same image in two server runs
gives two unrelated URLs), Gradio serves them from there (no content-named copy), and they are
deleted when the tab closes, after which their URL answers an error (403)."""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import free_port, serve  # noqa: E402
from tab_flows import set_slider  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FOLDER = re.compile(r"/sam3-downloads-([A-Za-z0-9_-]{22})/")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _one_run(browser, base: Path, n: int) -> tuple[str, bytes]:
    """A fresh server; a concept search on the first example; the download's URL and bytes, checked
    to lie in the random folder, to be readable while the tab is open and gone once it closes."""
    cache = base / f"gradio-{n}"
    env = {**os.environ, "SAM3_CACHE": str(base / "sam3"), "GRADIO_TEMP_DIR": str(cache),
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    port = free_port()
    command = [
        sys.executable,
        str(ROOT / "apps" / "demo" / "app.py"),
        "--model",
        "tiny-random",
        "--port",
        str(port),
    ]
    with serve(command, port, env, base / f"server-{n}.log"):
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("tab", name="Concept segmentation").click()
        page.locator("#concept-tab-examples img").first.click()
        page.locator("#concept-status").get_by_text("press Segment").wait_for()
        page.locator("#concept-text textarea, #concept-text input").first.fill("red ball")
        set_slider(page, "concept-threshold", 0)
        page.locator("#concept-run").click()
        page.locator("#concept-status").get_by_text("found for 'red ball'").wait_for()
        with page.expect_download() as info:
            page.locator("#concept-download-rle").click()
        url = info.value.url
        content = Path(info.value.path()).read_bytes()
        path = Path(urllib.parse.unquote(url.split("file=", 1)[1]))
        folder = FOLDER.search(str(path))
        assert folder and path.is_file() and path.is_relative_to(cache), url
        tab_folder = cache / f"sam3-downloads-{folder.group(1)}"
        assert oct(tab_folder.stat().st_mode & 0o777) == "0o700"  # other local users cannot list it
        # Served where it was written: Gradio made no copy named by the file's content.
        assert [p for p in cache.rglob("instances_coco.json") if not p.is_relative_to(tab_folder)] == []
        assert _status(url) == 200  # anyone with the URL, while the tab is open

        context.close()  # the tab closes: its state, and with it the downloads, are deleted
        deadline = time.time() + 60
        while tab_folder.exists() and time.time() < deadline:
            time.sleep(0.5)
        assert not tab_folder.exists()
        assert _status(url) in (403, 404)  # Gradio answers 403 for a file it no longer knows
    return url, content


def test_downloads_have_random_urls_and_go_with_the_tab(browser, tmp_path):
    first_url, first = _one_run(browser, tmp_path, 1)
    second_url, second = _one_run(browser, tmp_path, 2)
    assert first == second  # the same input and result...
    assert FOLDER.search(first_url).group(1) != FOLDER.search(second_url).group(1)  # ...two unrelated names
