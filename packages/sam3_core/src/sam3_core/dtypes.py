"""Names of the dtypes the models run in, as users write them (`"bf16"`, `torch.bfloat16`, ...)."""

from __future__ import annotations

import torch

__all__ = ["as_dtype", "at_least_float32"]

_NAMED = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """A torch dtype from a dtype, one of its names, or None / "auto" (float32)."""
    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _NAMED:
        raise ValueError(
            f"dtype {dtype!r} is not supported; expected one of {sorted(_NAMED)} or a torch.dtype"
        )
    return _NAMED[dtype]


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """`x` in float32 where it is narrower (bf16, fp16, integers), float64 left as it is.

    For the steps computed in float32 for bf16 models (mask interpolations, Fourier features): a
    float64 model then stays float64 through them, so that parity checks in float64
    see differences of logic rather than float32 rounding (float32 kernels round differently for
    different tensor shapes, e.g. bilinear upsampling of 1 channel vs 3).
    """
    return x if x.dtype == torch.float64 else x.float()
