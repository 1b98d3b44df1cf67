"""What a session holds: the tensors inside nested dicts and lists, and the bytes of their storages
(the tests use them to prove that memory stays bounded on long videos)."""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import Tensor

__all__ = ["held_nbytes", "held_tensors", "storage_nbytes", "tensors_in"]


def tensors_in(*parts: Any) -> list[Tensor]:
    """Every tensor inside `parts` (tensors, and dicts / lists / tuples / deques of them, nested,
    and the attributes of the video core's own state objects: a session's outputs, its detection
    cache)."""
    found: list[Tensor] = []
    stack, seen = list(parts), set()
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            found.append(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, deque, set)):
            stack.extend(x)
        elif _is_session_part(x) and id(x) not in seen:
            seen.add(id(x))
            stack.extend(vars(x).values())
    return found


def _is_session_part(x: Any) -> bool:
    """An object of sam3_core's video state (sam3_core.video's classes; a model's modules are not
    the session's own memory)."""
    module = type(x).__module__ or ""
    return (
        module.startswith("sam3_core.video.")
        and hasattr(x, "__dict__")
        and not isinstance(x, torch.nn.Module)
    )


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
