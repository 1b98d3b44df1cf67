"""The Point prompting tab: click positive / negative points (and an optional box) on an image,
see the mask after each click, pick among candidates, download the mask."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw
from sam3_sdk.results import ObjectMasks

from . import browser_decode
from .events import bind, click_xy, refusal
from .examples import example_gallery
from .gpu import CLICK_S, FEATURES_S, on_gpu
from .loading import ModelSlot, log
from .uploads import IMAGE_LIMITS, export_dir, free_exports, read_image, uploaded_path

POSITIVE, NEGATIVE, BOX = "Positive point", "Negative point", "Box (2 clicks)"


def empty_state() -> dict[str, Any]:
    """Per-browser-session state of the tab (plain data; the model lives in the shared slot)."""
    return {"image": None, "history": [], "corner": None, "result": None, "choice": 0, "folder": None}


def _prompts(history: list[dict]) -> tuple[list, list, tuple | None]:
    points, labels, box = [], [], None
    for action in history:
        if action["kind"] == "point":
            points.append(action["xy"])
            labels.append(action["label"])
        else:
            box = action["box"]
    return points, labels, box


def _draw(
    image: np.ndarray, result: ObjectMasks | None, choice: int, history: list[dict], corner
) -> Image.Image:
    canvas = result.overlay(image, highlight=choice) if result is not None else Image.fromarray(image)
    if result is not None and len(result) > 1:  # show only the chosen candidate
        canvas = ObjectMasks(
            masks=result.masks[choice : choice + 1], scores=result.scores[choice : choice + 1],
            boxes=result.boxes[choice : choice + 1],
        ).overlay(image)  # fmt: skip
    draw = ImageDraw.Draw(canvas)
    radius = max(3, round(min(image.shape[:2]) / 80))
    points, labels, box = _prompts(history)
    for (x, y), label in zip(points, labels):
        color = (40, 220, 60) if label == 1 else (230, 40, 40)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle(box, outline=(40, 120, 255), width=max(2, radius // 2))
    if corner is not None:
        x, y = corner
        draw.rectangle((x - radius, y - radius, x + radius, y + radius), outline=(40, 120, 255), width=2)
    return canvas


def _export(st: dict, result: ObjectMasks, choice: int) -> tuple[str, str]:
    folder = export_dir(st)
    png = result.save_png(folder / "mask.png", index=choice)
    chosen = ObjectMasks(
        masks=result.masks[choice : choice + 1], scores=result.scores[choice : choice + 1],
        boxes=result.boxes[choice : choice + 1], prompt=result.prompt,
    )  # fmt: skip
    rle = chosen.save_coco_json(folder / "mask_coco.json")
    return str(png), str(rle)


def _candidates(result: ObjectMasks | None) -> list[str]:
    if result is None:
        return []
    return [f"Mask {i + 1} (predicted IoU {s:.2f})" for i, s in enumerate(result.scores)]


def build_point_tab(slot: ModelSlot) -> None:
    """Add the tab's components and events to the enclosing `gr.Blocks`."""
    state = gr.State(empty_state(), delete_callback=free_exports)
    with gr.Row():
        with gr.Column(scale=3):
            image = gr.Image(
                label="Image: upload, then click on it", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                elem_id="point-image", interactive=True,
            )  # fmt: skip
        with gr.Column(scale=2):
            mode = gr.Radio(
                [POSITIVE, NEGATIVE, BOX], value=POSITIVE, label="A click adds", elem_id="point-mode"
            )
            candidates = gr.Radio([], label="Candidate masks", elem_id="point-candidates", interactive=True)
            status = gr.Markdown("Upload an image, then click on the object.", elem_id="point-status")
            with gr.Row():
                undo = gr.Button("Undo", elem_id="point-undo")
                clear = gr.Button("Clear", elem_id="point-clear")
            with gr.Row():
                png_file = gr.DownloadButton("Mask (PNG)", interactive=False, elem_id="point-download-png")
                rle_file = gr.DownloadButton(
                    "Mask (COCO JSON)", interactive=False, elem_id="point-download-rle"
                )

    def require_model():
        if slot.sam is None:
            raise gr.Error(f"No model is loaded: {slot.error}")
        return slot.sam

    def render(st: dict):
        """All outputs from the state: image, candidates, status, downloads."""
        result, choice = st["result"], st["choice"]
        picture = _draw(st["image"], result, choice, st["history"], st["corner"])
        labels = _candidates(result)
        if result is None:
            files = (
                gr.DownloadButton(value=None, interactive=False),
                gr.DownloadButton(value=None, interactive=False),
            )
            n = len(st["history"])
            text = (
                "Click on the object."
                if n == 0 and st["corner"] is None
                else "Click the opposite box corner."
            )
            if st["corner"] is None and n:
                text = "Add a point or finish the box."
        else:
            png, rle = _export(st, result, choice)
            files = (
                gr.DownloadButton(value=png, interactive=True),
                gr.DownloadButton(value=rle, interactive=True),
            )
            area = int(result.masks[choice].sum())
            text = f"Mask {choice + 1} of {len(result)}: {area} pixels, predicted IoU {result.scores[choice]:.2f}."
            if area == 0:
                text = (
                    f"Mask {choice + 1} of {len(result)} is empty: nothing was segmented there. "
                    "Pick another candidate, or click inside the object."
                )
            if st["corner"] is not None:  # a box is being drawn over the mask
                text = f"Box started (the blue square): click its opposite corner. {text}"
        radio = gr.Radio(choices=labels, value=labels[choice] if labels else None)
        return st, picture, radio, text, *files

    def run(st: dict) -> dict:
        points, labels, box = _prompts(st["history"])
        st["choice"] = 0
        if not points and box is None:
            st["result"] = None
            return st
        try:
            st["result"] = require_model().segment_object(
                st["image"], points=points or None, labels=labels or None, box=box
            )
        except (ValueError, TypeError) as e:
            raise gr.Error(str(e)) from None
        except Exception as e:  # anything else: say it in a sentence, keep the details in the log
            log.exception("point segmentation failed")
            raise gr.Error(f"Segmentation failed: {e}") from None
        return st

    @on_gpu(FEATURES_S)
    def on_upload(picture, st):
        picture = uploaded_path(picture)
        if picture is None:
            free_exports(st)
            return (
                empty_state(),
                None,
                gr.Radio(choices=[], value=None),
                f"Upload an image. {IMAGE_LIMITS}",
                *_no_files(),
            )
        try:
            rgb = read_image(picture)
        except gr.Error as e:  # the image, clicks, mask and downloads before it stay
            log.info("upload refused: %s", e.message)
            shown = None if not st or st["image"] is None else render(st)[1]
            return refusal(e.message, len(outputs), outputs.index(status), {1: shown})
        free_exports(st)
        st = empty_state()
        st["image"] = rgb
        if slot.sam is None:  # the picture shows; the status says why nothing can be segmented
            return (*render(st)[:3], f"No model is loaded: {slot.error}", *_no_files())
        slot.sam.features(st["image"])  # warm the cache: later clicks only decode
        return render(st)

    @on_gpu(CLICK_S)
    def on_click(st, click_mode, evt: gr.EventData):
        if st["image"] is None:
            raise gr.Error("Upload an image first.")
        x, y = click_xy(evt, st["image"].shape)
        if click_mode == BOX:
            if st["corner"] is None:
                st["corner"] = (x, y)
                return render(st)
            corner, st["corner"] = st["corner"], None
            x0, y0 = corner
            box = (min(x0, x), min(y0, y), max(x0, x) + 1, max(y0, y) + 1)
            st["history"].append({"kind": "box", "box": box})
        else:
            corner = None
            st["history"].append({"kind": "point", "xy": (x, y), "label": 1 if click_mode == POSITIVE else 0})
        before = {"corner": corner, "result": st["result"], "choice": st["choice"]}
        try:
            return render(run(st))
        except gr.Error:  # the click is refused: the prompts and mask before it stay
            st["history"].pop()
            st.update(before)
            raise

    def on_choose(st, label):
        labels = _candidates(st["result"])
        if label in labels:
            st["choice"] = labels.index(label)
        return render(st)

    @on_gpu(CLICK_S)
    def on_undo(st):
        if st["image"] is None:
            return (
                render(st) if st["image"] is not None else (st, None, gr.Radio(choices=[]), "", *_no_files())
            )
        before = {"history": list(st["history"]), "corner": st["corner"], "result": st["result"],
                  "choice": st["choice"]}  # fmt: skip
        if st["corner"] is not None:
            st["corner"] = None
        elif st["history"]:
            st["history"].pop()
        try:
            return render(run(st))
        except gr.Error:  # refused: the prompts and mask before it stay
            st.update(before)
            raise

    def on_clear(st):
        if st["image"] is None:
            return st, None, gr.Radio(choices=[]), "", *_no_files()
        st.update(history=[], corner=None, result=None, choice=0)
        return render(st)

    outputs = [state, image, candidates, status, png_file, rle_file]
    bind(image.upload, on_upload, [image, state], outputs, status, preprocess=False)
    with image.parent:  # examples below the image; a click on one loads it like an upload
        example_gallery(image, outputs, lambda p: on_upload(p, None), elem_id="point-tab-examples")
        # Below the examples: the right column keeps its height, so the picture never moves.
        browser_controls = browser_decode.build_controls()
    bind(image.select, on_click, [state, mode], outputs, status)
    bind(candidates.input, on_choose, [state, candidates], outputs, status)
    bind(undo.click, on_undo, [state], outputs, status)
    bind(clear.click, on_clear, [state], outputs, status)
    browser_decode.bind_embedding(
        slot, image, browser_controls, state, [candidates, status, png_file, rle_file]
    )


def _no_files():
    return gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(value=None, interactive=False)
