"""The exported click decoder, run through `sam3_sdk.onnx_decode`, gives the SDK's boolean masks:
the same prompts in original-image pixels, the same embeddings, on images of several sizes.

Pixels may differ only where the SDK's upsampled logit is within 1e-3 of the threshold 0 (the
graphs' logits are within 1e-4 of PyTorch's, test_onnx_click_decoder.py); everywhere else the
masks are equal. Scores within 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sam3_sdk.onnx_decode import OnnxClickDecoder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

NEAR_ZERO = 1e-3


@pytest.fixture(scope="module")
def decoder(sam3_click_export):
    return OnnxClickDecoder(sam3_click_export[0])


PROMPTS = {
    "one click": dict(points=[(40.0, 30.0)], labels=[1]),
    "two clicks": dict(points=[(40.0, 30.0), (70.5, 55.25)], labels=[1, 0]),
    "box": dict(box=(10.0, 12.0, 80.0, 70.0)),
    "box + click": dict(points=[(44.0, 33.0)], labels=[1], box=(10.0, 12.0, 80.0, 70.0)),
}


@pytest.mark.parametrize("size", [(90, 130), (160, 100), (224, 224)])
@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_onnx_click_gives_the_sdk_masks(size, prompt, export_sam, decoder):
    rng = np.random.default_rng(size[0] + size[1])
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    entry = export_sam.features(image)
    embeddings = [e.cpu().numpy() for e in export_sam.image_predictor.features.tracker_embeddings(entry)]
    kwargs = PROMPTS[prompt]
    expected = export_sam.segment_object(entry, **kwargs)
    got = decoder.predict(embeddings, size, **kwargs)
    _check_same(expected, got, size)
    # a second click refining the first result with its low-resolution logits (the mask input)
    refine = dict(points=[(20.0, 60.0)], labels=[0], mask_logits=expected.low_res_logits[0])
    _check_same(export_sam.segment_object(entry, **refine), decoder.predict(embeddings, size, **refine), size)


def _check_same(expected, got, size):
    assert got.masks.shape == expected.masks.shape
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got.low_res_logits, expected.low_res_logits, atol=1e-4, rtol=0)
    logits = F.interpolate(
        torch.from_numpy(expected.low_res_logits)[None], size=size, mode="bilinear", align_corners=False
    )[0].numpy()
    differ = got.masks != expected.masks
    assert not differ[np.abs(logits) >= NEAR_ZERO].any(), f"{differ.sum()} pixels differ away from 0"
    assert expected.masks.any() and not expected.masks.all()  # a mask with both sides to compare
