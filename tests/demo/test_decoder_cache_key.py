"""The browser's click-decoder graphs are cached by the weights they are made from, not by the model's
name alone: two random checkpoints under one name get folders (and graphs) of their own, the same
weights loaded again find theirs without a new export. No browser: `ClickDecoderGraphs.ensure` is
called directly, and the served graph is run with onnxruntime.

Tolerance of the graph against PyTorch: 1e-4 on the mask logits (as tests/export/test_onnx_click_decoder.py:
the same float32 arithmetic in another runtime, about 1e-5 apart at the tiny widths); the two random
checkpoints' logits differ by O(1), so the check cannot pass with the other checkpoint's graph."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))

NAME = "my/model"  # one name for every checkpoint here (a hub id: sanitized in the folder name)
TOLERANCE = 1e-4  # see the module docstring


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three random tiny SAM 3 checkpoints: seed 0, seed 1 (other weights), seed 0 again elsewhere."""
    from sam3_sdk.testing import write_random_checkpoint

    base = tmp_path_factory.mktemp("decoder-cache-ckpt")
    return {
        key: write_random_checkpoint(base / key, seed=seed) for key, seed in (("a", 0), ("b", 1), ("a2", 0))
    }


@pytest.fixture(scope="module")
def models(checkpoints):
    from sam3_sdk import Sam3

    torch.set_num_threads(1)
    return {key: Sam3.from_pretrained(folder, device="cpu") for key, folder in checkpoints.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's browser_decode module with its cache in a temporary folder and its exports counted
    (a list of folders). The exporter takes about 10 s per checkpoint here: the module shares one cache."""
    from sam3_demo import browser_decode

    exported: list[Path] = []
    real = browser_decode.export_click_decoder

    def counting(sam, folder, name):
        exported.append(folder)
        real(sam, folder, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(browser_decode, "CACHE", tmp_path_factory.mktemp("decoder-cache") / "onnx")
        patch.setattr(browser_decode, "export_click_decoder", counting)
        yield browser_decode, exported


@pytest.fixture(scope="module")
def served(demo, models):
    """The page's decoder descriptions of checkpoints a then b (the same name), exported in this order."""
    browser_decode, exported = demo
    assert exported == []
    first = browser_decode.ClickDecoderGraphs(NAME).ensure(models["a"])
    second = browser_decode.ClickDecoderGraphs(NAME).ensure(models["b"])
    return first, second


def _folder_of(description: dict) -> Path:
    return Path(description["multi"].removeprefix("gradio_api/file=")).parent


def _served_logits(description: dict, sam) -> tuple[np.ndarray, np.ndarray]:
    """The served 3-mask graph's logits and the PyTorch decoder's of `sam`, on one click."""
    import onnxruntime as ort
    from sam3_sdk.onnx_export import click_decoder_example
    from sam3_sdk.onnx_graphs import CLICK_INPUTS, ClickDecoder

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    graph = ort.InferenceSession(
        description["multi"].removeprefix("gradio_api/file="), options, providers=["CPUExecutionProvider"]
    )
    tracker = sam.image_model
    size = tracker.prompt_encoder.input_image_size
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    inputs = list(click_decoder_example(tracker, num_points=1))
    inputs[:3] = tracker.get_image_embeddings(pixels)
    with torch.no_grad():
        expected = ClickDecoder(tracker, multimask=True)(*inputs)[0].numpy()
    got = graph.run(["low_res_masks"], {n: t.numpy() for n, t in zip(CLICK_INPUTS, inputs, strict=True)})[0]
    return got, expected


def test_other_weights_under_the_same_name_get_their_own_graphs(demo, models, served):
    browser_decode, exported = demo
    first, second = served
    folder_a, folder_b = _folder_of(first), _folder_of(second)
    assert folder_a != folder_b, "two checkpoints with different weights share one graph folder"
    assert exported == [folder_a, folder_b]
    for folder in (folder_a, folder_b):  # <sanitized name>-<16 hex digits>
        prefix, digest = folder.name.rsplit("-", 1)
        assert prefix == "my_model" and len(digest) == 16 and int(digest, 16) >= 0, folder.name
        assert folder.parent == browser_decode.CACHE
    # the graph served for b computes b's masks (and not a's)
    got, expected = _served_logits(second, models["b"])
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    other = _served_logits(second, models["a"])[1]
    assert np.abs(other - expected).max() > 100 * TOLERANCE  # the check above can tell them apart


def test_the_same_weights_find_the_cached_graphs(demo, models, served):
    browser_decode, exported = demo
    first = served[0]
    manifest = _folder_of(first) / "manifest.json"
    mtime, before = manifest.stat().st_mtime_ns, len(exported)
    graphs = browser_decode.ClickDecoderGraphs(NAME)
    assert graphs.ensure(models["a"]) == first
    assert graphs.ensure(models["a"]) == first  # the same model again
    # the same weights loaded from another folder, by another page's graphs object
    assert browser_decode.ClickDecoderGraphs(NAME).ensure(models["a2"]) == first
    assert len(exported) == before, f"exported again: {exported[before:]}"
    assert manifest.stat().st_mtime_ns == mtime


def test_an_unusable_manifest_is_exported_again(demo, models, served, monkeypatch):
    browser_decode, exported = demo
    folder = _folder_of(served[0])
    manifest = folder / "manifest.json"
    good = manifest.read_text()

    def export(sam, out, name):  # the real export ran above: this one only writes its manifest back
        exported.append(out)
        (out / "manifest.json").write_text(good)

    monkeypatch.setattr(browser_decode, "export_click_decoder", export)
    before = len(exported)
    manifest.write_text(json.dumps({"graphs": {}}))  # an older export without the click decoder
    assert browser_decode.ClickDecoderGraphs(NAME).ensure(models["a"]) == served[0]
    assert exported[before:] == [folder]
    assert browser_decode.ClickDecoderGraphs(NAME).ensure(models["a"]) == served[0]  # once
    assert exported[before:] == [folder]


def test_the_digest_follows_decoder_weights_and_export_settings(demo, models, monkeypatch):
    browser_decode, _ = demo
    sam = models["a2"]
    digest = browser_decode.decoder_digest(sam)
    assert digest == browser_decode.decoder_digest(models["a"])
    assert digest != browser_decode.decoder_digest(models["b"])
    decoder = sam.image_model
    # one value of the mask decoder changed slightly; the grid encoding (folded into the graph) scaled
    for tensor, change in (
        (decoder.mask_decoder.pred_obj_score_head.proj_out.weight, lambda t: t[0].add_(1e-6)),
        (decoder.shared_image_embedding.positional_embedding, lambda t: t.mul_(2)),
    ):
        saved = tensor.detach().clone()
        with torch.no_grad():
            change(tensor)
            try:
                assert browser_decode.decoder_digest(sam) != digest
            finally:
                tensor.copy_(saved)
    assert browser_decode.decoder_digest(sam) == digest
    monkeypatch.setattr("sam3_sdk.onnx_io.OPSET", 17)
    assert browser_decode.decoder_digest(sam) != digest
