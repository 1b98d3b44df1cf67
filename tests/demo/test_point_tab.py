"""Point prompting in a real browser: upload, click, see the overlay, pick a candidate, download."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from coco_files import coco_masks, load_coco  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import click_at  # noqa: E402
from test_images import make_image  # noqa: E402


def test_click_overlay_and_download(page, demo_url, tmp_path):
    image_path = tmp_path / "photo.png"
    make_image(180, 240, seed=4).save(image_path)
    page.goto(demo_url)
    page.get_by_text("Smoke-test mode").wait_for()
    page.get_by_role("tab", name="Point prompting").click()
    page.locator("#point-image input[type=file]").set_input_files(str(image_path))
    page.get_by_text("Click on the object.", exact=True).wait_for()
    before = page.locator("#point-image img").first.get_attribute("src")

    click_at(page, "#point-image", 0.4, 0.5)
    status = page.locator("#point-status")
    status.get_by_text("Mask 1 of 3").wait_for()
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
        arg=["#point-image img", before],
    )
    # Choose the second candidate: the status follows.
    page.locator("#point-candidates label").nth(1).click()
    status.get_by_text("Mask 2 of 3").wait_for()
    screenshot(page, "point_tab")

    with page.expect_download() as info:
        page.locator("#point-download-png").click()
    png = tmp_path / "mask.png"
    info.value.save_as(png)
    mask = np.array(Image.open(png))
    assert mask.shape == (180, 240) and set(np.unique(mask)) <= {0, 255}

    with page.expect_download() as info:
        page.locator("#point-download-rle").click()
    coco = load_coco(info.value.path())  # pycocotools reads it
    assert (coco.imgs[1]["height"], coco.imgs[1]["width"]) == (180, 240)
    np.testing.assert_array_equal(coco_masks(coco)[0], mask == 255)  # the PNG's mask

    # A negative click then undo returns to one point; clear empties the result.
    page.locator("#point-mode label", has_text="Negative point").click()
    click_at(page, "#point-image", 0.8, 0.2)
    status.get_by_text("Mask 1 of 1").wait_for()
    page.locator("#point-undo").click()
    status.get_by_text("Mask 1 of 3").wait_for()
    page.locator("#point-clear").click()
    status.get_by_text("Click on the object.", exact=True).wait_for()


def test_example_then_click(page, demo_url):
    page.goto(demo_url)
    page.get_by_role("tab", name="Point prompting").click()
    page.locator("#point-image").wait_for()
    expect(page.locator("#point-download-png")).to_be_disabled()
    page.locator("#point-image").locator("xpath=ancestor::div[contains(@class,'column')][1]").locator(
        ".gallery-item, [data-testid='examples'] button"
    ).first.click()
    page.get_by_text("Click on the object.", exact=True).wait_for()
    click_at(page, "#point-image", 0.3, 0.4)
    page.locator("#point-status").get_by_text("Mask 1 of 3").wait_for()
    expect(page.locator("#point-download-png")).to_be_enabled()
