"""`BatchEncoding`: what the processors return, a dict of model inputs with `.to()`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class BatchEncoding(dict):
    """The processor's output: a dict of tensors (so `model(**inputs)` works) with `.to()`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: str | torch.device | torch.dtype | None = None, dtype: torch.dtype | None = None):
        """Move every tensor to `device`; cast floating tensors to `dtype` (e.g. `.to(torch.bfloat16)`)."""
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
