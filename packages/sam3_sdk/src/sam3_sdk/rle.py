"""COCO run-length encoding of binary masks (the compressed string form pycocotools writes)."""

from __future__ import annotations

import numpy as np

__all__ = ["mask_to_rle", "rle_to_mask", "rle_area"]


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """Lengths of alternating runs of 0s then 1s over the column-major (Fortran) pixel order."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds)
    return np.concatenate([[0], runs]) if flat[0] else runs


def _encode_counts(runs: np.ndarray) -> str:
    # pycocotools' LEB128-like text encoding: 5 bits per char, deltas from the run two back.
    out = []
    for i, value in enumerate(runs.tolist()):
        x = value - runs[i - 2] if i > 2 else value
        x = int(x)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _decode_counts(text: str) -> list[int]:
    counts: list[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def mask_to_rle(mask: np.ndarray) -> dict:
    """(H, W) boolean mask → {"size": [H, W], "counts": str} in COCO's compressed RLE."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2D (H, W), got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _encode_counts(_run_lengths(mask))}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Inverse of `mask_to_rle` (also accepts uncompressed `counts` lists)."""
    h, w = rle["size"]
    counts = rle["counts"]
    counts = _decode_counts(counts) if isinstance(counts, str) else list(counts)
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts cover {flat.size} pixels but size {h}x{w} needs {h * w}")
    return flat.reshape((h, w), order="F")


def rle_area(rle: dict) -> int:
    counts = rle["counts"]
    counts = _decode_counts(counts) if isinstance(counts, str) else list(counts)
    return int(sum(counts[1::2]))
