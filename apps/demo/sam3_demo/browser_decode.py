"""Clicks decoded in the browser: the server computes an image's embedding once and sends it; the page
runs the exported click decoder (ONNX) with onnxruntime-web and draws each mask without a server call.

What the page needs, all served by the demo itself (Gradio static files, nothing from a CDN):
- onnxruntime-web's WebAssembly build, vendored by scripts/vendor_onnxruntime_web.py (`make install`)
  into static/vendor/onnxruntime-web/;
- static/browser_decode.js, loaded in the page's head;
- the click-decoder graphs of the loaded model, exported once per model into the cache folder
  ($SAM3_CACHE/onnx/<name>-<digest of the weights and export settings>) and described by their
  manifest.json;
- per image, the tracker's three embedding maps as one binary file (float16 or float32, see
  EMBEDDING_DTYPE), written into the tab's private download folder.

The setting "Decode clicks in the browser" starts on unless SAM3_BROWSER_DECODE=0; when the page
cannot run the decoder (onnxruntime-web fails to load, no graph), clicks go to the server as before.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .gpu import FEATURES_S, on_gpu
from .uploads import export_dir

log = logging.getLogger("sam3_demo")

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor" / "onnxruntime-web"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
CACHE = Path(os.environ.get("SAM3_CACHE", Path.home() / ".cache" / "sam3")) / "onnx"
# The embedding goes to the page in this dtype. float32 by default: the page's masks then equal the
# SDK's except at pixels with |logit| < 1e-3 (the test checks it). float16 halves the bytes, but moves
# logits by up to about 1e-3 at the tiny width (measured; more where logits are larger), beyond that
# tolerance: set SAM3_BROWSER_EMBEDDING_DTYPE=float16 where bandwidth matters more.
EMBEDDING_DTYPE = os.environ.get("SAM3_BROWSER_EMBEDDING_DTYPE", "float32")


def enabled_by_default() -> bool:
    """The setting's start value: on, unless SAM3_BROWSER_DECODE is 0/off/false/no."""
    return os.environ.get("SAM3_BROWSER_DECODE", "1").strip().lower() not in ("0", "off", "false", "no")


def vendored() -> bool:
    return all((VENDOR / name).is_file() for name in ORT_FILES)


def file_url(path: Path) -> str:
    """The URL (relative to the page) under which Gradio serves `path` from a static or cache folder."""
    return f"gradio_api/file={path}"


def head() -> str:
    """The page head's additions: the configuration and the script (launch(head=...))."""
    gr.set_static_paths([STATIC, CACHE])
    config = {
        "defaultOn": enabled_by_default(),
        "ort": None
        if not vendored()
        else {
            "script": file_url(VENDOR / "ort.wasm.min.js"),
            "mjs": file_url(VENDOR / "ort-wasm-simd-threaded.mjs"),
            "wasm": file_url(VENDOR / "ort-wasm-simd-threaded.wasm"),
        },
        "missing": None if vendored() else "onnxruntime-web is not installed on the server (make install)",
    }
    script = file_url(STATIC / "browser_decode.js")
    return (
        f"<style>{STYLE}</style>\n"
        f"<script>window.SAM3_BROWSER_CONFIG = {json.dumps(config)};</script>\n"
        f'<script src="{html.escape(script)}" defer></script>'
    )


STYLE = """
.sam3-hidden, body.sam3-browser-active #point-status { display: none !important; }
#point-browser-panel .sam3-browser-status { margin-bottom: 6px; }
#point-browser-panel .sam3-browser-candidates { display: flex; flex-wrap: wrap; gap: 6px; }
#point-browser-panel .sam3-browser-candidate { padding: 4px 10px; border: 1px solid #888; border-radius: 6px; }
#point-browser-panel .sam3-browser-candidate.selected { border-color: #1e90ff; background: #1e90ff22; }
#point-browser-panel .sam3-browser-download { align-self: center; text-decoration: underline; }
#point-browser-panel .sam3-browser-note { font-size: 0.85em; opacity: 0.8; margin-top: 4px; }
"""


DIGEST_HEX = 16  # hex digits of the cache key's sha256 kept in the folder name (64 bits)
# The modules of the tracker whose tensors the click-decoder graphs hold (the positional encoding of
# the embedding grid is folded in as a constant), and the dtype the graphs are exported in.
DECODER_MODULES = ("prompt_encoder", "mask_decoder", "shared_image_embedding")
GRAPH_DTYPE = "float32"  # what export_click_decoder writes (fp16=False)


@on_gpu(FEATURES_S)
def decoder_digest(sam) -> str:
    """The cache key of `sam`'s click-decoder graphs: the first DIGEST_HEX hex digits of a sha256 over
    the tensors the graphs are made from (DECODER_MODULES of `sam.image_model`, sorted by name: name,
    dtype, shape, bytes), the export settings (opset, dtype) and the manifest's pre/postprocessing
    (read from the checkpoint's processor). Same weights and settings, same key; any change, another.

    About 15 ms at SAM 3's real widths (4.2 M values, 17 MB in float32), measured on one CPU core.
    Wrapped for ZeroGPU: the weights may live on a GPU that is attached only inside such a call."""
    from sam3_sdk.onnx_io import OPSET  # noqa: PLC0415
    from sam3_sdk.onnx_manifest import tracker_postprocessing, tracker_preprocessing  # noqa: PLC0415

    tracker = sam.image_model
    digest = hashlib.sha256()
    settings = {
        "opset": OPSET,
        "dtype": GRAPH_DTYPE,
        "preprocessing": tracker_preprocessing(sam.image_processor),
        "postprocessing": tracker_postprocessing(sam.image_processor),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    tensors = {
        f"{part}.{key}": value
        for part in DECODER_MODULES
        for key, value in getattr(tracker, part).state_dict().items()
    }
    for key in sorted(tensors):
        value = tensors[key].detach().cpu().contiguous()
        digest.update(f"\n{key} {value.dtype} {tuple(value.shape)}\n".encode())
        # bytes of any dtype (bfloat16 included, which numpy lacks): viewed as uint8
        digest.update(value.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:DIGEST_HEX]


def _model_folder(name: str, digest: str) -> Path:
    return CACHE / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_')}-{digest}"


class ClickDecoderGraphs:
    """The click-decoder graphs of one model, exported on first use (once per model and cache folder).

    The cache folder is keyed by the weights (`decoder_digest`), not the name alone: a folder re-trained
    under the same name, a new hub revision or a random checkpoint made again gets graphs of its own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.folder: Path | None = None  # known once a model has been seen (`ensure`)
        self._keyed: Any = None  # the model `folder` was computed for
        self._lock = threading.Lock()

    def folder_of(self, sam) -> Path:
        """The cache folder of `sam`'s graphs (its digest is computed once per model object)."""
        if self._keyed is not sam:
            self.folder, self._keyed = _model_folder(self.name, decoder_digest(sam)), sam
        return self.folder

    def ensure(self, sam) -> dict[str, Any]:
        """The page's decoder description (graph URLs, input and output names, sizes), exporting the
        graphs first when they are not in the cache. Raises RuntimeError when they cannot be made."""
        with self._lock:
            folder = self.folder_of(sam)
            manifest = folder / "manifest.json"
            for attempt in range(2):
                if not manifest.is_file():
                    self._export(sam, folder)
                try:
                    return decoder_description(json.loads(manifest.read_text()), folder)
                except (ValueError, KeyError, TypeError) as e:  # an older export: made again, once
                    if attempt:
                        raise RuntimeError(f"the click decoder's manifest cannot be followed: {e}") from e
                    log.warning("the cached click decoder is unusable (%s); exporting it again", e)
                    manifest.unlink()
            raise AssertionError("unreachable")

    def _export(self, sam, folder: Path) -> None:
        log.info("exporting the click decoder of %s to %s (once per model)", self.name, folder)
        try:
            export_click_decoder(sam, folder, self.name)
        except Exception as e:
            log.exception("click decoder export failed")
            raise RuntimeError(f"the click decoder could not be exported ({type(e).__name__}: {e})") from e


def export_click_decoder(sam, folder: Path, name: str) -> None:
    """Write the click-decoder graphs (fp32) and their manifest.json into `folder`: from the loaded
    tracker when it is float32 on the CPU, else from a CPU copy of its checkpoint (`export_onnx`)."""
    # onnx + onnxscript are needed here only: imported when a page first asks
    from sam3_sdk.onnx_export import export_click_decoders, export_onnx  # noqa: PLC0415
    from sam3_sdk.onnx_io import OPSET  # noqa: PLC0415
    from sam3_sdk.onnx_manifest import (  # noqa: PLC0415
        base_manifest,
        tracker_postprocessing,
        tracker_preprocessing,
        write_manifest,
    )

    folder.mkdir(parents=True, exist_ok=True)
    weight = next(sam.image_model.parameters())
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        export_onnx(sam.tracker_checkpoint, folder, parts=["click_decoder"], fp16=False)
        return
    manifest = base_manifest(name, "sam3_tracker", OPSET)
    manifest["preprocessing"] = tracker_preprocessing(sam.image_processor)
    manifest["postprocessing"] = tracker_postprocessing(sam.image_processor)
    manifest["graphs"].update(export_click_decoders(sam.image_model, folder, fp16=False))
    write_manifest(folder, manifest)


def decoder_description(manifest: dict, folder: Path) -> dict[str, Any]:
    """What the page needs from the manifest: graph URLs, input/output names, sizes, pre/postprocessing.

    Raises ValueError naming what the page cannot follow (it then uses the server path)."""
    graphs = manifest.get("graphs", {})
    if "click_decoder" not in graphs:
        raise ValueError(f"{folder / 'manifest.json'} has no click_decoder graph (graphs: {sorted(graphs)})")
    multi, single = graphs["click_decoder"], graphs.get("click_decoder_single")
    names = [i["name"] for i in multi["inputs"]]
    post = manifest["postprocessing"]
    up = post["upsample"]
    if (up["mode"], up["align_corners"], up.get("antialias"), up.get("crop"), post["threshold"]) != (
        "bilinear", False, False, None, 0.0,
    ):  # fmt: skip
        raise ValueError(f"the page upsamples bilinearly (align_corners=False, no crop) to 0; got {post}")
    return {
        "multi": file_url(folder / multi["file"]),
        "single": None if single is None else file_url(folder / single["file"]),
        "embeddings": [n for n in names if n.startswith("image_embeddings")],
        "inputs": names,
        "outputs": [o["name"] for o in multi["outputs"]],
        "input_size": int(manifest["preprocessing"]["points"]["target_size"]),
        "mask_size": int(post["low_res_size"][0]),
        "pad_point": False,  # the graph appends the "not a point" token itself
    }


def embedding_payload(embeddings: list[torch.Tensor], folder: Path, dtype: str = EMBEDDING_DTYPE) -> dict:
    """Write the three maps (batch 1, finest first) one after the other into `folder`/embedding.bin
    in `dtype`; returns their layout for the page (names come from the decoder description)."""
    arrays = [e.detach().float().cpu().numpy().astype(dtype) for e in embeddings]
    path = folder / "embedding.bin"
    with open(path, "wb") as f:
        for a in arrays:
            f.write(np.ascontiguousarray(a).tobytes())
    return {
        "url": file_url(path),
        "dtype": dtype,
        "shapes": [list(a.shape) for a in arrays],
        "bytes": int(sum(a.nbytes for a in arrays)),
    }


def build_controls() -> tuple[gr.Checkbox, gr.Textbox, gr.Button]:
    """The setting, the page's panel (candidates and notes, drawn by the script), the hidden carrier
    of the image's embedding description and the hidden button the script presses to ask for it."""
    in_browser = gr.Checkbox(
        value=enabled_by_default(), label="Decode clicks in the browser", elem_id="point-browser-decode",
        info="The server computes the image's embedding once; each click is then decoded in this page.",
    )  # fmt: skip
    gr.HTML(
        '<div class="sam3-browser-status"></div><div class="sam3-browser-candidates"></div>'
        '<div class="sam3-browser-note"></div>',
        elem_id="point-browser-panel",
    )
    info = gr.Textbox(value="", elem_id="point-browser-info", elem_classes=["sam3-hidden"], interactive=False)
    fetch = gr.Button("embedding", elem_id="point-browser-fetch", elem_classes=["sam3-hidden"])
    return in_browser, info, fetch


@on_gpu(FEATURES_S)
def _tracker_embeddings(sam, rgb: np.ndarray) -> list[torch.Tensor]:
    entry = sam.image_predictor.set_image(rgb)
    return [e.detach().cpu() for e in sam.feature_store.tracker_embeddings(entry)]


def bind_embedding(slot, image, controls: tuple, state, reset: list) -> None:
    """Send the page a picture's embedding description when its script asks (it presses the hidden
    button when a new picture shows, only while the setting is on: the server path sees no extra event).

    reset: the server path's result outputs (candidates, status, PNG and COCO downloads), emptied with
    its prompts when the setting turns on over a server-path result: the page starts from the plain
    picture (whose appearance makes the script ask for the embedding)."""
    in_browser, info, fetch = controls
    graphs = ClickDecoderGraphs(slot.name)

    def describe(st: dict | None, on: bool) -> str:
        if not on:
            return gr.skip()
        if not st or st.get("image") is None:
            return ""
        if st.get("browser") is None:  # not yet made for this picture
            st["browser"] = _description(st)
        return st["browser"]

    def start_over(st: dict | None, on: bool) -> list:
        if not on or not st or st.get("image") is None:
            return [gr.skip()] * (1 + len(reset))
        if not (st["history"] or st["corner"] is not None or st["result"] is not None):
            return [gr.skip()] * (1 + len(reset))
        st.update(history=[], corner=None, result=None, choice=0)
        shown = [Image.fromarray(st["image"]), gr.Radio(choices=[], value=None), "Click on the object."]
        return shown + [gr.DownloadButton(value=None, interactive=False)] * (len(reset) - 2)

    def _description(st: dict) -> str:
        if slot.sam is None:
            return json.dumps({"error": f"no model is loaded ({slot.error})"})
        if not vendored():
            return json.dumps({"error": "onnxruntime-web is not installed on the server (make install)"})
        try:
            decoder = graphs.ensure(slot.sam)
            payload = embedding_payload(_tracker_embeddings(slot.sam, st["image"]), export_dir(st))
        except Exception as e:  # the page falls back to the server path and says why
            log.exception("browser decoding unavailable")
            return json.dumps({"error": str(e) or type(e).__name__})
        h, w = st["image"].shape[:2]
        return json.dumps({"height": h, "width": w, "decoder": decoder, "embedding": payload})

    fetch.click(describe, [state, in_browser], [info], show_progress="hidden")
    in_browser.change(start_over, [state, in_browser], [image, *reset], show_progress="hidden")
    js = "(info) => { window.sam3Browser && window.sam3Browser.setInfo(info); return info; }"
    info.change(None, [info], None, js=js)
