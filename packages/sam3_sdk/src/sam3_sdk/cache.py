"""`LRUCache`: a small bounded mapping that forgets the least recently used entry first."""

from __future__ import annotations

import numbers
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most `maxsize` entries; reading (`get`) or writing (`put`) an entry makes it the most recent,
    and a `put` beyond `maxsize` evicts the least recent ones.

    `maxsize` can be changed later (shrinking evicts at once); it must be at least 1. Safe to share
    between threads: each call holds the cache's lock (the feature store and the text cache are
    read by every handler thread of the demo).

    >>> cache: LRUCache[str, int] = LRUCache(2)
    >>> cache.put("a", 1); cache.put("b", 2); cache.get("a"); cache.put("c", 3)
    >>> list(cache)  # "b" was the least recently used
    ['a', 'c']
    """

    def __init__(self, maxsize: int) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.RLock()  # a get's check and move_to_end must see the same entries
        self.maxsize = maxsize

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {value!r}")
        with self._lock:
            self._maxsize = int(value)
            self._evict()

    def get(self, key: K, default: V | None = None) -> V | None:
        """The entry of `key` (now the most recent), or `default` when there is none."""
        with self._lock:
            if key not in self._entries:
                return default
            self._entries.move_to_end(key)
            return self._entries[key]

    def peek(self, key: K, default: V | None = None) -> V | None:
        """The entry of `key` without making it more recent, or `default`."""
        with self._lock:
            return self._entries.get(key, default)

    def put(self, key: K, value: V) -> None:
        """Store `value` under `key` as the most recent entry, evicting beyond `maxsize`."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            self._evict()

    def _evict(self) -> None:
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            return self._entries.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        """Keys from the least to the most recently used."""
        with self._lock:
            return iter(list(self._entries))

    def __repr__(self) -> str:
        return f"LRUCache(maxsize={self._maxsize}, size={len(self)})"
