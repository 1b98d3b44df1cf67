"""Upload limits, checked before anything is decoded, and each tab's folder of exports (deleted
with the tab's state)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from sam3_sdk.images import as_rgb_array, image_file_size

MAX_UPLOAD = "200mb"  # Gradio refuses larger files before they are stored
MAX_IMAGE_PIXELS = 40_000_000
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
        message = str(e).replace(str(path), Path(path).name)  # the server's temp path means nothing
        raise gr.Error(message if "are accepted" in message else f"{message}. {IMAGE_LIMITS}") from None


def export_dir(st: dict) -> Path:
    """A new folder for one set of downloads, inside the tab's own folder (made on first use)."""
    if not st.get("folder") or not Path(st["folder"]).is_dir():
        st["folder"] = tempfile.mkdtemp(prefix="sam3-demo-")
    return Path(tempfile.mkdtemp(dir=st["folder"]))


def free_exports(st: dict | None) -> None:
    """Delete the tab's downloads (called when its state is deleted)."""
    folder = (st or {}).get("folder")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        st["folder"] = None
