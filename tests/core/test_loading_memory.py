"""Loading the SDK's models holds the weights once: tracker, concept detector and video tracker share
one backbone, and each tensor is read from disk straight into its parameter (no state dict in RAM),
or, converted to another dtype, through one small buffer (no full-size copy of any tensor)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "measure_load_memory.py"
# Peak resident increase while loading, over the checkpoint's size on disk (float32, as stored) and
# over the loaded parameters' bytes (bfloat16 from a float32 file). Measured on the medium checkpoint
# (0.19 GB): 1.08x and 1.09x, where the interpreter's own allocations while loading (configs, the
# tokenizer, one 16 MiB read buffer) are still ~8% of the weights; at the real widths 1.03x and 1.02x.
# Before the converting reads went through a bounded buffer, bfloat16 measured 1.41x here (1.21x at
# the real widths). The SDK's target is 1.2x.
MAX_RATIO = 1.2


def _measure(folder: Path, dtype: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", "medium", "--dir", str(folder), "--dtype", dtype, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_peak_memory_of_loading_is_about_the_checkpoint_size(tmp_path):
    result = _measure(tmp_path / "medium", "float32")
    assert result["file_bytes"] > 100e6  # the weights dominate the interpreter's baseline
    assert result["ratio"] <= MAX_RATIO, result
    # the same file loaded in bfloat16: every tensor is converted on the way in
    converted = _measure(tmp_path / "medium", "bfloat16")
    assert converted["parameter_bytes"] < 0.6 * converted["file_bytes"]  # half-size parameters
    assert converted["parameter_ratio"] <= MAX_RATIO, converted
