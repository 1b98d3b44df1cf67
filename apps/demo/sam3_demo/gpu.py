"""ZeroGPU: on a Hugging Face Space with ZeroGPU hardware, a GPU is attached only while a function
wrapped by `spaces.GPU` runs. Without the `spaces` package (locally, on CPU or a dedicated GPU)
`on_gpu` returns the function unchanged.

ZeroGPU runs a wrapped call in a worker process and sends its return value back: the wrapped
functions are the event handlers, whose outputs (the tab state included) Gradio applies."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

try:
    import spaces
except ImportError:  # not on a Space: nothing to wrap
    spaces = None

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("sam3_demo.calls")

# Set on every handler `on_gpu` wraps: the app puts them in one queue group (see ui.bound_model_calls).
MODEL_CALL = "_sam3_model_call"

# Seconds of GPU time asked for per call: a click decodes one prompt; a concept search runs the
# detector once; an upload computes one image's features.
CLICK_S = 20
CONCEPT_S = 40
FEATURES_S = 20
PROPAGATE_BASE_S, PROPAGATE_PER_FRAME_S, PROPAGATE_MAX_S = 20, 0.25, 300


def on_gpu(duration: float | Callable[..., float]) -> Callable[[F], F]:
    """Decorator: `spaces.GPU(duration=duration)` when `spaces` is importable, else the identity.

    `duration` is seconds, or a function of the wrapped function's arguments returning seconds.
    The returned handler is marked as a model call (MODEL_CALL) for the app's queue group.
    """

    def wrap(fn: F) -> F:
        wrapped = fn if spaces is None else spaces.GPU(duration=duration)(fn)
        setattr(wrapped, MODEL_CALL, True)
        return wrapped

    return wrap


_running = 0
_running_lock = threading.Lock()


def logged(fn: F) -> F:
    """`fn`, logging when each call starts (with how many model calls then run) and how long it took:
    what an operator needs to see the queue at work. Gradio reads the handler's signature through
    `functools.wraps`."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        global _running
        with _running_lock:
            _running += 1
            log.info("model call %s started (%d running)", fn.__name__, _running)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            with _running_lock:
                _running -= 1
            log.info("model call %s ended after %.2f s", fn.__name__, time.perf_counter() - start)

    return call  # type: ignore[return-value]


def propagate_seconds(num_frames: int) -> float:
    """GPU seconds asked for to track through `num_frames` frames (capped at PROPAGATE_MAX_S)."""
    return min(PROPAGATE_MAX_S, PROPAGATE_BASE_S + PROPAGATE_PER_FRAME_S * max(0, int(num_frames)))
