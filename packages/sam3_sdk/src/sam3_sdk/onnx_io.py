"""Writing ONNX graphs: trace a module with torch's ONNX exporter, make its fp16 variant, describe
its inputs and outputs for the manifest.

Exporter: `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript). The legacy TorchScript
exporter cannot export the single-mask decoder (it has no `take_along_dim`, which picks the best
candidate when the single mask is unstable) and is deprecated; the dynamo exporter handles every
graph here and keeps the number of points symbolic (`torch.export.Dim`).

fp16 variants keep the fp32 graphs' inputs, outputs and arithmetic and store the weights in
float16 (each large fp32 weight becomes an fp16 initializer plus a `Cast` to float32): half the file
size (what a browser downloads), runnable by any onnxruntime build (many CPU kernels have no fp16
version), with a deviation from fp32 that is only the weights' rounding (measured in the tests).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["OPSET", "describe", "export_graph", "fp16_weights"]

OPSET = 18  # onnxruntime-web and onnxruntime >= 1.14 run it
FP16_MIN_ELEMENTS = 16  # smaller weights (biases of tiny layers, scalars) stay fp32
LARGE_GRAPH_BYTES = (
    1_800_000_000  # above this the weights go to an external `.data` file (2 GB protobuf limit)
)


def export_graph(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: str | os.PathLike,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    dynamic: dict[str, dict[int, str]] | None = None,
) -> Path:
    """Trace `module(*args)` into an ONNX file at `path`.

    dynamic: input name -> {axis: symbolic dim name}; the same name on several inputs is one dim.
    Raises RuntimeError naming the graph when the exporter fails.
    """
    path = Path(path)
    dims: dict[str, Any] = {}
    shapes = []
    for name in input_names:
        axes = (dynamic or {}).get(name)
        if not axes:
            shapes.append(None)
            continue
        spec = {}
        for axis, dim_name in axes.items():
            if dim_name not in dims:
                dims[dim_name] = torch.export.Dim(dim_name, min=1, max=4096)
            spec[axis] = dims[dim_name]
        shapes.append(spec)
    module = module.eval()
    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), torch.no_grad(), _traceable():
            warnings.simplefilter("ignore")
            # One real run first: the models' lazily built tables (RoPE cos/sin, position encodings)
            # are then real tensors, which the trace takes as constants; built during the trace they
            # would be the tracer's fake tensors, left in the model's caches afterwards.
            module(*args)
            program = torch.onnx.export(
                module,
                args,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamo=True,
                dynamic_shapes=tuple(shapes) if dynamic else None,
                opset_version=OPSET,
                verbose=False,
            )
    except Exception as exc:  # the exporter's own message says which op or shape failed
        raise RuntimeError(f"the ONNX exporter failed on {path.name}: {type(exc).__name__}: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    # the weights the graph keeps (a wrapper's module may hold parts that the graph never reads)
    size = sum(
        v.const_value.nbytes for v in program.model.graph.initializers.values() if v.const_value is not None
    )
    program.save(str(path), external_data=size > LARGE_GRAPH_BYTES)
    return path


@contextlib.contextmanager
def _traceable():
    """The models' speed-only branches off while tracing: the feed-forward layers cut large inputs
    into chunks of rows (a branch on the row count, which a symbolic dim cannot take, and a loop the
    graph would unroll); rows are independent, so one piece gives the same numbers."""
    from sam3_core.modeling import layers

    saved = layers.FEED_FORWARD_CHUNK_BYTES
    layers.FEED_FORWARD_CHUNK_BYTES = 2**62
    # the exporter logs a warning per torchvision op it cannot register (we use none of them)
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        yield
    finally:
        layers.FEED_FORWARD_CHUNK_BYTES = saved
        registration.setLevel(level)


def fp16_weights(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write a copy of the graph at `src` whose float32 weights are stored as float16 and cast back
    to float32 where they are read: same inputs, outputs and fp32 arithmetic, half the bytes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < FP16_MIN_ELEMENTS:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    dst = Path(dst)
    large = model.ByteSize() > LARGE_GRAPH_BYTES
    onnx.save(model, str(dst), save_as_external_data=large, location=dst.name + ".data" if large else None)
    return dst


_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.int64: "int64", torch.bool: "bool"}


def describe(
    names: tuple[str, ...], tensors: tuple[Tensor, ...], dynamic: dict[str, dict[int, str]] | None = None
) -> list[dict[str, Any]]:
    """Manifest entries [{name, shape, dtype}] of example tensors; dynamic axes get their names."""
    out = []
    for name, tensor in zip(names, tensors, strict=True):
        shape: list[int | str] = list(tensor.shape)
        for axis, dim_name in (dynamic or {}).get(name, {}).items():
            shape[axis] = dim_name
        out.append({"name": name, "shape": shape, "dtype": _DTYPES[tensor.dtype]})
    return out
