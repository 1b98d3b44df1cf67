"""Shared test fixtures: the tiny random checkpoint, the models and processors loaded from it, and the
golden outputs of the reference."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "golden"
sys.path.insert(0, str(FIXTURES))

from golden_io import load_golden  # noqa: E402
from sam3_core import (  # noqa: E402
    Sam3Model,
    Sam3Processor,
    Sam3TrackerModel,
    Sam3TrackerProcessor,
    Sam3TrackerVideoModel,
    Sam3TrackerVideoProcessor,
)
from tiny_checkpoint import write_tiny_checkpoint  # noqa: E402

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

# Where the shared models run: `SAM3_TEST_DEVICE=cuda` (or `pytest --device cuda`) runs the core and
# SDK suites' models on a GPU; goldens are compared on the CPU (`golden_io.max_abs_diff`). TF32 is
# off there: the tolerances are fp32's.
TEST_DEVICE = os.environ.get("SAM3_TEST_DEVICE", "cpu")


def pytest_addoption(parser):
    parser.addoption(
        "--device", default=None, help="device of the shared test models (default $SAM3_TEST_DEVICE or cpu)"
    )


def pytest_configure(config):
    global TEST_DEVICE
    TEST_DEVICE = config.getoption("--device") or TEST_DEVICE
    os.environ["SAM3_TEST_DEVICE"] = TEST_DEVICE  # subprocesses (CLI tests) and later imports see it
    if TEST_DEVICE.startswith("cuda"):
        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--device {TEST_DEVICE}: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def pytest_report_header(config):
    return f"sam3 test device: {TEST_DEVICE}"


@pytest.fixture(scope="session")
def model_device() -> str:
    """The device of the shared models (`SAM3_TEST_DEVICE`, default cpu)."""
    return TEST_DEVICE


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory) -> Path:
    """A tiny random combined checkpoint (config.json + model.safetensors) in the hub layout."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-sam3"))


@pytest.fixture
def golden():
    """`golden(area, name)` → (tensors, metadata) written by the reference for one case."""
    return load_golden


@pytest.fixture(scope="session")
def tiny_repo_dir(tiny_checkpoint_dir, tmp_path_factory) -> Path:
    """The tiny checkpoint plus the processor_config.json the reference's save_pretrained wrote:
    laid out like the facebook/sam3 repo."""
    folder = tmp_path_factory.mktemp("tiny-sam3-repo")
    for path in tiny_checkpoint_dir.iterdir():
        shutil.copyfile(path, folder / path.name)
    _, meta = load_golden("detector", "processor_config")
    (folder / "processor_config.json").write_text(meta["processor_config.json"])
    return folder


# The models are shared by every test of the session: tests only run them, never change them.


@pytest.fixture(scope="session")
def detector_model(tiny_checkpoint_dir, model_device) -> Sam3Model:
    return Sam3Model.from_pretrained(tiny_checkpoint_dir, device=model_device)


@pytest.fixture(scope="session")
def detector_processor(tiny_repo_dir) -> Sam3Processor:
    return Sam3Processor.from_pretrained(tiny_repo_dir)


@pytest.fixture(scope="session")
def tracker_model(tiny_checkpoint_dir, model_device) -> Sam3TrackerModel:
    return Sam3TrackerModel.from_pretrained(tiny_checkpoint_dir, device=model_device)


@pytest.fixture(scope="session")
def tracker_processor(tiny_checkpoint_dir) -> Sam3TrackerProcessor:
    return Sam3TrackerProcessor.from_pretrained(tiny_checkpoint_dir)


@pytest.fixture(scope="session")
def video_model(tiny_checkpoint_dir, model_device) -> Sam3TrackerVideoModel:
    return Sam3TrackerVideoModel.from_pretrained(tiny_checkpoint_dir, device=model_device)


@pytest.fixture(scope="session")
def video_processor(tiny_checkpoint_dir) -> Sam3TrackerVideoProcessor:
    return Sam3TrackerVideoProcessor.from_pretrained(tiny_checkpoint_dir)
