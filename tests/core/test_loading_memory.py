"""Loading the SDK's models holds the weights once: tracker, concept detector and video tracker share
one backbone, and each tensor is read from disk straight into its parameter (no state dict in RAM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "measure_load_memory.py"
MAX_RATIO = 1.3  # peak resident increase while loading / checkpoint size on disk


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_peak_memory_of_loading_is_about_the_checkpoint_size(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", "medium", "--dir", str(tmp_path / "medium"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["file_bytes"] > 100e6  # the weights dominate the interpreter's baseline
    assert result["ratio"] <= MAX_RATIO, result
