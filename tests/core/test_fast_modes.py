"""Opt-in fast modes: int8 dynamic quantisation of the linear layers, and `torch.compile`."""

from __future__ import annotations

import os

import pytest
import torch
from sam3_core import Sam3TrackerModel
from sam3_core.modeling.fast_modes import compile_model, quantize_linear_int8


@pytest.fixture
def model(tiny_checkpoint_dir):
    return Sam3TrackerModel.from_pretrained(tiny_checkpoint_dir).eval()


def _click(model, pixels):
    with torch.inference_mode():
        embeddings = model.get_image_embeddings(pixels)
        out = model(
            image_embeddings=embeddings,
            input_points=torch.tensor([[[[30.0, 40.0]]]]),
            input_labels=torch.ones(1, 1, 1, dtype=torch.long),
        )
    return embeddings, out.pred_masks


def test_int8_replaces_the_linear_layers_and_stays_close(model):
    pixels = torch.randn(1, 3, model.config.image_size, model.config.image_size)
    embeddings, masks = _click(model, pixels)
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert quantize_linear_int8(model) is model
    assert linears > 0 and not any(type(m) is torch.nn.Linear for m in model.modules())
    q_embeddings, q_masks = _click(model, pixels)
    # int8 is an approximation: close to float32, not equal
    scale = embeddings[-1].abs().max()
    deviation = (q_embeddings[-1] - embeddings[-1]).abs().max()
    assert 0 < deviation < 0.1 * scale
    assert q_masks.shape == masks.shape


def test_int8_refuses_a_bf16_model(model):
    with pytest.raises(ValueError, match="float32"):
        quantize_linear_int8(model.to(torch.bfloat16))


def test_compile_refuses_a_model_without_those_parts():
    with pytest.raises(ValueError, match="none of the parts"):
        compile_model(torch.nn.Linear(2, 2))


@pytest.mark.skipif(
    not os.environ.get("SAM3_TEST_COMPILE"),
    reason="torch.compile takes minutes on a small CPU; set SAM3_TEST_COMPILE=1 to run",
)
def test_compiled_model_gives_the_same_outputs(model):
    pixels = torch.randn(1, 3, model.config.image_size, model.config.image_size)
    embeddings, masks = _click(model, pixels)
    names = [name for name, _ in model.named_parameters()]
    compile_model(model, parts=("vision_encoder", "mask_decoder"))
    assert [name for name, _ in model.named_parameters()] == names
    c_embeddings, c_masks = _click(model, pixels)
    for ours, eager in zip(c_embeddings, embeddings, strict=True):
        assert torch.allclose(ours, eager, atol=1e-4, rtol=0)
    assert torch.allclose(c_masks, masks, atol=1e-4, rtol=0)
