"""`LRUCache`: eviction order, recency on read, resizing; and the SDK's feature store bounded by it."""

from __future__ import annotations

import pytest
from sam3_sdk import LRUCache
from test_images import make_image


def test_evicts_the_least_recently_used():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert list(cache) == ["a", "c"] and "b" not in cache and len(cache) == 2
    assert cache.get("b") is None and cache.get("b", -1) == -1


def test_peek_does_not_refresh_and_put_replaces():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1
    cache.put("c", 3)  # "a" was only peeked at: it goes
    assert list(cache) == ["b", "c"]
    cache.put("b", 20)
    assert list(cache) == ["c", "b"] and cache.get("b") == 20


def test_shrinking_evicts_at_once_and_bad_sizes_are_refused():
    cache: LRUCache[int, str] = LRUCache(4)
    for i in range(4):
        cache.put(i, str(i))
    cache.maxsize = 2
    assert list(cache) == [2, 3]
    assert cache.pop(2) == "2" and list(cache) == [3]
    cache.clear()
    assert len(cache) == 0
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="maxsize must be an int >= 1"):
            LRUCache(bad)


def test_image_features_are_bounded_by_cache_size(sam):
    images = [make_image(40, 50, seed=100 + i) for i in range(4)]
    before = sam.cache_size
    try:
        sam.cache_size = 2
        entries = [sam.features(image) for image in images[:3]]
        assert len(sam.feature_store) == 2
        assert sam.features(images[2]) is entries[2]  # still cached
        assert sam.features(images[0]) is not entries[0]  # evicted, made again
        sam.cache_size = 0  # at least one image is always kept
        assert len(sam.feature_store) == 1 and sam.cache_size == 0
    finally:
        sam.cache_size = before
