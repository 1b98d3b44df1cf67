"""The Segment everything tab: SAM 3's automatic masks (a grid of clicks through the tracker's decoder,
filtered by predicted IoU and stability, then box NMS; `Sam3.generate_masks`), with its settings and
the downloads of the other image tabs (COCO JSON, index PNG)."""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image
from sam3_sdk.results import Instances, masks_to_boxes

from .events import bind, refusal
from .examples import example_gallery
from .gpu import CONCEPT_S, on_gpu
from .loading import ModelSlot, log
from .uploads import IMAGE_LIMITS, export_dir, free_exports, take_image_upload

COLUMNS = ["#", "predicted IoU", "stability", "x1", "y1", "x2", "y2", "area (px)"]
# The settings' defaults and ranges. 32 points per side is SAM's default; 16 keeps a CPU run under a
# minute on the full model (256 clicks), and 64 (4096 clicks) is the most that is worth waiting for.
POINTS_PER_SIDE, MAX_POINTS_PER_SIDE = 16, 64
PRED_IOU, STABILITY, BOX_NMS = 0.88, 0.95, 0.7


def empty_state() -> dict[str, Any]:
    """Per-browser-session state of the tab: the image, its masks and the downloads' folder."""
    return {"image": None, "result": None, "folder": None}


def found_message(result: Instances) -> str:
    n = len(result)
    if n == 0:
        return (
            "No mask passed the filters. Lower the predicted IoU or stability threshold, "
            "or use more points per side."
        )
    return f"{n} mask{'s' if n != 1 else ''} found."


def _table(result: Instances | None) -> list[list]:
    if result is None:
        return []
    stability = result.extra.get("stability_score", [float("nan")] * len(result))
    return [
        [i + 1, round(float(s), 3), round(float(st), 3), *(round(float(v), 1) for v in b), int(a)]
        for i, (s, st, b, a) in enumerate(
            zip(result.scores, stability, masks_to_boxes(result.masks), result.areas)
        )
    ]


def _downloads(st: dict):
    result: Instances | None = st["result"]
    if result is None:
        return tuple(gr.DownloadButton(value=None, interactive=False) for _ in range(2))
    folder = export_dir(st)
    coco = result.save_coco_json(folder / "everything_coco.json")
    png = result.save_png(folder / "everything_index.png")
    return gr.DownloadButton(value=str(coco), interactive=True), gr.DownloadButton(
        value=str(png), interactive=True
    )


def segment_everything(
    slot: ModelSlot, image, points_per_side, pred_iou, stability, box_nms, min_area
) -> Instances:
    """`Sam3.generate_masks` with the tab's settings; a refused value or a failure is a gr.Error
    with a sentence (shared by the tab and the `/generate_masks` API endpoint)."""
    if slot.sam is None:
        raise gr.Error(f"No model is loaded: {slot.error}")
    try:
        return slot.sam.generate_masks(
            image, points_per_side=int(points_per_side), pred_iou_thresh=float(pred_iou),
            stability_score_thresh=float(stability), box_nms_thresh=float(box_nms),
            min_mask_region_area=int(min_area),
        )  # fmt: skip
    except (ValueError, TypeError) as e:
        raise gr.Error(str(e)) from None
    except Exception as e:  # anything else: say it in a sentence, keep the details in the log
        log.exception("segment everything failed")
        raise gr.Error(f"Segmentation failed: {e}") from None


def build_everything_tab(slot: ModelSlot) -> None:
    """Add the tab's components and events to the enclosing `gr.Blocks`."""
    state = gr.State(empty_state(), delete_callback=free_exports)
    with gr.Row():
        with gr.Column(scale=3):
            image = gr.Image(
                label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                elem_id="everything-image",
            )  # fmt: skip
        with gr.Column(scale=2):
            points = gr.Slider(2, MAX_POINTS_PER_SIDE, value=POINTS_PER_SIDE, step=1, label="Points per side "
                               "(the grid of clicks: more finds smaller things, and takes longer)",
                               elem_id="everything-points")  # fmt: skip
            pred_iou = gr.Slider(0, 1, value=PRED_IOU, step=0.01, label="Predicted IoU threshold",
                                 elem_id="everything-iou")  # fmt: skip
            stability = gr.Slider(0, 1, value=STABILITY, step=0.01, label="Stability score threshold",
                                  elem_id="everything-stability")  # fmt: skip
            box_nms = gr.Slider(0, 1, value=BOX_NMS, step=0.01, label="Box NMS threshold (overlap above "
                                "which the weaker mask goes)", elem_id="everything-nms")  # fmt: skip
            min_area = gr.Number(0, precision=0, minimum=0, label="Remove holes and islands smaller than (px)",
                                 elem_id="everything-min-area")  # fmt: skip
            run = gr.Button("Segment everything", variant="primary", elem_id="everything-run")
            status = gr.Markdown(f"Upload an image, then press Segment everything. {IMAGE_LIMITS}",
                                 elem_id="everything-status")  # fmt: skip
    table = gr.Dataframe(
        headers=COLUMNS, value=[], interactive=False, label="Masks", elem_id="everything-table"
    )
    with gr.Row():
        coco_file = gr.DownloadButton(
            "All masks (COCO JSON)", interactive=False, elem_id="everything-download-coco"
        )
        png_file = gr.DownloadButton(
            "All masks (index PNG)", interactive=False, elem_id="everything-download-png"
        )

    outputs = [state, image, table, status, coco_file, png_file]

    def render(st, message):
        if st["image"] is None:
            picture = None
        elif st["result"] is None:
            picture = Image.fromarray(st["image"])
        else:
            picture = st["result"].overlay(st["image"])
        return (st, picture, _table(st["result"]), message, *_downloads(st))

    def on_upload(picture, st):
        new, refused = take_image_upload(picture, st, empty_state)
        if refused:  # the picture, masks and downloads before it stay
            shown = None if not st or st["image"] is None else render(st, "")[1]
            return refusal(refused, len(outputs), outputs.index(status), {1: shown})
        if new["image"] is None:
            return render(new, "Upload an image.")
        return render(new, "Choose the settings, then press Segment everything.")

    @on_gpu(CONCEPT_S)
    def on_run(st, n_points, iou, stab, nms, area, progress=gr.Progress()):
        if st["image"] is None:
            raise gr.Error("Upload an image first.")
        progress(0.1, desc="Segmenting everything")
        st["result"] = segment_everything(slot, st["image"], n_points, iou, stab, nms, area or 0)
        return render(st, found_message(st["result"]))

    # preprocess=False: a file that is not an image is refused by `read_image` in a sentence
    bind(image.upload, on_upload, [image, state], outputs, status, preprocess=False)
    bind(run.click, on_run, [state, points, pred_iou, stability, box_nms, min_area], outputs, status)
    example_gallery(image, outputs, lambda p: on_upload(p, None), elem_id="everything-tab-examples")


__all__ = ["build_everything_tab", "segment_everything"]
