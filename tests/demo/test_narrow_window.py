"""The demo at 400 px wide, in a real browser: every tab is in sight (none hidden in a "More tabs"
menu) and opens; the results table scrolls sideways to its last column; it is read-only and does
not look editable (no text cursor, no editor on a double click)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_artifacts import screenshot  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from tab_flows import set_slider, wait_table  # noqa: E402

VIEW = "#concept-table .virtual-table-viewport"  # the table's scrolling part
TABS = {
    "Concept segmentation": "#concept-image",
    "Point prompting": "#point-image",
    "Video tracking": "#video-upload",
}


def test_every_tab_and_the_table_at_400_px(browser, demo_url):
    context = browser.new_context(viewport={"width": 400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(demo_url)
        page.get_by_text("Smoke-test mode").wait_for()
        # Gradio registers the tabs a tick after the page shows, so wait for each to be in sight
        # (a tab moved into a "More tabs" menu never is, and the wait times out).
        for name in TABS:
            page.get_by_role("tab", name=name).wait_for(state="visible", timeout=30_000)
        assert page.get_by_role("button", name="More tabs").count() == 0
        for name, content in TABS.items():
            tab = page.get_by_role("tab", name=name)
            box = tab.bounding_box()
            assert 0 <= box["x"] and box["x"] + box["width"] <= 400, (name, box)
            tab.click()
            page.locator(content).wait_for()
        screenshot(page, "narrow_video_tab")

        page.get_by_role("tab", name="Concept segmentation").click()
        page.locator("#concept-tab-examples img").first.click()
        page.locator("#concept-status").get_by_text("press Segment").wait_for()
        page.locator("#concept-text textarea, #concept-text input").first.fill("ball")
        set_slider(page, "concept-threshold", 0)
        page.locator("#concept-run").click()
        page.locator("#concept-status").get_by_text("found for 'ball'").wait_for()
        wait_table(page, "#concept-table", "#concept-status", "instances?")

        # The table is wider than the window: it scrolls, and its last column comes into sight.
        table = page.locator("#concept-table")
        table.scroll_into_view_if_needed()
        viewport = page.locator("#concept-table .virtual-table-viewport").first
        page.wait_for_function(  # the columns get their widths as the rows are drawn
            f"() => {{ const e = document.querySelector('{VIEW}'); return !!e && e.scrollWidth > e.clientWidth; }}"
        )
        viewport.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
        # Scrolled: the last column's header lies inside the table's view (1 px of rounding either side).
        page.wait_for_function(
            f"""() => {{ const view = document.querySelector('{VIEW}');
            const th = [...document.querySelectorAll('#concept-table th')].find(e => e.textContent.includes('area (px)'));
            if (!view || !th) return false;
            const a = th.getBoundingClientRect(), b = view.getBoundingClientRect();
            return a.width > 0 && a.left >= b.left - 1 && a.right <= b.right + 1; }}"""
        )
        screenshot(page, "narrow_concept_table_scrolled")

        # Read-only: a pointer, not a text cursor, and no editor on a double click.
        viewport.evaluate("e => { e.scrollLeft = 0; }")
        cell = page.locator("#concept-table [role=gridcell]").nth(1)  # row 1, score column
        expect(cell).to_have_css("cursor", "pointer")
        cell.dblclick()
        # The server's answer to the click: the page has handled the double click by then (Gradio
        # opens its cell editor at once, in the page), so an editor would be there.
        page.locator("#concept-status").get_by_text("highlighted").wait_for()
        assert page.locator("#concept-table td input, #concept-table td textarea").count() == 0
    finally:
        context.close()
