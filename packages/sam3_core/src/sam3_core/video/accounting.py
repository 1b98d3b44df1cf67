"""What a session holds: the tensors inside nested dicts and lists, and the bytes of their storages
(used to prove that memory stays bounded on long videos)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["tensors_in", "storage_nbytes"]


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
