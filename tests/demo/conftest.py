"""A real demo server (tiny random checkpoint) and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import free_port, serve  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """(url, path of its log) of the session's demo server."""
    cache = tmp_path_factory.mktemp("sam3-cache")
    env = {
        **os.environ,
        "SAM3_CACHE": str(cache),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    command = [
        sys.executable,
        str(ROOT / "apps" / "demo" / "app.py"),
        "--model",
        "tiny-random",
        "--port",
        str(port),
    ]
    with serve(command, port, env, cache / "server.log") as (url, _):
        yield url, cache / "server.log"


@pytest.fixture(scope="session")
def demo_url(demo_server):
    return demo_server[0]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}; `make test` installs it with apt-get")
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # expect() waits as long as a page does (60 s), not its own 5 s: CI runs on 2 busy cores.
    expect.set_options(timeout=60_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()
