"""The app: one `gr.Blocks` with a tab per task; each tab is its own module and talks only to the SDK."""

from __future__ import annotations

import gradio as gr

from .concept_tab import build_concept_tab
from .loading import ModelSlot
from .point_tab import build_point_tab
from .video_models import VideoModels
from .video_tab import build_video_tab

TITLE = "SAM 3 — segment and track anything"


def build_app(slot: ModelSlot, video_models: VideoModels | None = None) -> gr.Blocks:
    """The page for the loaded `slot`; `video_models`: the trackers the Video tracking tab offers
    (default: SAM 3's, and EdgeTAM from $SAM3_VIDEO_MODEL)."""
    # Gradio's copies of uploads and downloads older than an hour go, checked every hour.
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# {TITLE}")
        gr.Markdown(slot.banner(), elem_id="model-banner")
        with gr.Tabs():
            with gr.Tab("Concept segmentation", id="concept"):
                build_concept_tab(slot)
            with gr.Tab("Point prompting", id="points"):
                build_point_tab(slot)
            with gr.Tab("Video tracking", id="video"):
                build_video_tab(slot, video_models)

        def on_tab_closed(request: gr.Request) -> None:
            # Free the closed tab's state now (video session, images, downloads) rather than in an hour.
            app.state_holder.delete_state(request.session_hash)

        app.unload(on_tab_closed)
    return app
