"""Test tooling, kept off the runtime path: checkpoints with RANDOM weights, the tiny tokenizer they
ship, and the accounting of what a video session holds.

No runtime module imports this package (tests/sdk/test_import_layers.py checks it): `Sam3`,
`VideoTracker` and the core's `from_pretrained` load hub ids and folders only, and never write
weights. The edges that accept a random checkpoint's name (the `sam3` CLI, the demo, the scripts
and benchmarks) call `resolve_name` first:

    from sam3_sdk.testing import resolve_name
    sam = Sam3.from_pretrained(resolve_name("tiny-random"))   # written into $SAM3_CACHE on first use
"""

from .accounting import held_nbytes, held_tensors, storage_nbytes, tensors_in
from .random_checkpoint import (
    RANDOM_CHECKPOINTS,
    TINY_RANDOM,
    TINY_RANDOM_EDGETAM,
    TINY_RANDOM_LITE_TEXT,
    hub_manifest,
    lite_text_config,
    make_state_dict,
    resolve_name,
    tensor_values,
    tiny_random_checkpoint,
    tiny_random_edgetam_checkpoint,
    tiny_random_lite_text_checkpoint,
    write_random_checkpoint,
    write_random_weights,
)
from .tiny_tokenizer import build_tiny_tokenizer, write_tiny_tokenizer

__all__ = [
    "RANDOM_CHECKPOINTS",
    "TINY_RANDOM",
    "TINY_RANDOM_EDGETAM",
    "TINY_RANDOM_LITE_TEXT",
    "build_tiny_tokenizer",
    "held_nbytes",
    "held_tensors",
    "hub_manifest",
    "lite_text_config",
    "make_state_dict",
    "resolve_name",
    "storage_nbytes",
    "tensor_values",
    "tensors_in",
    "tiny_random_checkpoint",
    "tiny_random_edgetam_checkpoint",
    "tiny_random_lite_text_checkpoint",
    "write_random_checkpoint",
    "write_random_weights",
    "write_tiny_tokenizer",
]
