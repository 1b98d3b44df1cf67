from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sam(tiny_checkpoint_dir, model_device):
    from sam3_sdk import Sam3

    return Sam3.from_pretrained(tiny_checkpoint_dir, device=model_device)
