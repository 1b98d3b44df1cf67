"""The Video tracking tab: pick the tracker (SAM 3 or EdgeTAM), upload a video, scrub to a frame,
find objects by text (SAM 3) and click objects (each with its own id and colour), see the frame's
masks at once, propagate with a progress bar, watch and download the result.

The frame one clicks is the main view. Whichever way a frame is chosen (the slider dragged, its
arrow keys, a typed number, a pause of the tracked video), the frame is the slider's value: the
picture, its frame number (in its label and the status line) and the frame a click goes to come
from it. A click sent before the chosen frame's picture arrived goes to the chosen frame, and its
answer shows that frame's picture with the click; answers never move the slider back (only an
upload or a pause of the tracked video sets it)."""

from __future__ import annotations

import logging
import math
from typing import Any

import gradio as gr
from sam3_sdk.video import VideoSession
from sam3_sdk.video_io import open_video

from .events import TabLock, bind, click_xy, refusal
from .gpu import CLICK_S, CONCEPT_S, on_gpu, propagate_seconds
from .loading import ModelSlot
from .uploads import check_video, export_dir, free_exports
from .video_examples import example_videos
from .video_models import SAM3, VideoModels
from .video_order import NEXT_STAMP, STAMP_JS, fresh
from .video_text import (
    DEFAULT_THRESHOLD,
    TEXT_HELP,
    TextDetection,
    add_clicked_object,
    find,
    keep_clicking_new,
    next_object_id,
    object_label,
    remember_phrases,
    text_controls,
)
from .video_view import display_scale, frame_picture, legend_html, object_choices

log = logging.getLogger("sam3_demo")

POSITIVE, NEGATIVE = "Positive point", "Negative point"
DIRECTION_LABELS = {"Forward": "forward", "Backward": "backward", "Both ways": "both"}
MAX_FRAMES = 900  # e.g. 30 s at 30 fps
MAX_SIDE = 1920
LIMITS = f"Videos up to {MAX_FRAMES} frames (30 s at 30 fps), {MAX_SIDE} px on the long side, 200 MB."
SESSION_TTL_S = 3600  # a tab's tracking session is freed when the tab closes, or after an hour


def empty_state() -> dict[str, Any]:
    """Per-browser-tab state: the SDK session, the clicks (obj_id -> frame -> [(x, y, label)]), the
    phrase of each object found by text (obj_id -> phrase), the uploaded video's path and its
    tracker (the video is reopened when the tracker changes), the frame last shown, and the tab's
    lock (its events run one at a time)."""
    return {"session": None, "clicks": {}, "phrases": {}, "current": 1, "folder": None, "path": None,
            "tracker": SAM3, "shown": None, "lock": TabLock()}  # fmt: skip


def reset_state(st: dict) -> dict:
    """`st` emptied in place (its lock kept: events waiting on it see the new state)."""
    lock = st.get("lock") or TabLock()
    st.clear()
    st.update(empty_state(), lock=lock)
    return st


def free_state(st: dict | None) -> None:
    """Close a tab's video session (frames, memories, decoder) and delete its downloads."""
    free_exports(st)
    session = (st or {}).get("session")
    if session is not None:
        session.close()
        st["session"] = None


def frame_of(session: VideoSession, value: Any) -> int:
    """The frame index `value` (a number from the page) of `session`'s video.

    Raises gr.Error naming the value when it is not a frame of the video."""
    n = session.num_frames
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number != int(number) or not 0 <= number < n:
        raise gr.Error(f"Frame {value!r} is not a frame of this video; its frames are 0 to {n - 1}.")
    return int(number)


def frame_at(session: VideoSession, seconds: Any) -> int:
    """The frame a player paused at `seconds` shows: the last frame starting at or before it."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise gr.Error(f"The tracked video's time {seconds!r} is not a number of seconds.")
    frame = math.floor(max(0.0, float(seconds)) * session.fps + 1e-3)
    return min(frame, session.num_frames - 1)


def build_video_tab(slot: ModelSlot, models: VideoModels | None = None) -> None:
    """Add the tab's components and events to the enclosing `gr.Blocks`.

    models: the trackers offered (default: SAM 3's, and EdgeTAM from $SAM3_VIDEO_MODEL)."""
    models = models or VideoModels(slot)
    state = gr.State(empty_state(), time_to_live=SESSION_TTL_S, delete_callback=free_state)
    with gr.Row():
        with gr.Column(scale=3):  # the frame one clicks, its slider, then the tracked video
            frame_view = gr.Image(
                label="Frame: click on the object", type="pil", interactive=False, elem_id="video-frame-view"
            )
            frame_slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="video-frame")
            player_time = gr.Number(0, visible="hidden", elem_id="video-player-time")
            stamp = gr.Number(0, visible="hidden", elem_id="video-event-stamp")  # see video_order.py
            status = gr.Markdown("Upload a video (or pick the example).", elem_id="video-status")
            legend = gr.HTML("", elem_id="video-legend")
            result_video = gr.Video(
                label="Tracked video (pause it to click on the frame it shows)", interactive=False,
                elem_id="video-result",
            )  # fmt: skip
            with gr.Row():
                mp4_file = gr.DownloadButton("Annotated MP4", interactive=False, elem_id="video-download-mp4")
                zip_file = gr.DownloadButton(
                    "Masks (PNG zip)", interactive=False, elem_id="video-download-zip"
                )
                rle_file = gr.DownloadButton(
                    "Masks (YouTube-VIS JSON)", interactive=False, elem_id="video-download-rle"
                )
        with gr.Column(scale=2):  # the video, the tracker and the prompts
            upload = gr.Video(label="Video", sources=["upload"], height=220, elem_id="video-upload")
            gr.Markdown(LIMITS, elem_id="video-limits")
            examples_slot = gr.Column()
            tracker = gr.Radio(models.choices(), value=SAM3, label="Tracker", elem_id="video-tracker")
            tracker_note = gr.Markdown(models.describe(SAM3), elem_id="video-tracker-note")
            with gr.Row(equal_height=True):
                phrase_box = gr.Textbox(
                    label="Find by text", placeholder="e.g. person, dog", scale=4, elem_id="video-text"
                )
                find_button = gr.Button("Find", scale=1, elem_id="video-find")
            threshold = gr.Slider(
                0.05, 0.95, value=DEFAULT_THRESHOLD, step=0.01, label="Detection threshold (lower it when "
                "nothing is found)", elem_id="video-text-threshold",
            )  # fmt: skip
            text_note = gr.Markdown(TEXT_HELP, elem_id="video-text-note")
            objects = gr.Radio(["Object 1"], value="Object 1", label="Object", elem_id="video-object")
            with gr.Row():
                new_object = gr.Button("New object", elem_id="video-new-object")
                remove_object = gr.Button("Remove object", elem_id="video-remove-object")
            mode = gr.Radio([POSITIVE, NEGATIVE], value=POSITIVE, label="A click adds", elem_id="video-mode")
            direction = gr.Radio(
                list(DIRECTION_LABELS), value="Both ways", label="Propagate", elem_id="video-dir"
            )
            with gr.Row():
                propagate = gr.Button("Propagate", variant="primary", elem_id="video-propagate")
                reset = gr.Button("Reset", elem_id="video-reset")

    def open_session(path, choice):
        """A `VideoSession` on the video at `path`, tracked by `choice` (SAM 3 or EdgeTAM), and the
        detection settings of its phrases (None with EdgeTAM)."""
        try:
            video_tracker = models.tracker(choice)
        except RuntimeError as e:
            raise gr.Error(str(e)) from None
        check_video(path, MAX_FRAMES, MAX_SIDE, LIMITS)  # from the header, before decoding
        try:
            reader = open_video(path)
        except ValueError as e:
            raise gr.Error(f"This file cannot be read as a video: {e}") from None
        h, w = reader.size
        if len(reader) > MAX_FRAMES or max(h, w) > MAX_SIDE:
            reader.close()
            raise gr.Error(
                f"The video has {len(reader)} frames of {w}x{h} px; too long or too large. {LIMITS}"
            )
        if choice == SAM3:  # phrases as well as clicks
            detect = TextDetection(models.slot.sam)
            return VideoSession(video_tracker, reader, concept=detect.tracker), detect
        return VideoSession(video_tracker, reader), None

    def require_session(st):
        if st["session"] is None:
            raise gr.Error("Upload a video first.")
        return st["session"]

    def no_files():
        return tuple(gr.DownloadButton(value=None, interactive=False) for _ in range(3))

    def view(st, frame_idx, text, move_slider=False):
        """The outputs of `view_outputs` from the state, showing `frame_idx`: the picture with its
        frame number, the slider (only when the frame was chosen elsewhere: the slider may have
        moved on since the event was sent), the object choices, the legend and the status."""
        if st["session"] is None:
            radio = gr.Radio(choices=object_choices(st), value=f"Object {st['current']}")
            return st, gr.skip(), gr.skip(), radio, legend_html(st), text
        frame_idx = st["shown"] = int(frame_idx)
        picture = gr.Image(
            value=frame_picture(st, frame_idx), label=f"Frame {frame_idx}: click on the object"
        )
        return (
            st,
            picture,
            gr.Slider(value=frame_idx) if move_slider else gr.skip(),
            gr.Radio(choices=object_choices(st), value=f"Object {st['current']}"),
            legend_html(st),
            text,
        )

    view_outputs = [state, frame_view, frame_slider, objects, legend, status]
    files = [mp4_file, zip_file, rle_file]
    upload_outputs = [*view_outputs, upload, result_video, *files]

    def on_upload(path, st, choice):
        if not path:
            free_state(st)
            reset_state(st)
            st["tracker"] = choice
            cleared = gr.Image(value=None, label="Frame: click on the object")
            return (st, cleared, gr.Slider(0, 1, value=0), gr.Radio(["Object 1"], value="Object 1"), "",
                    "Upload a video.", gr.skip(), None, *no_files())  # fmt: skip
        try:
            session, detect = open_session(path, choice)
        except gr.Error as e:  # the video, objects, results and downloads before it stay
            log.info("video upload refused: %s", e.message)
            at = upload_outputs.index(upload)
            return refusal(e.message, len(upload_outputs), upload_outputs.index(status), {at: st["path"]})
        free_state(st)
        reset_state(st)
        st.update(session=session, detect=detect, path=path, tracker=choice)
        n, (h, w) = session.num_frames, session.size
        text = (
            f"{n} frames, {w}x{h} px, {session.fps:.3g} fps, tracked with {choice}. "
            "Scrub to a frame and click on an object"
            + (", or find objects by text." if choice == SAM3 else ".")
        )
        shown = view(st, 0, text)
        slider = gr.Slider(0, n - 1, value=0, step=1)
        return (*shown[:2], slider, *shown[3:], gr.skip(), None, *no_files())

    def on_scrub(st, frame_idx, sent):
        session = st["session"]
        if session is None:
            return st, gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Upload a video first."
        frame_idx = frame_of(session, frame_idx)
        if not fresh(st, sent) or st.get("shown") == frame_idx:  # an older choice, or shown (by a click)
            return (st, *(gr.skip() for _ in view_outputs[1:]))
        tracked = session.results.get(frame_idx) is not None
        return view(st, frame_idx, f"Frame {frame_idx}" + ("" if tracked else " (not tracked yet)"))

    def on_player(st, seconds, sent):
        if seconds == -1 or not fresh(st, sent):  # played to its end (no frame chosen), or an older event
            return (st, *(gr.skip() for _ in view_outputs[1:]))
        session = require_session(st)
        frame_idx = frame_at(session, seconds)
        return view(
            st, frame_idx, f"Frame {frame_idx} (where the tracked video was paused)", move_slider=True
        )

    @on_gpu(CLICK_S)
    def on_click(st, frame_idx, click_mode, sent, evt: gr.EventData):
        session = require_session(st)
        frame_idx = frame_of(session, frame_idx)
        # sent before a newer frame choice was served: recorded on its frame, the newer frame stays shown
        newest = fresh(st, sent) or st.get("shown") is None
        scale = display_scale(session)  # the click's pixel on the enlarged picture -> the frame's pixel
        h, w = session.size
        x, y = click_xy(evt, (h * scale, w * scale))
        x, y = (
            float(min(w - 1, int(x) // scale)),
            float(min(h - 1, int(y) // scale)),
        )  # the frame pixel clicked
        obj_id = st["current"]
        clicks = st["clicks"].setdefault(obj_id, {}).setdefault(frame_idx, [])
        clicks.append((x, y, 1 if click_mode == POSITIVE else 0))
        points = [(cx, cy) for cx, cy, _ in clicks]
        labels = [lab for _, _, lab in clicks]
        try:
            if obj_id in session.object_ids:
                result = session.refine(obj_id, frame_idx, points=points, labels=labels)
            else:
                result, obj_id = add_clicked_object(session, st, frame_idx, obj_id, points, labels)
        except ValueError as e:
            clicks.pop()
            raise gr.Error(str(e)) from None
        area = int(result.mask(obj_id).sum())
        label = object_label(obj_id, st["phrases"])
        text = f"{label} on frame {frame_idx}: {area} pixels. Click more, or Propagate."
        if area == 0:
            text = f"Nothing was segmented for object {obj_id} on frame {frame_idx}: click inside the object."
        return view(st, frame_idx if newest else st["shown"], text)

    def on_choose(st, label, frame_idx):
        if label:
            st["current"] = int(str(label).split()[-1])
        if st["session"] is None:
            return view(st, 0, "Upload a video first.")
        return view(st, frame_of(st["session"], frame_idx), f"Clicks now go to object {st['current']}.")

    def on_new(st, frame_idx):
        session = st["session"]
        st["current"] = next_object_id(st, session)
        if session is None:
            return view(st, 0, "")
        return view(st, frame_of(session, frame_idx), f"Clicks now go to object {st['current']}.")

    @on_gpu(lambda st, *_, **__: propagate_seconds(st["session"].num_frames if st["session"] else 0))
    def on_propagate(st, frame_idx, direction_label, progress=gr.Progress()):  # noqa: B008 (gradio API)
        session = require_session(st)
        frame_idx = frame_of(session, frame_idx)
        if not session.object_ids and not getattr(session, "phrases", None):
            raise gr.Error("Find objects by text or click on an object first.")
        progress(0, desc="Tracking")

        def tick(done, total):
            progress(done / total, desc=f"Tracking frame {done} of {total}")

        before = set(session.object_ids)
        try:
            for result in session.propagate(DIRECTION_LABELS.get(direction_label, "both"), progress=tick):
                remember_phrases(st, result)  # instances of a phrase may appear on any frame
        except ValueError as e:
            raise gr.Error(str(e)) from None
        keep_clicking_new(st, session, before)
        folder = export_dir(st)
        progress(0, desc="Writing the annotated video")
        mp4 = session.results.save_mp4(folder / "tracked.mp4", session.reader)
        zip_path = session.results.save_png_zip(folder / "masks_png.zip")
        rle = session.results.save_coco_json(folder / "masks_youtube_vis.json")
        tracked = len(session.results)
        text = f"Tracked {len(session.object_ids)} object(s) over {tracked} frames."
        if not session.object_ids:
            text = (
                f"Nothing was found for {', '.join(map(repr, session.phrases))} on any of {tracked} frames."
            )
        unseen = sorted(set(session.object_ids) - set(session.results.visible_object_ids))
        if unseen:
            text += f" Not found on any frame: object(s) {', '.join(map(str, unseen))}."
        downloads = (
            gr.DownloadButton(value=str(mp4), interactive=True),
            gr.DownloadButton(value=str(zip_path), interactive=True),
            gr.DownloadButton(value=str(rle), interactive=True),
        )
        return *view(st, frame_idx, text), str(mp4), *downloads

    def on_tracker(st, choice, frame_idx):
        """Another tracker: the video is reopened with it and its objects start again. When it
        cannot be loaded, the page says why and the choice goes back to the tracker in use."""
        if st["session"] is None:
            st["tracker"] = choice
            return (
                *view(st, 0, "Upload a video (or pick the example)."), choice, models.describe(choice),
                None, *no_files(), *text_controls(choice),
            )  # fmt: skip
        try:
            session, detect = open_session(st["path"], choice)
        except gr.Error as e:
            kept = st["tracker"]
            gr.Warning(e.message)
            return (
                *view(st, frame_of(st["session"], frame_idx), f"⚠️ {e.message}"),
                kept,
                models.describe(kept),
                *(gr.skip() for _ in range(4)),  # the tracked video and the downloads stay
                *text_controls(kept),
            )
        free_state(st)
        st.update(session=session, detect=detect, clicks={}, phrases={}, current=1, tracker=choice)
        text = f"Now tracking with {choice}; the objects were cleared. Click on an object."
        return (
            *view(st, frame_of(session, frame_idx), text), choice, models.describe(choice), None, *no_files(),
            *text_controls(choice),
        )  # fmt: skip

    def reopen(st):
        """The same video in a fresh session of the same tracker: objects, phrases and clicks go."""
        session, detect = open_session(st["path"], st["tracker"])
        st["session"].close()
        st.update(session=session, detect=detect, clicks={}, phrases={}, current=1)

    @on_gpu(CONCEPT_S)
    def on_find(st, frame_idx, text, threshold):
        frame_idx = frame_of(require_session(st), frame_idx)
        return view(st, frame_idx, find(st, text, frame_idx, float(threshold), lambda: reopen(st)))

    def on_remove(st, frame_idx):
        session = require_session(st)
        frame_idx = frame_of(session, frame_idx)
        obj_id = st["current"]
        if obj_id not in session.object_ids:
            raise gr.Error(f"Object {obj_id} has no mask yet: nothing to remove.")
        session.remove_object(obj_id)
        label = object_label(obj_id, st["phrases"])
        st["clicks"].pop(obj_id, None)
        st["phrases"].pop(obj_id, None)
        st["current"] = next_object_id(st, session)
        text = f"{label} was removed from every frame. Propagate again for new downloads."
        return *view(st, frame_idx, text), None, *no_files()

    def on_reset(st, frame_idx):
        session = require_session(st)
        frame_idx = frame_of(session, frame_idx)
        if st.get("detect") is not None and st["detect"].used is not None:
            reopen(st)  # the next phrase may use another detection threshold
        else:
            session.reset()
            st.update(clicks={}, phrases={}, current=1)
        return *view(st, frame_idx, "Cleared. Click on an object."), None, *no_files()

    bind(upload.upload, on_upload, [upload, state, tracker], upload_outputs, status)
    with examples_slot:
        examples = gr.Examples(
            [[e] for e in example_videos()], inputs=[upload], cache_examples=False, label="Example videos",
            elem_id="video-tab-examples",
        )  # fmt: skip
    # An example fills the upload, then opens it with the tracker chosen.
    bind(examples.load_input_event.then, on_upload, [upload, state, tracker], upload_outputs, status)
    text_outputs = [phrase_box, find_button, threshold, text_note]
    tracker_outputs = [*view_outputs, tracker, tracker_note, result_video, *files, *text_outputs]
    bind(tracker.input, on_tracker, [state, tracker, frame_slider], tracker_outputs, status)
    # Frame changes: only the last pending one is served (a fast drag or key repeat sends many), and
    # the picture is never covered by a progress overlay that would swallow a click. They are not model
    # calls and have no concurrency limit: one waiting for its tab's lock (while that tab propagates)
    # holds no slot another tab's frame change needs.
    # Each is stamped by the page (video_order.py): one served after a newer event is not shown.
    for event in (frame_slider.input, frame_slider.release):
        bind(event, on_scrub, [state, frame_slider, stamp], view_outputs, status, trigger_mode="always_last",
             show_progress="hidden", concurrency_limit=None, js=STAMP_JS)  # fmt: skip
    # A pause of the tracked video chooses the frame it shows; its end (a pause too) chooses none.
    bind(result_video.pause, on_player, [state, player_time, stamp], view_outputs, status,
         js="(st, t, s) => { const v = document.querySelector('#video-result video');"
            f" return [st, !v ? 0 : v.ended ? -1 : v.currentTime, {NEXT_STAMP}]; }}")  # fmt: skip
    # Every click counts: one sent while the previous is served is queued, not dropped. A click goes to
    # the slider's frame (what the user chose), even when sent before that frame's picture arrived.
    bind(frame_view.select, on_click, [state, frame_slider, mode, stamp], view_outputs, status,
         trigger_mode="multiple", show_progress="minimal", js=STAMP_JS)  # fmt: skip
    bind(objects.input, on_choose, [state, objects, frame_slider], view_outputs, status)
    bind(new_object.click, on_new, [state, frame_slider], view_outputs, status)
    bind(remove_object.click, on_remove, [state, frame_slider], [*view_outputs, result_video, *files], status)
    bind(find_button.click, on_find, [state, frame_slider, phrase_box, threshold], view_outputs, status)
    bind(phrase_box.submit, on_find, [state, frame_slider, phrase_box, threshold], view_outputs, status)
    bind(propagate.click, on_propagate, [state, frame_slider, direction], [*view_outputs, result_video, *files],
         status)  # fmt: skip
    bind(reset.click, on_reset, [state, frame_slider], [*view_outputs, result_video, *files], status)
