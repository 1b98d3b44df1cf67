"""Numbers in public arguments: numpy's integers and floats are accepted wherever a Python int or float
is, because callers get them from numpy all the time (`np.argmax`, iterating an array), and they are
turned into Python numbers at the boundary, so nothing downstream holds a numpy scalar (object ids are
dict keys and appear in outputs: `np.int64(1)` hashes like `1` but prints as `np.int64(1)`).

A bool, Python's or numpy's, is refused where a number is expected: `True` given as a frame index or
an object id is a mistake far more often than a way to write 1."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_int", "is_int", "is_number"]


def is_int(value: object) -> bool:
    """Whether `value` is an integer (Python's or numpy's, any width), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value: object) -> bool:
    """Whether `value` is a real number (an integer or a float, Python's or numpy's), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def as_int(name: str, value: object, low: int | None = None) -> int:
    """`value` as a Python int; TypeError naming `name` and the value unless it is an integer (see
    `is_int`), ValueError when it is below `low`."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)  # type: ignore[call-overload]
    if low is not None and value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return value
