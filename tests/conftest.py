"""Shared test fixtures: the tiny random checkpoint and the golden outputs of the reference."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "golden"
sys.path.insert(0, str(FIXTURES))

from golden_io import load_golden  # noqa: E402
from tiny_checkpoint import write_tiny_checkpoint  # noqa: E402

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory) -> Path:
    """A tiny random combined checkpoint (config.json + model.safetensors) in the hub layout."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-sam3"))


@pytest.fixture
def golden():
    """`golden(area, name)` → (tensors, metadata) written by the reference for one case."""
    return load_golden
