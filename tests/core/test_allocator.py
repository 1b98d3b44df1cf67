"""Loading a model keeps large tensors in glibc's heap: a freed 64 MB map is reused by the next call
instead of being mapped and faulted in again page by page (SAM3_MALLOC_TUNING=0 keeps the defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sam3_core import allocator

# Loads the tiny checkpoint, then allocates and frees a 64 MB tensor 10 times; prints the page faults
# of the last 9 (a fresh 64 MB mapping is 16384 faults of 4 KiB pages).
SCRIPT = """
import json, resource, sys, torch
from sam3_core import Sam3TrackerModel
Sam3TrackerModel.from_pretrained(sys.argv[1])
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(10):
    if i == 1:
        start = faults()
    x = torch.empty(16 << 20, dtype=torch.float32).fill_(1.0)
    del x
print(json.dumps({"faults": faults() - start}))
"""

needs_glibc = pytest.mark.skipif(allocator._GLIBC is None, reason="tunes glibc's malloc only")


def _faults_after_loading(checkpoint_dir, tuning: str) -> int:
    env = {**os.environ, allocator.ENV_SWITCH: tuning}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(checkpoint_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["faults"]


@needs_glibc
def test_loading_a_model_lets_the_heap_reuse_large_maps(tiny_checkpoint_dir):
    tuned = _faults_after_loading(tiny_checkpoint_dir, "1")
    default = _faults_after_loading(tiny_checkpoint_dir, "0")
    assert default > 9 * 16384 * 0.9, default  # glibc's default: every 64 MB block is a new mapping
    # tuned: the freed block is taken again from the heap (glibc's best fit may place one elsewhere)
    assert tuned < 2 * 16384, tuned


@pytest.mark.parametrize("value", [0, -1, 2**31, 1.5, True, "1"])
def test_thresholds_are_checked(value):
    with pytest.raises(ValueError, match="trim_threshold"):
        allocator.tune_allocator(trim_threshold=value)


@pytest.mark.parametrize("value", [0, -1, 2**31, 1.5, True, "1"])
def test_arena_count_is_checked(value):
    with pytest.raises(ValueError, match="arenas"):
        allocator.limit_arenas(value)


@needs_glibc
def test_release_memory_returns_the_kept_heap():
    import torch

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    allocator.tune_allocator()
    blocks = [torch.ones(8 << 20) for _ in range(8)]  # 8 x 32 MB in the heap
    held = rss_mb()
    del blocks
    allocator.release_memory()
    assert rss_mb() < held - 200, (held, rss_mb())
