"""One propagation at a time: the lock and the busy rule of an interactive video session.

Every call of a session holds its lock; a propagation holds it for each frame it computes, and
while one is under way (started and not finished, closed or garbage-collected) another
propagation or a prompt change is refused with `SessionBusyError`, since either would mix into
the tracking state the running one reads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["PropagationGuard", "SessionBusyError", "changes_state"]

T = TypeVar("T")


class SessionBusyError(RuntimeError):
    """A call refused because a propagation of the session is under way."""


class PropagationGuard:
    """A session's lock, whether a propagation is under way, and how often the session was closed
    (a propagation stops when that changes under it). `name` names the session in errors."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.propagating = False
        self.closes = 0

    def refuse(self, what: str) -> None:
        """Raise `SessionBusyError` while a propagation is under way."""
        if self.propagating:
            raise SessionBusyError(
                f"{self.name}.{what}: a propagation of this session is under way (in this thread or "
                "another); let it finish or close its iterator first (one propagation at a time; "
                "prompt changes would mix into its tracking state)"
            )

    def close(self) -> None:
        """The session is being closed: a propagation under way stops at its next frame."""
        with self.lock:
            self.closes += 1

    def run(self, steps: Iterator[T]) -> Iterator[T]:
        """`steps` as one propagation: each item computed under the lock; the session counts as
        propagating from the first item until the steps end or the iterator is closed."""
        with self.lock:
            self.refuse("propagate")
            self.propagating = True
            closes = self.closes
        try:
            while True:
                with self.lock:
                    if self.closes != closes:
                        raise RuntimeError(
                            f"{self.name}.propagate: the session was closed during propagation"
                        )
                    try:
                        result = next(steps)
                    except StopIteration:
                        return
                yield result
        finally:
            with self.lock:
                self.propagating = False
                close = getattr(steps, "close", None)
                if close is not None:
                    close()


def changes_state(method: Callable[..., T]) -> Callable[..., T]:
    """A session call that changes prompts or objects: run under the session's lock (`_guard`),
    and refused while a propagation is under way."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> T:
        with self._guard.lock:
            self._guard.refuse(method.__name__)
            return method(self, *args, **kwargs)

    return call
