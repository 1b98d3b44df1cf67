"""ZeroGPU: on a Hugging Face Space with ZeroGPU hardware, a GPU is attached only while a function
wrapped by `spaces.GPU` runs. Without the `spaces` package (locally, on CPU or a dedicated GPU)
`on_gpu` returns the function unchanged.

ZeroGPU runs a wrapped call in a worker process and sends its return value back: the wrapped
functions are the event handlers, whose outputs (the tab state included) Gradio applies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

try:
    import spaces
except ImportError:  # not on a Space: nothing to wrap
    spaces = None

F = TypeVar("F", bound=Callable[..., Any])

# Seconds of GPU time asked for per call: a click decodes one prompt; a concept search runs the
# detector once; an upload computes one image's features.
CLICK_S = 20
CONCEPT_S = 40
FEATURES_S = 20
PROPAGATE_BASE_S, PROPAGATE_PER_FRAME_S, PROPAGATE_MAX_S = 20, 0.25, 300


def on_gpu(duration: float | Callable[..., float]) -> Callable[[F], F]:
    """Decorator: `spaces.GPU(duration=duration)` when `spaces` is importable, else the identity.

    `duration` is seconds, or a function of the wrapped function's arguments returning seconds.
    """

    def wrap(fn: F) -> F:
        if spaces is None:
            return fn
        return spaces.GPU(duration=duration)(fn)

    return wrap


def propagate_seconds(num_frames: int) -> float:
    """GPU seconds asked for to track through `num_frames` frames (capped at PROPAGATE_MAX_S)."""
    return min(PROPAGATE_MAX_S, PROPAGATE_BASE_S + PROPAGATE_PER_FRAME_S * max(0, int(num_frames)))
