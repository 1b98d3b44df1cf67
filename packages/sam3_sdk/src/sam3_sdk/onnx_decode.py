"""Running the exported click decoder in onnxruntime the way the SDK decodes a click: the same
coordinate scaling, candidate order, upsampling and threshold, so the boolean masks equal
`Sam3.segment_object` / `ImagePredictor.predict` for the same prompts (up to pixels whose logit is
within the graph's rounding of 0).

    import onnxruntime as ort
    manifest = load_manifest("onnx/sam3")
    session = ort.InferenceSession("onnx/sam3/click_decoder.onnx")
    result = decode_click(manifest, session, embeddings, (height, width), points=[(210, 350)])
    result.masks[0]    # (H, W) bool, the best candidate

`embeddings` are the three maps of `get_image_embeddings` (from PyTorch or the image-encoder graph).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ClickResult", "OnnxClickDecoder", "click_inputs", "decode_click", "load_manifest"]


@dataclass
class ClickResult:
    """masks (M, H, W) bool at the image size, best first; scores (M,) predicted IoU in [0, 1];
    low_res_logits (M, h, w) (feed one back as `mask_logits`); object_score_logit: presence logit."""

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray
    object_score_logit: float


def load_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {folder}; export with `sam3 export onnx` first")
    return json.loads(path.read_text())


def click_inputs(
    manifest: dict[str, Any],
    embeddings: list[np.ndarray] | tuple[np.ndarray, ...],
    original_size: tuple[int, int],
    points: Any = None,
    labels: Any = None,
    box: Any = None,
    mask_logits: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The click decoder's input feed for prompts in original-image pixels.

    points (N, 2) x, y; labels (N,) 1 / 0 (default all 1); box (x1, y1, x2, y2); mask_logits (h, w)
    low-resolution logits of an earlier result.
    """
    if len(embeddings) != 3:
        raise ValueError(f"embeddings must be the 3 maps of get_image_embeddings, got {len(embeddings)}")
    height, width = (int(v) for v in original_size)
    target = manifest["preprocessing"]["points"]["target_size"]
    # float32 as the processor computes it: coordinate * (target / size)
    scale = np.array(
        [np.float32(target) / np.float32(width), np.float32(target) / np.float32(height)], np.float32
    )
    coords, labs = [], []
    if points is not None:
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        coords.append(pts * scale)
        lab = np.ones(len(pts), np.float32) if labels is None else np.asarray(labels, np.float32).reshape(-1)
        if len(lab) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(lab)} labels; give one label per point")
        labs.append(lab)
    if box is not None:
        corners = np.asarray(box, dtype=np.float32).reshape(2, 2)
        coords.append(corners * scale)
        labs.append(np.array([2, 3], np.float32))
    if not coords:
        if mask_logits is None:
            raise ValueError("give at least one prompt: points, a box or mask_logits")
        # the model's own "no point, no box" prompt: a not-a-point at (0, 0) (plus the graph's own)
        coords.append(np.zeros((1, 2), np.float32))
        labs.append(np.array([-1], np.float32))
    size = manifest["postprocessing"]["low_res_size"]
    feed = {
        f"image_embeddings_{i}": np.ascontiguousarray(e, dtype=np.float32) for i, e in enumerate(embeddings)
    }
    feed["point_coords"] = np.concatenate(coords)[None]
    feed["point_labels"] = np.concatenate(labs)[None]
    if mask_logits is not None:
        mask = np.asarray(mask_logits, dtype=np.float32)
        if mask.shape != tuple(size):
            raise ValueError(
                f"mask_logits must be {tuple(size)} low-resolution logits, got shape {mask.shape}"
            )
        feed["mask_input"], feed["has_mask_input"] = mask[None, None], np.ones(1, np.float32)
    else:
        feed["mask_input"] = np.zeros((1, 1, *size), np.float32)
        feed["has_mask_input"] = np.zeros(1, np.float32)
    return feed


def decode_click(
    manifest: dict[str, Any],
    session: Any,
    embeddings: list[np.ndarray] | tuple[np.ndarray, ...],
    original_size: tuple[int, int],
    points: Any = None,
    labels: Any = None,
    box: Any = None,
    mask_logits: np.ndarray | None = None,
) -> ClickResult:
    """Run the click decoder `session` (an onnxruntime InferenceSession of click_decoder or
    click_decoder_single) and post-process as the SDK does."""
    feed = click_inputs(manifest, embeddings, original_size, points, labels, box, mask_logits)
    low_res, iou, obj = session.run(["low_res_masks", "iou_scores", "object_score_logits"], feed)
    scores = iou[0]
    order = np.argsort(-scores, kind="stable")
    logits = low_res[0][order]
    up = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(logits))[None],
        size=tuple(int(v) for v in original_size),
        mode="bilinear",
        align_corners=False,
    )[0]
    threshold = manifest["postprocessing"]["threshold"]
    return ClickResult(
        masks=(up > threshold).numpy(),
        scores=np.clip(scores[order], 0, 1),
        low_res_logits=logits,
        object_score_logit=float(obj.reshape(-1)[0]),
    )


class OnnxClickDecoder:
    """Both click graphs of an export folder, picking one as the SDK does: 3 candidates for a single
    click without a box, else one mask (or as `multimask` says)."""

    def __init__(self, folder: str | os.PathLike, fp16: bool = False, providers: list[str] | None = None):
        import onnxruntime as ort

        self.folder = Path(folder)
        self.manifest = load_manifest(folder)
        self.sessions = {}
        for name in ("click_decoder", "click_decoder_single"):
            entry = self.manifest["graphs"][name]
            file = entry["fp16_file"] if fp16 else entry["file"]
            self.sessions[name] = ort.InferenceSession(
                str(self.folder / file), providers=providers or ["CPUExecutionProvider"]
            )

    def predict(
        self,
        embeddings: list[np.ndarray] | tuple[np.ndarray, ...],
        original_size: tuple[int, int],
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask_logits: np.ndarray | None = None,
        multimask: bool | None = None,
    ) -> ClickResult:
        if multimask is None:
            single_click = points is not None and len(np.asarray(points).reshape(-1, 2)) == 1
            multimask = single_click and box is None
        session = self.sessions["click_decoder" if multimask else "click_decoder_single"]
        return decode_click(
            self.manifest, session, embeddings, original_size, points, labels, box, mask_logits
        )
