"""Opt-in faster modes that trade exactness or start-up time for speed. Off by default: the
default paths match the reference within 1e-4 in float32; these do not promise that (the README's
Speed section states each mode's measured deviation).

- `quantize_linear_int8`: int8 dynamic quantisation of the linear layers (CPU, float32 models):
  weights stored as int8, activations quantised per call.
- `compile_model`: `torch.compile` on a model's heavy parts, in place (parameter names unchanged).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torch.ao.quantization import quantize_dynamic

__all__ = ["COMPILED_PARTS", "compile_model", "quantize_linear_int8"]

# The submodules worth compiling, where a model has them (the rest is cheap or runs once).
COMPILED_PARTS = ("vision_encoder", "memory_attention", "mask_decoder", "detr_encoder", "detr_decoder")


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """Replace every `nn.Linear` of a float32 CPU model by an int8 dynamically quantised one, in place.

    Args:
        model: a model on the CPU in float32 (quantised kernels exist for CPU float32 inputs only).

    Returns:
        the same model object. Checkpoint loading no longer applies to it (the weights are int8):
        load first, then quantise.
    """
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        raise ValueError("int8 dynamic quantisation runs on the CPU; move the model with .cpu() first")
    if any(p.dtype != torch.float32 for p in params if p.is_floating_point()):
        raise ValueError("int8 dynamic quantisation needs a float32 model; call .float() first")
    with warnings.catch_warnings():
        # torch flags its quantised-tensor API as deprecated; it is what runs these kernels today.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)


def compile_model(model: nn.Module, parts: Sequence[str] = COMPILED_PARTS, **compile_kwargs) -> nn.Module:
    """Compile a model's heavy submodules with `torch.compile`, in place (`nn.Module.compile`, so
    parameter names and `state_dict` keys stay as they are).

    The first call at each new input shape compiles (seconds to minutes); later calls are faster.

    Args:
        model: any sam3_core model.
        parts: names of the direct submodules to compile; those the model lacks are skipped.
        compile_kwargs: passed to `torch.compile` (e.g. `mode="max-autotune"`, `dynamic=False`).

    Returns:
        the same model object.
    """
    compiled = []
    for name in parts:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            module.compile(**compile_kwargs)
            compiled.append(name)
    if not compiled:
        raise ValueError(f"{type(model).__name__} has none of the parts {list(parts)} to compile")
    return model
