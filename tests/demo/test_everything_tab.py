"""Segment everything in a real browser: an example image, the settings, run, the table, the
downloads read back with pycocotools and PIL; the masks are the SDK's `generate_masks` ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from coco_files import coco_masks, load_coco  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import set_slider, wait_table  # noqa: E402


def test_segment_everything_with_its_settings_and_downloads(page, demo_url, tmp_path, monkeypatch):
    page.goto(demo_url)
    page.get_by_role("tab", name="Segment everything").click()
    page.locator("#everything-tab-examples img").first.click()
    status = page.locator("#everything-status")
    status.get_by_text("press Segment everything").wait_for()
    expect(page.locator("#everything-download-coco")).to_be_disabled()
    set_slider(page, "everything-points", 4)  # 16 clicks: quick on the random checkpoint
    set_slider(page, "everything-iou", 0)  # random weights: keep what the filters would drop
    set_slider(page, "everything-stability", 0)
    page.locator("#everything-run").click()
    status.get_by_text("found.").wait_for()
    n = wait_table(page, "#everything-table", "#everything-status", "masks?")
    assert n > 0
    screenshot(page, "everything_tab")

    with page.expect_download() as info:
        page.locator("#everything-download-coco").click()
    coco = load_coco(info.value.path())  # masks, areas and boxes checked against pycocotools
    assert (coco.imgs[1]["height"], coco.imgs[1]["width"]) == (360, 480)
    assert coco.dataset["categories"] == [{"id": 1, "name": "object"}]
    anns = coco.dataset["annotations"]
    assert len(anns) == n and all("stability_score" in a and "point_coords" in a for a in anns)
    with page.expect_download() as info:
        page.locator("#everything-download-png").click()
    index = np.array(Image.open(info.value.path()))
    masks = coco_masks(coco)
    assert index.shape == (360, 480)
    for i, mask in enumerate(masks):  # later masks are drawn on top in the index PNG
        assert (index[mask & ~masks[i + 1 :].any(axis=0)] == i + 1).all()

    # The same image and settings through the SDK: the same masks (same code, same weights).
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))
    from sam3_demo import examples
    from sam3_sdk import Sam3
    from sam3_sdk.testing import tiny_random_checkpoint

    monkeypatch.setattr(examples, "EXAMPLES_DIR", tmp_path / "examples")  # drawn again, the same picture
    sam = Sam3.from_pretrained(tiny_random_checkpoint(tmp_path), device="cpu")
    want = sam.generate_masks(
        examples.example_images()[0], points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0
    )
    assert len(want) == n
    # Tolerance: another process's thread count may flip a pixel whose logit is ~0.
    assert all((g != w).mean() <= 1e-3 for g, w in zip(masks, want.masks))


def test_nothing_passing_the_filters_says_so(page, demo_url):
    page.goto(demo_url)
    page.get_by_role("tab", name="Segment everything").click()
    page.locator("#everything-tab-examples img").first.click()
    page.locator("#everything-status").get_by_text("press Segment everything").wait_for()
    set_slider(page, "everything-points", 2)
    set_slider(page, "everything-iou", 1)  # no predicted IoU reaches 1
    page.locator("#everything-run").click()
    page.locator("#everything-status").get_by_text("No mask passed the filters").wait_for()
    with page.expect_download() as info:
        page.locator("#everything-download-coco").click()
    assert load_coco(info.value.path()).dataset["annotations"] == []  # still a valid COCO file
