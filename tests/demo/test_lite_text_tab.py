"""The demo served with a SAM3-LiteText checkpoint (`--model tiny-random-litetext`): the concept
tab segments a phrase with the small text encoder, in a real browser."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import free_port, serve  # noqa: E402
from tab_flows import wait_table  # noqa: E402
from test_images import make_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lite_demo_url(tmp_path_factory):
    cache = tmp_path_factory.mktemp("sam3-cache-lite")
    env = {
        **os.environ,
        "SAM3_CACHE": str(cache),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    command = [sys.executable, str(ROOT / "apps" / "demo" / "app.py"), "--model", "tiny-random-litetext",
               "--port", str(port)]  # fmt: skip
    with serve(command, port, env, cache / "server.log") as (url, _):
        yield url


def test_concept_tab_with_litetext(page, lite_demo_url, tmp_path):
    image_path = tmp_path / "scene.png"
    make_image(160, 220, seed=2).save(image_path)
    page.goto(lite_demo_url)
    page.get_by_text("tiny-random-litetext").first.wait_for()  # the banner names the model
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-image input[type=file]").set_input_files(str(image_path))
    page.locator("#concept-status").get_by_text("press Segment").wait_for()
    page.locator("#concept-text textarea, #concept-text input").first.fill("red ball")
    box = page.locator("#concept-threshold input[type=number]")
    box.fill("0")  # random weights: keep every query
    box.press("Enter")
    page.locator("#concept-run").click()
    page.locator("#concept-status").get_by_text("instances found for 'red ball'").wait_for()
    assert wait_table(page, "#concept-table", "#concept-status", "instances?") > 0
