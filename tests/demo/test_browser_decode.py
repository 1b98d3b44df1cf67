"""Clicks decoded in the browser (Point prompting tab): after the image's embedding arrived, a click,
a negative click, a box, an undo and the PNG download each run with no request to the server, and each mask
equals the SDK's for the same prompts except at pixels whose logit is within 1e-3 of the threshold.

Why 1e-3: the page runs the exported graph (onnxruntime-web, WebAssembly) on float32 embeddings and
upsamples in float32 JavaScript; the SDK runs PyTorch. Both compute the same float32 arithmetic in
different orders (about 1e-5 apart on the logits), so only pixels whose logit is that close to 0 can
land on the other side of the threshold; 1e-3 leaves a margin of 100x."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import click_at  # noqa: E402
from test_images import make_image  # noqa: E402

TOLERANCE = 1e-3  # |logit| under which the page and the SDK may disagree (see the module docstring)


@pytest.fixture(scope="module", autouse=True)
def vendored():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))
    from sam3_demo.browser_decode import vendored

    if not vendored():  # the server would serve pages that cannot decode: say why at once
        pytest.fail("onnxruntime-web is not vendored: run `make install` (scripts/vendor_onnxruntime_web.py)")


@pytest.fixture(scope="module")
def sam():
    from sam3_sdk import Sam3
    from sam3_sdk.testing import resolve_name

    torch.set_num_threads(1)
    return Sam3.from_pretrained(resolve_name("tiny-random"))  # the server's weights (seeded)


def _sdk_logits(sam, rgb: np.ndarray, prompts: dict) -> tuple[np.ndarray, np.ndarray]:
    """The SDK's chosen-candidate order: (M, H, W) logits at the image size, best first, and scores."""
    from sam3_core.processing.image import post_process_masks

    result = sam.segment_object(
        rgb, points=prompts["points"] or None, labels=prompts["labels"] or None, box=prompts["box"]
    )
    logits = torch.from_numpy(result.low_res_logits)[None, None]  # (1, 1, M, h, w)
    up = post_process_masks(logits, [rgb.shape[:2]], binarize=False)[0][0].numpy()
    np.testing.assert_array_equal(up > 0, result.masks)  # the SDK's own masks, from these logits
    return up, result.scores


def _page_result(page, seq: int) -> dict:
    page.wait_for_function("(n) => window.sam3Browser.seq >= n", arg=seq)
    last = page.evaluate(
        "() => { const l = window.sam3Browser.last; return {...l, mask: Array.from(l.mask || []),"
        " logits: Array.from(l.logits || [])}; }"
    )
    h, w = last["h"], last["w"]
    last["mask"] = np.array(last["mask"], dtype=bool).reshape(h, w)
    last["logits"] = np.array(last["logits"], dtype=np.float32).reshape(h, w)
    return last


def _check_same(page_result: dict, sdk: tuple[np.ndarray, np.ndarray], what: str) -> None:
    sdk_logits, sdk_scores = sdk
    chosen = sdk_logits[page_result["choice"]]
    differ = page_result["mask"] != (chosen > 0)
    assert np.all(np.abs(chosen[differ]) < TOLERANCE), (
        f"{what}: {int(differ.sum())} pixels differ from the SDK's mask, at logits up to "
        f"{np.abs(chosen[differ]).max():.2e} (tolerance {TOLERANCE})"
    )
    np.testing.assert_allclose(page_result["scores"], sdk_scores, atol=1e-4, err_msg=what)
    assert (page_result["logits"] > 0).sum() > 0 or (chosen > 0).sum() == 0, what


def test_clicks_decode_in_the_browser_without_server_calls(page, demo_url, sam, tmp_path):
    image_path = tmp_path / "photo.png"
    make_image(180, 240, seed=4).save(image_path)
    rgb = np.array(Image.open(image_path).convert("RGB"))
    server = demo_url.rstrip("/")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}") if r.url.startswith(server) else None)

    page.goto(demo_url)
    page.get_by_role("tab", name="Point prompting").click()
    page.locator("#point-browser-decode input[type=checkbox]").check()  # the tests' server starts with it off
    page.locator("#point-image input[type=file]").set_input_files(str(image_path))
    page.wait_for_function("() => window.sam3Browser.ready === true", timeout=180_000)
    info = page.evaluate("() => window.sam3Browser.state.info")
    stats = page.evaluate("() => window.sam3Browser.stats")
    assert stats["bytes"] == [info["embedding"]["bytes"]]
    # float32 maps, batch 1: the bytes are the shapes' product
    assert info["embedding"]["bytes"] == 4 * sum(int(np.prod(s)) for s in info["embedding"]["shapes"])
    # Ready comes after the upload's last request (the embedding's) has finished: the requests from
    # here on are the prompts' own.
    before = len(requests)

    click_at(page, "#point-image", 0.4, 0.5)  # a positive click: three candidates
    first = _page_result(page, 1)
    assert first["prompts"]["labels"] == [1] and len(first["scores"]) == 3
    _check_same(first, _sdk_logits(sam, rgb, first["prompts"]), "one positive click")
    page.locator("#point-browser-panel").get_by_text("Mask 1 of 3").wait_for()  # the page's status line
    expect(page.locator("#point-status")).to_be_hidden()  # the server path's, which knows nothing of it

    page.locator("#point-mode label", has_text="Negative point").click()
    click_at(page, "#point-image", 0.8, 0.2)  # two points: one mask
    second = _page_result(page, 2)
    assert second["prompts"]["labels"] == [1, 0] and len(second["scores"]) == 1
    _check_same(second, _sdk_logits(sam, rgb, second["prompts"]), "a positive and a negative click")

    page.locator("#point-mode label", has_text="Box (2 clicks)").click()
    click_at(page, "#point-image", 0.2, 0.2)
    page.wait_for_function("() => window.sam3Browser.seq >= 3")  # the first corner shows
    click_at(page, "#point-image", 0.7, 0.8)
    boxed = _page_result(page, 4)
    assert boxed["prompts"]["box"] is not None
    _check_same(boxed, _sdk_logits(sam, rgb, boxed["prompts"]), "two points and a box")
    screenshot(page, "browser_decode")

    page.locator("#point-undo").click()  # the box goes: the two points' mask again
    undone = _page_result(page, 5)
    assert undone["prompts"] == second["prompts"]
    np.testing.assert_array_equal(undone["mask"], second["mask"])

    with page.expect_download() as download:  # the PNG is made in the page too
        page.locator("#point-browser-panel .sam3-browser-download").click()
    png = np.array(Image.open(download.value.path()).convert("L"))
    np.testing.assert_array_equal(png, np.where(undone["mask"], 255, 0))

    page.wait_for_timeout(500)  # not a synchronization: the time a stray request has to show up
    assert requests[before:] == [], f"the clicks reached the server: {requests[before:]}"
    ms = page.evaluate("() => window.sam3Browser.stats.decodeMs")
    print(
        f"\nbrowser decode ms per prompt: {[round(m, 1) for m in ms]}; bytes per image: {stats['bytes'][0]}"
    )


def test_server_path_when_onnxruntime_web_cannot_load(page, demo_url, tmp_path):
    """onnxruntime-web missing (its script refused): the page says so and the server decodes."""
    image_path = tmp_path / "photo.png"
    make_image(120, 160, seed=5).save(image_path)
    page.route("**/ort.wasm.min.js", lambda route: route.abort())
    page.goto(demo_url)
    page.get_by_role("tab", name="Point prompting").click()
    page.locator("#point-browser-decode input[type=checkbox]").check()
    page.locator("#point-image input[type=file]").set_input_files(str(image_path))
    page.locator("#point-browser-panel").get_by_text("Clicks go to the server").wait_for()
    click_at(page, "#point-image", 0.5, 0.5)
    page.locator("#point-status").get_by_text("Mask 1 of 3").wait_for()  # the server's answer
    page.locator("#point-candidates label").nth(2).wait_for()  # the server path's candidates
    assert page.evaluate("() => window.sam3Browser.seq") == 0
