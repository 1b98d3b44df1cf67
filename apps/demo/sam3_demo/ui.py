"""The app: one `gr.Blocks` with a tab per task; each tab is its own module and talks only to the SDK."""

from __future__ import annotations

import gradio as gr
from sam3_core.allocator import release_memory

from .api import build_api, hide_ui_events
from .concept_tab import build_concept_tab
from .everything_tab import build_everything_tab
from .gpu import MODEL_CALL, logged
from .loading import ModelSlot
from .point_tab import build_point_tab
from .uploads import check_video
from .video_models import VideoModels
from .video_tab import LIMITS, MAX_FRAMES, MAX_SIDE, build_video_tab

TITLE = "SAM 3 — segment and track anything"
MODEL_QUEUE = "model"

# Passed to `launch(css=...)`. Tables scroll sideways in a narrow window rather than cut columns off;
# the results tables (read-only) look like lists one clicks, not cells one edits.
CSS = """
.sam3-results .table-wrap, .sam3-results .table-container { overflow-x: auto !important; }
.sam3-results table { min-width: max-content; }
.sam3-results td, .sam3-results [role=gridcell] { cursor: pointer; }
.sam3-results td:focus, .sam3-results td:focus-within, .sam3-results [role=gridcell]:focus { outline: none; }
.sam3-results input, .sam3-results textarea { pointer-events: none; }
"""


def build_app(
    slot: ModelSlot, video_models: VideoModels | None = None, max_concurrency: int = 1
) -> gr.Blocks:
    """The page for the loaded `slot`; `video_models`: the trackers the Video tracking tab offers
    (default: SAM 3's, and EdgeTAM from $SAM3_VIDEO_MODEL); at most `max_concurrency` model calls
    (of any tab) run at once."""
    video_models = video_models or VideoModels(slot)  # one set of trackers for the tab and the API
    # Gradio's copies of uploads and downloads older than an hour go, checked every hour.
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# {TITLE}")
        gr.Markdown(slot.banner(), elem_id="model-banner")
        with gr.Tabs(overflow_behavior="wrap"):  # at 400 px every tab stays in sight
            with gr.Tab("Concept segmentation", id="concept"):
                build_concept_tab(slot)
            with gr.Tab("Point prompting", id="points"):
                build_point_tab(slot)
            with gr.Tab("Video tracking", id="video"):
                build_video_tab(slot, video_models)
            with gr.Tab("Segment everything", id="everything"):
                build_everything_tab(slot)
        build_api(slot, video_models, lambda path: check_video(path, MAX_FRAMES, MAX_SIDE, LIMITS))

        def on_tab_closed(request: gr.Request) -> None:
            # Free the closed tab's state now (video session, images, downloads) rather than in an hour.
            app.state_holder.delete_state(request.session_hash)
            release_memory()

        app.unload(on_tab_closed)
    hide_ui_events(app)  # the API lists build_api's endpoints only
    bound_model_calls(app, max_concurrency)
    return app


def _calls_model(fn) -> bool:
    """Marked by `on_gpu`, or a closure over such a handler (the example galleries' lambdas)."""
    if fn is None:
        return False
    if getattr(fn, MODEL_CALL, False):
        return True
    cells = getattr(fn, "__closure__", None) or ()
    return any(getattr(_cell_value(cell), MODEL_CALL, False) for cell in cells)


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def bound_model_calls(app: gr.Blocks, limit: int) -> int:
    """Put every model-calling handler (marked by `on_gpu`) in one queue group of `limit` slots, each
    call logged with how many run; returns how many handlers there are. Gradio bounds each event
    listener on its own by default, which would let a propagation, a concept search and clicks all
    use the model at once."""
    count = 0
    for block_fn in app.fns.values():
        if _calls_model(block_fn.fn):
            block_fn.concurrency_id, block_fn.concurrency_limit = MODEL_QUEUE, limit
            block_fn.fn = logged(block_fn.fn)
            count += 1
    return count
