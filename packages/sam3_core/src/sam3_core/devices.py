"""`infer_device`: the best accelerator torch can use here."""

from __future__ import annotations

import torch

__all__ = ["infer_device"]


def infer_device() -> str:
    """ "cuda", "xpu", "mps" or "cpu": the first that torch reports as available."""
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return "xpu"
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
