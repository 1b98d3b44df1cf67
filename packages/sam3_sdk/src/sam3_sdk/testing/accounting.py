"""What a session holds: the tensors inside nested dicts and lists, and the bytes of their storages
(the tests use them to prove that memory stays bounded on long videos)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["held_nbytes", "held_tensors", "storage_nbytes", "tensors_in"]


def tensors_in(*parts: Any) -> list[Tensor]:
    """Every tensor inside `parts` (tensors, and dicts / lists / tuples of them, nested)."""
    found: list[Tensor] = []
    stack = list(parts)
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            found.append(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return found


def storage_nbytes(tensors: list[Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (views of one storage count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def held_tensors(obj: Any) -> list[Tensor]:
    """Every tensor an object's attributes hold (a video session's frames, cached features, prompts,
    outputs, detections...), inside dicts, lists and tuples; not inside other objects (a model, a
    frame source that reads the caller's video on demand)."""
    return tensors_in(vars(obj))


def held_nbytes(obj: Any) -> int:
    """Bytes held by `obj`'s tensors (`held_tensors`; distinct storages counted once)."""
    return storage_nbytes(held_tensors(obj))
