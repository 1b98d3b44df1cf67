"""glibc's allocator settings for a process that runs these models on the CPU.

A forward pass allocates and frees many maps of 20-100 MB (a 1008 px image is 72x72 tokens of 1024
floats; the detector's finest maps are 256x288x288). glibc serves blocks above its mmap threshold
(at most 32 MB by default) with fresh mappings and hands freed memory at the top of its heap back
once more than the trim threshold is free, so each such map is faulted in again, page by page, on
every call: about 100 000 page faults per backbone pass here. Keeping them in the heap, measured on
an idle 2-core CPU (fp32, 4-block ViT at 1008 px): backbone + FPN 4.0 → 3.6 s, concept heads 2.8 →
2.1 s, an EdgeTAM frame 1.05 → 0.76 s. Peak RSS over a 720p video: 60 frames, SAM 3 tracker
0.94 → 0.89 GB, EdgeTAM 0.64 → 0.81 GB; 300 frames, 1.51 → 1.49 GiB and 1.28 → 1.32 GiB.
Afterwards the process keeps up to `trim_threshold` of freed heap, which `release_memory` hands back.

Every model loader (`checkpoint.build_from_checkpoint`) calls `tune_on_first_load`: once per process;
set SAM3_MALLOC_TUNING=0 to keep glibc's defaults. Elsewhere (macOS, Windows, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

from .scalars import is_int

__all__ = ["limit_arenas", "release_memory", "tune_allocator", "tune_on_first_load"]

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

DEFAULT_MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap and are reused
DEFAULT_TRIM_THRESHOLD = 512 << 20  # keep up to 512 MiB of freed heap for the next call
ENV_SWITCH = "SAM3_MALLOC_TUNING"


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    # malloc_trim and mallopt together mean glibc (musl and macOS's libc lack malloc_trim)
    if libc is None or not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):
        return None
    return libc


_GLIBC = _glibc()
_tuned_on_load = False


def tune_allocator(
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD, trim_threshold: int = DEFAULT_TRIM_THRESHOLD
) -> bool:
    """Serve blocks below `mmap_threshold` bytes from glibc's heap and keep up to `trim_threshold`
    bytes of it when freed. Process-wide. Returns False where the C library is not glibc."""
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not is_int(value) or not 0 < value < 2**31:
            raise ValueError(f"{name} must be a positive number of bytes below 2 GiB, got {value!r}")
    mmap_threshold, trim_threshold = int(mmap_threshold), int(trim_threshold)  # ctypes takes Python ints
    if _GLIBC is None:
        return False
    return bool(_GLIBC.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        _GLIBC.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )


def tune_on_first_load() -> bool:
    """`tune_allocator()` with the defaults, once per process, unless SAM3_MALLOC_TUNING=0."""
    global _tuned_on_load
    if _tuned_on_load or os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return False
    _tuned_on_load = True
    return tune_allocator()


def limit_arenas(arenas: int) -> bool:
    """Let glibc keep at most `arenas` heaps. A server runs handlers on a pool of threads and glibc
    gives each thread its own heap, whose freed pages mostly stay with the process; a few shared
    heaps give them back (with `release_memory`). Returns False where the C library is not glibc."""
    if not is_int(arenas) or not 0 < arenas < 2**31:
        raise ValueError(f"arenas must be a positive integer below 2**31, got {arenas!r}")
    return _GLIBC is not None and bool(_GLIBC.mallopt(M_ARENA_MAX, int(arenas)))


def release_memory() -> None:
    """Collect reference cycles, then hand glibc's free heap pages back to the system (say, after
    a session closes): the heap otherwise keeps them for the next call."""
    gc.collect()
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)
