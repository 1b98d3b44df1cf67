"""Fixtures of the ONNX export tests: the graphs are exported once per session (the exporter takes
seconds per graph) into a temporary folder and shared by the tests, which only run them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sam3_click_export(tiny_checkpoint_dir, tmp_path_factory):
    """The tiny SAM 3 checkpoint's click decoders (fp32 + fp16): (folder, manifest graph entries).
    The folder's manifest.json has the preprocessing and postprocessing too."""
    from sam3_sdk.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx-click")
    manifest = export_onnx(tiny_checkpoint_dir, out, parts=["click_decoder"])
    return out, manifest["graphs"]


@pytest.fixture(scope="session")
def export_sam(tiny_checkpoint_dir):
    """The SDK facade on the tiny checkpoint, on the CPU (the graphs are compared with it)."""
    from sam3_sdk import Sam3

    return Sam3.from_pretrained(tiny_checkpoint_dir, device="cpu")
