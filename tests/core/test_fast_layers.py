"""The speed tricks of modeling/layers.py give the numbers of the plain PyTorch modules they replace."""

import pytest
import torch
import torch.nn.functional as F
from sam3_core.modeling.layers import ConvTranspose2x2


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("shape", [(1, 16, 5, 7), (3, 8, 4, 4)])
def test_conv_transpose_2x2_equals_transposed_convolution(dtype, tol, shape):
    torch.manual_seed(0)
    layer = ConvTranspose2x2(shape[1], 6).to(dtype)
    x = torch.randn(shape).to(dtype)
    expected = F.conv_transpose2d(x.float(), layer.weight.float(), layer.bias.float(), stride=2)
    out = layer(x)
    assert out.shape == (shape[0], 6, 2 * shape[2], 2 * shape[3]) and out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, atol=tol, rtol=tol)
    assert torch.equal(out.contiguous(), out)  # values, whatever the memory layout


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_conv_transpose_2x2_adds_a_residual_in_its_shuffle(dtype, tol):
    """`residual=` (the decoder's high-resolution features) is added while the 2x2 blocks are
    laid out, whatever the residual's memory layout."""
    torch.manual_seed(0)
    layer = ConvTranspose2x2(8, 6).to(dtype)
    x = torch.randn(2, 8, 5, 7).to(dtype)
    expected = F.conv_transpose2d(x.float(), layer.weight.float(), layer.bias.float(), stride=2)
    for residual in (torch.randn(2, 6, 10, 14), torch.randn(2, 10, 14, 6).permute(0, 3, 1, 2)):
        out = layer(x, residual=residual.to(dtype))
        torch.testing.assert_close(out.float(), expected + residual.to(dtype).float(), atol=tol, rtol=tol)


@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_2x2_folds_a_following_1x1_convolution(bias):
    """`then=` (the FPN's 1x1 projection) gives the two layers' result from one matmul, at the
    real FPN widths (1024 -> 512 -> 256 channels)."""
    torch.manual_seed(0)
    layer, proj = ConvTranspose2x2(512, 256), torch.nn.Conv2d(256, 256, 1, bias=bias)
    x = torch.randn(2, 512, 6, 5)
    expected = proj(F.conv_transpose2d(x, layer.weight, layer.bias, stride=2))
    out = layer(x, then=proj)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="1x1"):
        layer(x, then=torch.nn.Conv2d(256, 256, 3, padding=1))


def test_conv_transpose_2x2_keeps_checkpoint_names():
    assert set(ConvTranspose2x2(4, 2).state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("grad", [False, True])
def test_feed_forward_in_chunks_of_rows_equals_one_piece(monkeypatch, grad):
    """Chunked rows (and the in-place activation, only without autograd) give the same values."""
    from sam3_core.modeling import layers

    torch.manual_seed(0)
    mlp = layers.MLP([16, 64, 8], act="gelu", names="fc")
    x = torch.randn(2, 37, 16)
    with torch.set_grad_enabled(grad):
        whole = mlp(x)
        monkeypatch.setattr(layers, "FEED_FORWARD_CHUNK_BYTES", 64 * 4 * 5)  # 5 rows a chunk
        chunked = mlp(x)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert chunked.shape == (2, 37, 8)
    if grad:
        chunked.sum().backward()  # autograd kept what it needs (no in-place activation)
        assert mlp.fc1.weight.grad is not None
