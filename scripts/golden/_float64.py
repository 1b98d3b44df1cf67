"""The reference in float64, for the `_f64` golden cases.

`model.double()` leaves a few steps of the reference in float32: it casts with `.float()` before
`F.interpolate` (the decoder's upsampling of its masks, mask prompts, the memory encoder's mask
input), "for bf16". A float32 bilinear kernel rounds differently for different tensor shapes (the
reference upsamples all 3 candidate masks, sam3_core only the chosen one: 1 ulp apart), and the
memories, kept in bf16 by both, turn such ulps into 1e-3 steps. So while those methods run,
`.float()` leaves float64 tensors in float64 (sam3_core does the same: `dtypes.at_least_float32`).
Nothing else changes: the RoPE (ViT and memory attention) and the object pointers' temporal
encoding stay float32 in both, computed the same way (they agree to ~1e-15 after the cast back).
The patched methods must run no backbone (the video trackers' do not: features are computed before).
"""

from __future__ import annotations

import contextlib
import functools

import torch

_FLOAT = torch.Tensor.float

# The methods of the reference's trackers that upcast before interpolating.
INTERPOLATING_METHODS = ("_single_frame_forward", "_use_mask_as_output", "_encode_new_memory")


def _float_keeping_float64(self, *args, **kwargs):
    return self if self.dtype == torch.float64 else _FLOAT(self, *args, **kwargs)


@contextlib.contextmanager
def float_keeps_float64():
    """Within the block, `.float()` leaves float64 tensors in float64. Only around calls that run
    no backbone: the ViT's RoPE also casts with `.float()` (in float32 in both implementations)."""
    torch.Tensor.float = _float_keeping_float64
    try:
        yield
    finally:
        torch.Tensor.float = _FLOAT


def interpolate_in_float64(model_class: type, names: tuple[str, ...] = INTERPOLATING_METHODS) -> None:
    """Patch `model_class` (a reference tracker class) in place: inside `names`, `.float()` keeps
    float64 tensors in float64. Idempotent; fp32 and bf16 models are unaffected."""
    for name in names:
        method = getattr(model_class, name, None)
        if method is None or getattr(method, "_keeps_float64", False):
            continue

        @functools.wraps(method)
        def patched(*args, _method=method, **kwargs):
            with float_keeps_float64():
                return _method(*args, **kwargs)

        patched._keeps_float64 = True
        setattr(model_class, name, patched)
