"""Concept segmentation in a real browser: upload, type a phrase, draw an exemplar box, run, select, download."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from coco_files import coco_masks, load_coco  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import click_at, wait_table  # noqa: E402
from test_images import make_image  # noqa: E402


def set_slider(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_text_prompt_boxes_and_downloads(page, demo_url, tmp_path):
    image_path = tmp_path / "scene.png"
    make_image(160, 220, seed=2).save(image_path)
    page.goto(demo_url)
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-image input[type=file]").set_input_files(str(image_path))
    page.locator("#concept-status").get_by_text("press Segment").wait_for()

    before = page.locator("#concept-image img").first.get_attribute("src")
    click_at(page, "#concept-image", 0.1, 0.1)  # two corners: one box
    page.locator("#concept-status").get_by_text("opposite corner").wait_for()
    # The picture is redrawn with the corner: a click while the new one loads selects nothing.
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old && i.complete; }",
        arg=["#concept-image img", before],
    )
    click_at(page, "#concept-image", 0.5, 0.6)
    page.locator("#concept-status").get_by_text("1 exemplar box(es)").wait_for()

    page.locator("#concept-text textarea, #concept-text input").first.fill("red ball")
    set_slider(page, "concept-threshold", 0)  # random weights: keep every query
    page.locator("#concept-run").click()
    page.locator("#concept-status").get_by_text("instances found for 'red ball'").wait_for()
    # Gradio's table is a virtual grid: rows are role=row (the header is one), cells role=gridcell.
    n_instances = wait_table(page, "#concept-table", "#concept-status", "instances?")
    assert n_instances > 0
    page.locator("#concept-table [role=gridcell]").nth(1).click()  # row 1, score column
    page.locator("#concept-status").get_by_text("Instance 1 highlighted").wait_for()
    screenshot(page, "concept_tab")

    with page.expect_download() as info:
        page.locator("#concept-download-rle").click()
    coco = load_coco(info.value.path())  # pycocotools reads it; masks, areas and boxes checked
    assert (coco.imgs[1]["height"], coco.imgs[1]["width"]) == (160, 220)
    assert coco.dataset["categories"] == [{"id": 1, "name": "red ball"}]
    assert len(coco.dataset["annotations"]) == n_instances
    # The table shows the file's boxes (the masks' own, inside the image), XYXY (redrawn by the
    # highlight: all its rows again first).
    expect(page.locator("#concept-table [role=row]")).to_have_count(n_instances + 1)
    cells = page.locator("#concept-table [role=gridcell]")
    first_row = [float(cells.nth(i).inner_text()) for i in range(2, 6)]
    x, y, w, h = coco.loadAnns([1])[0]["bbox"]
    assert first_row == pytest.approx([x, y, x + w, y + h], abs=0.051)
    with page.expect_download() as info:
        page.locator("#concept-download-png").click()
    index = np.array(Image.open(info.value.path()))
    assert index.shape == (160, 220) and index.max() <= n_instances
    masks = coco_masks(coco)
    for i, mask in enumerate(masks):  # later instances are drawn on top in the index PNG
        assert (index[mask & ~masks[i + 1 :].any(axis=0)] == i + 1).all()


def test_empty_prompt_is_explained(page, demo_url, tmp_path):
    image_path = tmp_path / "scene.png"
    make_image(80, 90, seed=3).save(image_path)
    page.goto(demo_url)
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-image input[type=file]").set_input_files(str(image_path))
    page.locator("#concept-status").get_by_text("press Segment").wait_for()
    page.locator("#concept-run").click()
    page.get_by_text("Type a concept such as").first.wait_for()


def test_a_phrase_that_finds_nothing_says_so(page, demo_url):
    page.goto(demo_url)
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-tab-examples img").first.click()  # the first example, as a new user would
    page.locator("#concept-status").get_by_text("press Segment").wait_for()
    page.locator("#concept-text textarea, #concept-text input").first.fill("yellow school bus")
    set_slider(page, "concept-threshold", 1)  # no score reaches 1: nothing is found
    page.locator("#concept-run").click()
    page.locator("#concept-status").get_by_text("Nothing found for 'yellow school bus'").wait_for()
    assert page.locator("#concept-table [role=row]").count() <= 2  # the header (and Gradio's empty row)
    assert page.get_by_text("Error").count() == 0
    with page.expect_download() as info:
        page.locator("#concept-download-rle").click()
    coco = load_coco(info.value.path())  # an empty result is a valid COCO file too
    assert coco.dataset["annotations"] == [] and (coco.imgs[1]["height"], coco.imgs[1]["width"]) == (360, 480)
    screenshot(page, "concept_tab_nothing_found")


def test_a_huge_image_is_refused_with_the_limit(page, demo_url, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # a few KB; 1.2 GB once decoded
    page.goto(demo_url)
    page.get_by_role("tab", name="Concept segmentation").click()
    page.locator("#concept-image input[type=file]").set_input_files(str(bomb))
    page.get_by_text(
        "is 20000x20000 (400,000,000 pixels); images up to 40,000,000 pixels are accepted"
    ).first.wait_for()
    assert page.get_by_text("Traceback").count() == 0
