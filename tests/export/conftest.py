"""Fixtures of the ONNX export tests: the graphs are exported once per session (the exporter takes
seconds per graph) into a temporary folder and shared by the tests, which only run them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sam3_onnx(tiny_checkpoint_dir, tmp_path_factory):
    """Every graph of the tiny SAM 3 checkpoint (fp32 + fp16): (folder, manifest)."""
    from sam3_sdk.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx-sam3")
    return out, export_onnx(tiny_checkpoint_dir, out)


@pytest.fixture(scope="session")
def sam3_click_export(sam3_onnx):
    """(folder, manifest graph entries) of the tiny SAM 3 export."""
    return sam3_onnx[0], {k: v for k, v in sam3_onnx[1]["graphs"].items() if k.startswith("click_decoder")}


@pytest.fixture(scope="session")
def ort_session():
    """`ort_session(path)`: a single-threaded onnxruntime CPU session (the machine is shared)."""
    import onnxruntime as ort

    def make(path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return make


@pytest.fixture(scope="session")
def export_sam(tiny_checkpoint_dir):
    """The SDK facade on the tiny checkpoint, on the CPU (the graphs are compared with it)."""
    from sam3_sdk import Sam3

    return Sam3.from_pretrained(tiny_checkpoint_dir, device="cpu")


@pytest.fixture(scope="session")
def edgetam_dir(tmp_path_factory):
    """The tiny random EdgeTAM checkpoint (the committed key manifest filled from a seed)."""
    from tiny_checkpoint import HERE, write_tiny_checkpoint

    return write_tiny_checkpoint(
        tmp_path_factory.mktemp("edgetam") / "tiny_edgetam", source_dir=HERE / "tiny_edgetam"
    )


@pytest.fixture(scope="session")
def edgetam_onnx(edgetam_dir, tmp_path_factory):
    """Every graph of the tiny EdgeTAM checkpoint: (folder, manifest)."""
    from sam3_sdk.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx-edgetam")
    return out, export_onnx(edgetam_dir, out)
