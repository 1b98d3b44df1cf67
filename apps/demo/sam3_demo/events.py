"""How the tabs answer events: an expected error keeps the user's work, and what the browser sends
(click coordinates, table rows) is checked before it is used.

Gradio blanks every output of a handler that raises `gr.Error` (red "Error" pills in place of the
image, the table, the status), although the tab's state is intact. `keep_work` turns such an error
into a message in the tab's status line and a warning toast, and leaves every other output as it
was (`gr.skip()`); the server log gets one line, not a traceback."""

from __future__ import annotations

import functools
import logging
import math
import numbers
import threading
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

log = logging.getLogger("sam3_demo")


def refusal(message: str, n_outputs: int, status_at: int, shown: dict[int, Any] | None = None) -> tuple:
    """The outputs of a refused event: `message` in the status output (index `status_at`), the
    outputs in `shown` (index -> value) set, every other output unchanged; and a warning toast."""
    gr.Warning(message)
    values: list[Any] = [gr.skip()] * n_outputs
    values[status_at] = f"⚠️ {message}"
    for index, value in (shown or {}).items():
        values[index] = value
    return tuple(values)


def keep_work(fn: Callable, n_outputs: int, status_at: int) -> Callable:
    """`fn`, whose `gr.Error` (an expected refusal) and any other exception (logged with its
    traceback) become a `refusal`: the message shows in the status output, the work stays."""

    @functools.wraps(fn)  # Gradio reads the handler's signature (events, progress) through it
    def handler(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as e:
            message = str(e.message)
            log.info("%s refused: %s", fn.__name__, message.replace("\n", " "))
        except Exception as e:  # a bug, not the user's doing: the traceback goes to the log
            log.exception("%s failed", fn.__name__)
            message = (
                f"Something went wrong ({type(e).__name__}: {e}). Your work is kept; "
                "the details are in the server log."
            )
        values = refusal(message, n_outputs, status_at)
        return values if n_outputs > 1 else values[0]

    return handler


class TabLock:
    """A browser tab's lock, kept in its state (`st["lock"]`): the tab's events run one at a time.
    Gradio runs one tab's events on several threads at once (up to --max-concurrency), and a video
    session (its decoder, its tracking state) takes one thread at a time. A copy (Gradio deep-copies
    the initial state for each tab; ZeroGPU pickles the state) is a new lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __deepcopy__(self, memo: dict) -> TabLock:
        return TabLock()

    def __reduce__(self):
        return (TabLock, ())

    def __enter__(self) -> TabLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def one_at_a_time(fn: Callable) -> Callable:
    """`fn`, holding the lock of the tab state among its arguments (a dict with a TabLock) while it runs."""

    @functools.wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> Any:
        st = next((a for a in args if isinstance(a, dict) and isinstance(a.get("lock"), TabLock)), None)
        if st is None:
            return fn(*args, **kwargs)
        with st["lock"]:
            return fn(*args, **kwargs)

    return handler


def bind(event: Callable, fn: Callable, inputs: list, outputs: list, status, **kwargs: Any):
    """`event(fn, inputs, outputs, **kwargs)` with `fn` wrapped by `keep_work`, its refusals shown
    in the output component `status`, and run under its tab's lock (`one_at_a_time`)."""
    return event(keep_work(one_at_a_time(fn), len(outputs), outputs.index(status)), inputs, outputs, **kwargs)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def event_index(evt: gr.EventData | None) -> Any:
    """The `index` a select event sent (None when there is none). The handlers take `gr.EventData`,
    not `gr.SelectData`, whose constructor fails with a bare KeyError on an event without `value`."""
    data = getattr(evt, "_data", None)
    return data.get("index") if isinstance(data, dict) else getattr(evt, "index", None)


def click_xy(evt: gr.EventData | None, shape: Sequence[int]) -> tuple[float, float]:
    """The (x, y) pixel of a click on an image of `shape` (H, W, ...), from the event's index.

    Raises gr.Error naming the value sent when it is not two numbers inside the image (an API call
    without a click, a crafted event)."""
    h, w = int(shape[0]), int(shape[1])
    index = event_index(evt)
    xy = None
    if isinstance(index, (list, tuple)) and len(index) == 2:
        x, y = (_number(v) for v in index)
        if x is not None and y is not None and 0 <= x <= w and 0 <= y <= h:
            xy = (x, y)
    if xy is None:
        raise gr.Error(
            f"A click must be two pixel coordinates [x, y] inside the {w}x{h} image; got {index!r}. "
            "Click on the image."
        )
    return xy


def table_row(evt: gr.EventData | None, n_rows: int) -> int:
    """The row of a click on a table of `n_rows` rows, from the event's index ([row, column]).

    Raises gr.Error naming the value sent when it is not a row of the table."""
    index = event_index(evt)
    row = index[0] if isinstance(index, (list, tuple)) and index else index
    if isinstance(row, bool) or not isinstance(row, numbers.Integral) or not 0 <= row < n_rows:
        raise gr.Error(f"The table has rows 1 to {n_rows}; the click named row index {row!r}. Click a row.")
    return int(row)
