"""The Concept segmentation tab: a noun phrase and/or exemplar boxes find every matching instance."""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import ImageDraw
from sam3_sdk.results import Instances, masks_to_boxes

from .events import bind, click_xy, refusal, table_row
from .examples import example_gallery
from .gpu import CONCEPT_S, on_gpu
from .loading import ModelSlot, log
from .uploads import IMAGE_LIMITS, export_dir, free_exports, take_image_upload

POSITIVE_BOX, NEGATIVE_BOX = "Positive example", "Negative example"
COLUMNS = ["#", "score", "x1", "y1", "x2", "y2", "area (px)"]


def empty_state() -> dict[str, Any]:
    """Per-browser-session state of the tab."""
    return {"image": None, "boxes": [], "labels": [], "corner": None, "result": None, "selected": None,
            "folder": None}  # fmt: skip


def _picture(st: dict):
    if st["image"] is None:
        return None
    result: Instances | None = st["result"]
    canvas = result.overlay(st["image"], highlight=st["selected"]) if result is not None else None
    if canvas is None:
        from PIL import Image

        canvas = Image.fromarray(st["image"])
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(min(st["image"].shape[:2]) / 200))
    for box, label in zip(st["boxes"], st["labels"]):
        draw.rectangle(box, outline=(40, 220, 60) if label else (230, 40, 40), width=width)
    if st["corner"] is not None:
        x, y = st["corner"]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), outline=(40, 120, 255), width=2)
    return canvas


def found_message(n: int, phrase: str | None, threshold: float) -> str:
    """The status line after a run; zero instances is an answer, not a failure."""
    asked = f" for {phrase!r}" if phrase else ""
    if n == 0:
        return (
            f"Nothing found{asked} scoring above {threshold:.2f}. "
            "Lower the instance score threshold, or try another phrase or exemplar box."
        )
    return f"{n} instance{'s' if n != 1 else ''} found{asked}."


def _table(result: Instances | None) -> list[list]:
    if result is None:
        return []
    # The masks' own boxes, as in the COCO download (the detector's may reach past the image).
    return [
        [i + 1, round(float(s), 3), *(round(float(v), 1) for v in b), int(a)]
        for i, (s, b, a) in enumerate(zip(result.scores, masks_to_boxes(result.masks), result.areas))
    ]


def _downloads(st: dict):
    result: Instances | None = st["result"]
    # An empty result still downloads: valid COCO JSON with no annotations and an all-zero index PNG.
    if result is None:
        return gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(
            value=None, interactive=False
        )
    folder = export_dir(st)
    rle = result.save_coco_json(folder / "instances_coco.json")
    png = result.save_png(folder / "instances_index.png")
    return gr.DownloadButton(value=str(rle), interactive=True), gr.DownloadButton(
        value=str(png), interactive=True
    )


def build_concept_tab(slot: ModelSlot) -> None:
    state = gr.State(empty_state(), delete_callback=free_exports)
    with gr.Row():
        with gr.Column(scale=3):
            image = gr.Image(
                label="Image (click two corners to draw an exemplar box)", type="filepath", image_mode=None,
                sources=["upload", "clipboard"], elem_id="concept-image",
            )  # fmt: skip
        with gr.Column(scale=2):
            text = gr.Textbox(label="Concept (a short noun phrase)", placeholder="yellow school bus",
                              elem_id="concept-text")  # fmt: skip
            box_kind = gr.Radio([POSITIVE_BOX, NEGATIVE_BOX], value=POSITIVE_BOX, label="Next exemplar box is a",
                                elem_id="concept-box-kind")  # fmt: skip
            clear_boxes = gr.Button("Clear boxes", elem_id="concept-clear-boxes")
            threshold = gr.Slider(0, 1, value=0.5, step=0.01, label="Instance score threshold",
                                  elem_id="concept-threshold")  # fmt: skip
            mask_threshold = gr.Slider(0, 1, value=0.5, step=0.01, label="Mask threshold",
                                       elem_id="concept-mask-threshold")  # fmt: skip
            run = gr.Button("Segment", variant="primary", elem_id="concept-run")
            status = gr.Markdown(f"Upload an image and describe what to find. {IMAGE_LIMITS}",
                                 elem_id="concept-status")  # fmt: skip
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, label="Instances (click a row to highlight)",
                         elem_id="concept-table", elem_classes=["sam3-results"])  # fmt: skip
    with gr.Row():
        rle_file = gr.DownloadButton(
            "All masks (COCO JSON)", interactive=False, elem_id="concept-download-rle"
        )
        png_file = gr.DownloadButton(
            "All masks (index PNG)", interactive=False, elem_id="concept-download-png"
        )

    outputs = [state, image, table, status, rle_file, png_file]

    def render(st, message):
        return (st, _picture(st), _table(st["result"]), message, *_downloads(st))

    def on_upload(picture, st):
        new, refused = take_image_upload(picture, st, empty_state)
        if refused:  # the image, boxes, results and downloads before it stay
            return refusal(refused, len(outputs), outputs.index(status), {1: _picture(st or empty_state())})
        if new["image"] is None:
            return render(new, "Upload an image.")
        return render(new, "Type a concept (and/or draw exemplar boxes), then press Segment.")

    def on_click(st, kind, evt: gr.EventData):
        if st["image"] is None:
            raise gr.Error("Upload an image first.")
        x, y = click_xy(evt, st["image"].shape)
        if st["corner"] is None:
            st["corner"] = (x, y)
            hint = "Click the opposite corner of the box (the blue circle marks the first)."
            if st["result"] is not None:
                hint += " The masks stay until you press Segment again."
            return render(st, hint)
        (x0, y0), st["corner"] = st["corner"], None
        st["boxes"].append((min(x0, x), min(y0, y), max(x0, x) + 1, max(y0, y) + 1))
        st["labels"].append(1 if kind == POSITIVE_BOX else 0)
        return render(st, f"{len(st['boxes'])} exemplar box(es). Press Segment.")

    def on_clear_boxes(st):
        st.update(boxes=[], labels=[], corner=None)
        return render(st, "Boxes cleared.")

    @on_gpu(CONCEPT_S)
    def on_run(st, phrase, thr, mthr, progress=gr.Progress()):
        if slot.sam is None:
            raise gr.Error(f"No model is loaded: {slot.error}")
        if st["image"] is None:
            raise gr.Error("Upload an image first.")
        phrase = (phrase or "").strip() or None
        if phrase is None and not st["boxes"]:
            raise gr.Error("Type a concept such as 'yellow school bus', or draw an exemplar box.")
        progress(0.1, desc="Segmenting")
        try:
            result = slot.sam.segment_concept(
                st["image"], text=phrase, boxes=st["boxes"] or None, box_labels=st["labels"] or None,
                threshold=float(thr), mask_threshold=float(mthr),
            )  # fmt: skip
        except (ValueError, TypeError) as e:
            raise gr.Error(str(e)) from None
        except Exception as e:  # anything else: say it in a sentence, keep the details in the log
            log.exception("concept segmentation failed")
            raise gr.Error(f"Segmentation failed: {e}") from None
        st.update(result=result, selected=None)
        return render(st, found_message(len(result), phrase, float(thr)))

    def on_select_row(st, evt: gr.EventData):
        if st["result"] is None or not len(st["result"]):
            raise gr.Error("There is no instance to highlight yet: press Segment first.")
        row = table_row(evt, len(st["result"]))
        st["selected"] = None if st["selected"] == row else int(row)
        score = st["result"].scores[row]
        return render(st, f"Instance {row + 1} highlighted (score {score:.2f}).")

    bind(image.upload, on_upload, [image, state], outputs, status, preprocess=False)
    bind(image.select, on_click, [state, box_kind], outputs, status)
    bind(clear_boxes.click, on_clear_boxes, [state], outputs, status)
    bind(run.click, on_run, [state, text, threshold, mask_threshold], outputs, status)
    bind(text.submit, on_run, [state, text, threshold, mask_threshold], outputs, status)
    bind(table.select, on_select_row, [state], outputs, status)
    example_gallery(image, outputs, lambda p: on_upload(p, None), elem_id="concept-tab-examples")


__all__ = ["build_concept_tab"]
