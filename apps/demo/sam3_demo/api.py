"""The demo's API for programs (`gradio_client`, or plain HTTP): one endpoint per action, taking
what a click gives as plain arguments and returning the masks as COCO JSON plus the overlay.

    /segment_concept  image, text, boxes [[x1, y1, x2, y2]], box_labels [1 | 0], threshold, mask_threshold
    /segment_object   image, points [[x, y]], labels [1 | 0], box [x1, y1, x2, y2], multimask
    /generate_masks   image, points_per_side, pred_iou_thresh, stability_score_thresh, box_nms_thresh,
                      min_mask_region_area
    /track_video      video, prompts [{object_id, frame, points, labels, box}], text, direction, tracker

Images return (COCO instances JSON, overlay image); videos (YouTube-VIS JSON, annotated MP4). The
layouts are `sam3_sdk.coco`'s, the same as the SDK's `save_coco_json` and the tabs' downloads.
Coordinates are pixels of the image (the video frame). The endpoints share the tabs' model queue.

The tabs' own events (uploads, clicks carrying browser coordinates) are kept out of the API
(`hide_ui_events`), so `Client(url).view_api()` lists only the endpoints above.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from sam3_sdk.video import VideoSession
from sam3_sdk.video_io import probe_video

from .everything_tab import BOX_NMS, POINTS_PER_SIDE, PRED_IOU, STABILITY, segment_everything
from .gpu import CONCEPT_S, on_gpu, propagate_seconds
from .loading import ModelSlot, log
from .uploads import export_dir, free_exports, read_image
from .video_models import SAM3, VideoModels

API_CALL = "_sam3_api"  # set on the endpoints' handlers: `hide_ui_events` leaves them public
STATE_TTL_S = 3600  # an API client's files are deleted an hour after its last call
MULTIMASK = {"auto": None, "yes": True, "no": False}
DIRECTIONS = ("forward", "backward", "both")


def _endpoint(fn: Callable) -> Callable:
    setattr(fn, API_CALL, True)
    return fn


def _plain(value: Any, name: str) -> Any:
    """JSON null, "" and [] mean "not given"."""
    if value is None or value == "" or value == []:
        return None
    if not isinstance(value, (list, tuple, dict)):
        raise gr.Error(f"{name} must be a JSON list, got {value!r}")
    return value


def _call(what: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """`fn(...)`, its refusals (ValueError / TypeError) as messages for the caller."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise gr.Error(str(e)) from None
    except gr.Error:
        raise
    except Exception as e:  # anything else: a sentence for the caller, the details in the log
        log.exception("%s failed", what)
        raise gr.Error(f"{what} failed: {e}") from None


def _require(slot: ModelSlot):
    if slot.sam is None:
        raise gr.Error(f"No model is loaded: {slot.error}")
    return slot.sam


def _video_prompts(prompts: Any) -> list[dict]:
    """[{object_id, frame, points, labels, box}] (or {object_id: {frame, ...}}, as the SDK's
    `track_object` takes) → a list of prompts, each naming its object."""
    prompts = _plain(prompts, "prompts") or []
    if isinstance(prompts, dict):
        prompts = [{"object_id": int(k), **v} for k, v in prompts.items()]
    out = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, dict) or "object_id" not in prompt:
            raise gr.Error(f"prompts[{i}] must be an object with object_id, frame, points/labels and/or box; "
                           f"got {prompt!r}")  # fmt: skip
        unknown = set(prompt) - {"object_id", "frame", "points", "labels", "box"}
        if unknown:
            raise gr.Error(f"prompts[{i}] has unknown keys {sorted(unknown)}; expected object_id, frame, "
                           "points, labels, box")  # fmt: skip
        out.append(prompt)
    return out


def build_api(slot: ModelSlot, models: VideoModels, check_video: Callable[[str], None]) -> None:
    """Add the endpoints (hidden components, so nothing shows on the page) to the enclosing
    `gr.Blocks`. check_video(path): the video tab's upload limits (raises gr.Error)."""
    state = gr.State({"folder": None}, time_to_live=STATE_TTL_S, delete_callback=free_exports)
    with gr.Column(visible=False, elem_id="api-endpoints"):
        image = gr.Image(type="filepath", label="image", image_mode=None)
        coco = gr.JSON(label="masks (COCO instances)")
        overlay = gr.Image(type="filepath", label="overlay")

        text = gr.Textbox("", label="text")
        boxes, box_labels = gr.JSON(None, label="boxes"), gr.JSON(None, label="box_labels")
        threshold, mask_threshold = gr.Number(0.5, label="threshold"), gr.Number(0.5, label="mask_threshold")
        concept = gr.Button(visible=False)

        @_endpoint
        @on_gpu(CONCEPT_S)
        def segment_concept(
            st, image, text="", boxes=None, box_labels=None, threshold=0.5, mask_threshold=0.5
        ):
            """Every instance of a concept: a noun phrase and/or exemplar boxes [[x1, y1, x2, y2]]
            with box_labels (1 positive, 0 negative). Returns COCO JSON and the overlay."""
            sam = _require(slot)
            picture = read_image(image) if image else None
            if picture is None:
                raise gr.Error("image is missing")
            found = _call(
                "Segmentation", sam.segment_concept, picture, text=(text or "").strip() or None,
                boxes=_plain(boxes, "boxes"), box_labels=_plain(box_labels, "box_labels"),
                threshold=float(threshold), mask_threshold=float(mask_threshold),
            )  # fmt: skip
            return _image_outputs(st, found, picture, image)

        concept.click(segment_concept, [state, image, text, boxes, box_labels, threshold, mask_threshold],
                      [state, coco, overlay], api_name="segment_concept")  # fmt: skip

        points, labels, box = (
            gr.JSON(None, label="points"),
            gr.JSON(None, label="labels"),
            gr.JSON(None, label="box"),
        )
        multimask = gr.Radio(list(MULTIMASK), value="auto", label="multimask")
        obj = gr.Button(visible=False)

        @_endpoint
        @on_gpu(CONCEPT_S)
        def segment_object(st, image, points=None, labels=None, box=None, multimask="auto"):
            """One object from clicks [[x, y]] with labels (1 positive, 0 negative) and/or a box
            [x1, y1, x2, y2]. multimask "auto" gives 3 candidates for a single click, else 1.
            Returns COCO JSON of the candidates (best first) and the best one's overlay."""
            sam = _require(slot)
            picture = read_image(image) if image else None
            if picture is None:
                raise gr.Error("image is missing")
            if multimask not in MULTIMASK:
                raise gr.Error(f"multimask must be one of {list(MULTIMASK)}, got {multimask!r}")
            found = _call(
                "Segmentation", sam.segment_object, picture, points=_plain(points, "points"),
                labels=_plain(labels, "labels"), box=_plain(box, "box"), multimask=MULTIMASK[multimask],
            )  # fmt: skip
            return _image_outputs(st, found, picture, image, best_only=True)

        obj.click(segment_object, [state, image, points, labels, box, multimask], [state, coco, overlay],
                  api_name="segment_object")  # fmt: skip

        per_side = gr.Number(POINTS_PER_SIDE, precision=0, label="points_per_side")
        pred_iou = gr.Number(PRED_IOU, label="pred_iou_thresh")
        stability = gr.Number(STABILITY, label="stability_score_thresh")
        nms = gr.Number(BOX_NMS, label="box_nms_thresh")
        min_area = gr.Number(0, precision=0, label="min_mask_region_area")
        everything = gr.Button(visible=False)

        @_endpoint
        @on_gpu(CONCEPT_S)
        def generate_masks(st, image, points_per_side, pred_iou_thresh, stability_score_thresh, box_nms_thresh,
                           min_mask_region_area):  # fmt: skip
            """Segment everything: a grid of points_per_side² clicks, filtered by predicted IoU and
            stability, then box NMS. Returns COCO JSON and the overlay."""
            picture = read_image(image) if image else None
            if picture is None:
                raise gr.Error("image is missing")
            found = segment_everything(slot, picture, points_per_side, pred_iou_thresh, stability_score_thresh,
                                       box_nms_thresh, min_mask_region_area or 0)  # fmt: skip
            return _image_outputs(st, found, picture, image)

        everything.click(generate_masks, [state, image, per_side, pred_iou, stability, nms, min_area],
                         [state, coco, overlay], api_name="generate_masks")  # fmt: skip

        video = gr.Video(label="video", sources=["upload"])
        prompts = gr.JSON(None, label="prompts")
        phrases = gr.Textbox("", label="text")
        direction = gr.Radio(list(DIRECTIONS), value="both", label="direction")
        tracker = gr.Radio([choice for _, choice in models.choices()], value=SAM3, label="tracker")
        tracks = gr.JSON(label="masks (YouTube-VIS)")
        mp4 = gr.File(label="annotated video")
        track = gr.Button(visible=False)

        def seconds(st, video, *_, **__):
            try:
                return propagate_seconds(probe_video(video).num_frames)  # the header only
            except Exception:  # the call itself will say what is wrong with the file
                return propagate_seconds(0)

        @_endpoint
        @on_gpu(seconds)
        def track_video(st, video, prompts=None, text="", direction="both", tracker=SAM3):
            """Track objects through a video: prompts [{object_id, frame, points [[x, y]], labels,
            box [x1, y1, x2, y2]}] (several prompts of one object refine it) and/or phrases in text
            (comma-separated; SAM 3 only), propagated in direction forward / backward / both.
            Returns YouTube-VIS JSON (one RLE or null per frame and object) and the annotated MP4."""
            if not video:
                raise gr.Error("video is missing")
            if direction not in DIRECTIONS:
                raise gr.Error(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
            asked = _video_prompts(prompts)
            words = [w.strip() for w in (text or "").split(",") if w.strip()]
            if not asked and not words:
                raise gr.Error("give prompts (object_id, frame, points / box) or text")
            try:
                video_tracker = models.tracker(tracker)
            except RuntimeError as e:
                raise gr.Error(str(e)) from None
            check_video(video)
            session = _call(
                "Opening the video", VideoSession, video_tracker, video,
                concept=(lambda: slot.sam.concept_video_predictor) if tracker == SAM3 and words else None,
            )  # fmt: skip
            try:
                for prompt in asked:
                    obj_id, frame = int(prompt["object_id"]), int(prompt.get("frame", 0))
                    kwargs = dict(
                        points=prompt.get("points"), labels=prompt.get("labels"), box=prompt.get("box")
                    )
                    if obj_id in session.object_ids:
                        _call("Tracking", session.refine, obj_id, frame, **kwargs)
                    else:
                        _call("Tracking", session.add_object, frame=frame, obj_id=obj_id, **kwargs)
                if words:
                    _call("Tracking", session.add_text, words)
                results = _call("Tracking", session.track, direction)
                folder = export_dir(st)
                vis = results.to_coco(Path(video).stem)
                path = results.save_mp4(folder / "tracked.mp4", session.reader)
            finally:
                session.close()
            return st, vis, str(path)

        track.click(track_video, [state, video, prompts, phrases, direction, tracker], [state, tracks, mp4],
                    api_name="track_video")  # fmt: skip


def _image_outputs(st: dict, found, picture, path: str, best_only: bool = False) -> tuple[dict, dict, str]:
    """(state, COCO JSON naming the uploaded file, overlay path) of an image result; the overlay lies
    in the caller's own random folder (deleted with its state)."""
    folder = export_dir(st)
    shown = found
    if best_only and len(found) > 1:
        shown = type(found)(masks=found.masks[:1], scores=found.scores[:1], boxes=found.boxes[:1])
    overlay = folder / "overlay.png"
    shown.overlay(picture).save(overlay)
    return st, found.to_coco(file_name=Path(path).name), str(overlay)


def hide_ui_events(app: gr.Blocks) -> int:
    """Keep the tabs' own events out of the API: each gets a readable tab-prefixed name (e.g.
    `concept_run`, for the logs and the page's config) and is private, so `view_api()` lists only
    the endpoints of `build_api`. Returns how many were hidden."""
    hidden = 0
    taken = {fn.api_name for fn in app.fns.values() if _is_endpoint(fn.fn)}
    for block_fn in app.fns.values():
        if _is_endpoint(block_fn.fn):
            continue
        name = _ui_name(block_fn.fn)
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate)
        block_fn.api_name, block_fn.api_visibility = candidate, "private"
        hidden += 1
    return hidden


def _is_endpoint(fn) -> bool:
    return fn is not None and getattr(fn, API_CALL, False)


def _ui_name(fn) -> str:
    """`build_concept_tab.<locals>.on_run` → `concept_run`; Gradio's own helpers keep their name."""
    if fn is None:
        return "ui"
    qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "ui"))
    parts = qualname.split(".")
    tab = parts[0].removeprefix("build_").removesuffix("_tab") if parts[0].startswith("build_") else "ui"
    name = parts[-1].removeprefix("on_").replace("<lambda>", "example")
    return f"{tab}_{name}".strip("_")
