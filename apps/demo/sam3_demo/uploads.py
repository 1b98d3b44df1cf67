"""Upload limits, checked before anything is decoded, and each tab's folder of exports (deleted
with the tab's state)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder
from sam3_sdk.images import as_rgb_array, image_file_size
from sam3_sdk.video_io import check_video_limits, probe_video

log = logging.getLogger("sam3_demo")

MAX_UPLOAD = "200mb"  # Gradio refuses larger files before they are stored
MAX_VIDEO_BYTES = 200 * 2**20
MAX_VIDEO_SECONDS = 60
MAX_IMAGE_PIXELS = 40_000_000
# A refused upload is deleted this many seconds after the refusal, not at once: the upload widget
# previews the file, and its request may have been checked (the file exists) but not yet served.
DISCARD_AFTER_S = 10.0
IMAGE_LIMITS = f"Images up to {MAX_IMAGE_PIXELS // 1_000_000} megapixels and 200 MB."


def read_image(path: str | os.PathLike | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 of an uploaded image file, its size checked from the header first.

    Raises gr.Error (a message on the page) for unreadable files and images above the limit.
    """
    if isinstance(path, np.ndarray):
        return as_rgb_array(path)
    try:
        image_file_size(path, max_pixels=MAX_IMAGE_PIXELS)  # the header only: nothing decoded yet
        return as_rgb_array(path)
    except ValueError as e:
        discard_upload(path)
        message = str(e).replace(str(path), Path(path).name)  # the server's temp path means nothing
        raise gr.Error(message if "are accepted" in message else f"{message}. {IMAGE_LIMITS}") from None


def uploaded_path(value) -> str | None:
    """The server path of an upload, from the handler's input: a path, or Gradio's file payload (a
    dict with "path") when the event skips Gradio's preprocessing. The image tabs' upload events do
    (`preprocess=False`): Gradio opens an uploaded image before the handler runs, and a file that is
    not an image would fail there with its internals ("Could not preprocess input component ...
    Expected a ImageData"); `read_image` refuses it with a sentence instead."""
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if value else None


def check_video(path: str | os.PathLike, max_frames: int, max_side: int, limits: str) -> None:
    """Refuse an uploaded video from its container header, before a frame is decoded: unreadable
    files, and files above MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS, `max_frames` frames or `max_side` px.

    Raises gr.Error whose message states the value found and the limits (`limits`, the tab's
    sentence); the refused upload is deleted DISCARD_AFTER_S later.
    """
    try:
        info = probe_video(path)
        check_video_limits(
            info, max_bytes=MAX_VIDEO_BYTES, max_seconds=MAX_VIDEO_SECONDS, max_frames=max_frames, max_side=max_side
        )  # fmt: skip
    except ValueError as e:
        discard_upload(path)
        message = str(e).replace(str(path), Path(path).name)
        if "are accepted" not in message:
            message = f"This file cannot be read as a video: {message}"
        raise gr.Error(f"{message}. {limits}") from None


def discard_upload(path: str | os.PathLike) -> None:
    """Delete a refused upload from Gradio's upload folder (with its folder, when that is empty),
    DISCARD_AFTER_S seconds from now (at once when that is 0): a request for it that the web server
    has already accepted is served, not cut off by a missing file. Files elsewhere (examples, the
    caller's own) are left alone."""
    try:
        path = Path(path).resolve()
        if not path.is_relative_to(Path(get_upload_folder()).resolve()):
            return
    except (OSError, TypeError):
        return
    if DISCARD_AFTER_S <= 0:
        _delete_upload(path)
        return
    timer = threading.Timer(DISCARD_AFTER_S, _delete_upload, args=(path,))
    timer.daemon = True
    timer.start()


def _delete_upload(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
        path.parent.rmdir()  # Gradio keeps each upload in a folder of its own
    except OSError:
        pass


DOWNLOADS_PREFIX = "sam3-downloads-"


def export_dir(st: dict) -> Path:
    """A new folder for one set of downloads, inside the tab's own folder (made on first use).

    The tab's folder lies in Gradio's cache folder, so Gradio serves the files from where they are
    written, and its name is random (128 bits from `secrets`): a download's URL
    (`/gradio_api/file=<cache>/sam3-downloads-<random>/<n>/<file>`) cannot be guessed or derived
    from the image, unlike the content hash Gradio names its own copies by. Anyone who has the URL
    can fetch the file until the folder is deleted with the tab's state (`free_exports`).
    """
    if not st.get("folder") or not Path(st["folder"]).is_dir():
        cache = Path(get_upload_folder())
        cache.mkdir(parents=True, exist_ok=True)
        folder = cache / f"{DOWNLOADS_PREFIX}{secrets.token_urlsafe(16)}"
        folder.mkdir(mode=0o700)
        st["folder"] = str(folder)
    return Path(tempfile.mkdtemp(dir=st["folder"]))


def take_image_upload(
    value, st: dict | None, empty_state: Callable[[], dict]
) -> tuple[dict | None, str | None]:
    """An image tab's upload: (its new state, None), holding the image or, when the upload was
    cleared, nothing; the old state's downloads are freed. A file `read_image` refuses gives
    (None, its message) and leaves the old state, downloads included, as it was."""
    path = uploaded_path(value)
    rgb = None
    if path is not None:
        try:
            rgb = read_image(path)
        except gr.Error as e:
            log.info("upload refused: %s", e.message)
            return None, e.message
    free_exports(st)
    st = empty_state()
    st["image"] = rgb
    return st, None


def free_exports(st: dict | None) -> None:
    """Delete the tab's downloads (called when its state is deleted: the tab closed, or an hour
    passed, or the user started over)."""
    folder = (st or {}).get("folder")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        st["folder"] = None
