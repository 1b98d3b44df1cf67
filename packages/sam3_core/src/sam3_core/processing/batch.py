"""`BatchEncoding`: what the processors return, a dict of model inputs with `.to()`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class BatchEncoding(dict):
    """A processor's output: a dict of tensors (so `model(**inputs)` works), with attribute access
    (`inputs.pixel_values`) and `.to(device, dtype)`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"processor output has no {name!r}; it has {sorted(self)}") from None

    def to(
        self, device: str | torch.device | torch.dtype | None = None, dtype: torch.dtype | None = None
    ) -> BatchEncoding:
        """Move every tensor to `device`; cast floating tensors (pixel values, boxes, points) to
        `dtype` when given (`.to(torch.bfloat16)` casts only)."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        out = BatchEncoding()
        for key, value in self.items():
            if isinstance(value, Tensor):
                value = value.to(device) if device is not None else value
                if dtype is not None and value.is_floating_point():
                    value = value.to(dtype)
            out[key] = value
        return out
