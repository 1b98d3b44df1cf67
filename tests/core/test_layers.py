"""The shared Attention (with its RoPE variant) and MLP: parameter names per caller, leading-dim
layouts, masks and partial key RoPE, checked against plain softmax attention."""

from __future__ import annotations

import math

import pytest
import torch
from sam3_core.modeling.layers import (
    MLP,
    Attention,
    AxialRoPE,
    RoPEAttention,
    apply_pairwise_rope,
    sine_features,
    sine_position_encoding_2d,
)


def _heads(proj: torch.nn.Linear, x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, C) → projected (B, heads, L, head_dim)."""
    b, n, _ = x.shape
    return proj(x).view(b, n, num_heads, -1).transpose(1, 2)


def _softmax_attention(attn: Attention, q, k, v, mask=None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v on (B, heads, L, head_dim) heads, then the output projection."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    out = (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)  # (B, Lq, internal)
    return attn.get_submodule(attn.out_name)(out)


def _project(attn: Attention, query, key, value):
    return tuple(
        _heads(p, x, attn.num_heads)
        for p, x in ((attn.q_proj, query), (attn.k_proj, key), (attn.v_proj, value))
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("layers", ["layers.0", "layers.1", "layers.2"]),
        ("fc", ["fc1", "fc2", "fc3"]),
        ("layer", ["layer1", "layer2", "layer3"]),
        ("sam", ["proj_in", "layers.0", "proj_out"]),
        ("proj", ["up_proj", "layers.0", "down_proj"]),
    ],
)
def test_mlp_layouts_keep_the_checkpoint_names(names, expected):
    mlp = MLP([4, 8, 8, 2], names=names)
    assert list(mlp.state_dict()) == [f"{n}.{p}" for n in expected for p in ("weight", "bias")]
    x = torch.randn(3, 4)
    layers = [mlp.get_submodule(n) for n in expected]
    ref = layers[2](torch.relu(layers[1](torch.relu(layers[0](x)))))
    assert torch.allclose(mlp(x), ref)
    squashed = MLP([4, 8, 8, 2], sigmoid_output=True, names=names)
    squashed.load_state_dict(mlp.state_dict())
    assert torch.allclose(squashed(x), ref.sigmoid())


def test_mlp_without_biases_and_with_a_pre_norm():
    """EdgeTAM's perceiver MLP: `layer_norm`, then bias-free `up_proj`, GELU, `down_proj`."""
    torch.manual_seed(0)
    mlp = MLP([4, 8, 4], "gelu", names="proj", bias=False, pre_norm=True)
    names = ["layer_norm.weight", "layer_norm.bias", "up_proj.weight", "down_proj.weight"]
    assert list(mlp.state_dict()) == names
    with torch.no_grad():
        mlp.layer_norm.weight.normal_()
        mlp.layer_norm.bias.normal_()
        x = torch.randn(3, 4)
        ln = torch.nn.functional.layer_norm(x, (4,), mlp.layer_norm.weight, mlp.layer_norm.bias)
        expected = torch.nn.functional.gelu(ln @ mlp.up_proj.weight.T) @ mlp.down_proj.weight.T
        assert torch.allclose(mlp(x), expected, atol=1e-6)


def test_mlp_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown MLP layout 'bad'"):
        MLP([4, 4], names="bad")
    with pytest.raises(ValueError, match="at least"):
        MLP([4])


def test_attention_names_and_widths():
    attn = Attention(16, 2, internal_size=8, kv_in_dim=12, out_name="out_proj")
    shapes = {k: tuple(v.shape) for k, v in attn.state_dict().items() if k.endswith("weight")}
    assert shapes == {
        "q_proj.weight": (8, 16),
        "k_proj.weight": (8, 12),
        "v_proj.weight": (8, 12),
        "out_proj.weight": (16, 8),
    }
    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        Attention(16, 3)


@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_attention_matches_softmax_attention(mask_kind):
    torch.manual_seed(0)
    attn = Attention(16, 2, internal_size=8, kv_in_dim=12)
    query, key = torch.randn(2, 5, 16), torch.randn(2, 7, 12)
    mask = None
    if mask_kind == "bool":
        mask = torch.rand(2, 1, 5, 7) > 0.3
        mask[..., 0] = True  # every query sees a key
    elif mask_kind == "additive":
        mask = torch.randn(2, 2, 5, 7)
    with torch.no_grad():
        expected = _softmax_attention(attn, *_project(attn, query, key, key), mask)
        assert torch.allclose(attn(query, key, key, mask), expected, atol=1e-5)


def test_attention_pairs_leading_dims_by_sequence():
    """(B, P, N, C) queries against (B*P, 1, M, C) keys: the same as flat (B*P, N, C) sequences."""
    torch.manual_seed(0)
    attn = Attention(16, 2)
    tokens, image = torch.randn(2, 3, 4, 16), torch.randn(6, 1, 9, 16)
    with torch.no_grad():
        out = attn(tokens, image, image)
        flat = attn(tokens.reshape(6, 4, 16), image.reshape(6, 9, 16), image.reshape(6, 9, 16))
        back = attn(image, tokens, tokens)
    assert out.shape == (2, 3, 4, 16) and back.shape == (6, 1, 9, 16)
    assert torch.allclose(out.reshape(6, 4, 16), flat)
    with pytest.raises(ValueError, match="same number of sequences"):
        attn(tokens, image[:5], image[:5])


def test_rope_attention_rotates_each_memory_frame_and_skips_pointers():
    """Keys = 2 memory frames on the query grid + 3 pointer tokens: frames rotate like the
    queries, pointers do not."""
    torch.manual_seed(0)
    attn = RoPEAttention(16, 2, kv_in_dim=12)
    rope = AxialRoPE(3, 2, attn.head_dim)  # a 2x3 grid: 6 tokens
    cos, sin = rope(torch.device("cpu"))
    query, memory = torch.randn(1, 6, 16), torch.randn(1, 2 * 6 + 3, 12)
    with torch.no_grad():
        out = attn(query, memory, memory, rope=(cos, sin), num_k_exclude_rope=3)
        q, k, v = _project(attn, query, memory, memory)
        q = apply_pairwise_rope(q, cos, sin)
        frames = [apply_pairwise_rope(k[..., i * 6 : (i + 1) * 6, :], cos, sin) for i in range(2)]
        k = torch.cat([*frames, k[..., 12:, :]], dim=-2)
        assert torch.allclose(out, _softmax_attention(attn, q, k, v), atol=1e-5)
    with pytest.raises(ValueError, match="whole number of 6-token grids"):
        attn(query, memory, memory, rope=(cos, sin), num_k_exclude_rope=2)


def test_attention_without_biases():
    attn = Attention(16, 2, internal_size=8, bias=False)
    assert sorted(attn.state_dict()) == ["k_proj.weight", "o_proj.weight", "q_proj.weight", "v_proj.weight"]
    torch.manual_seed(0)
    query, key = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    with torch.no_grad():
        expected = _softmax_attention(attn, *_project(attn, query, key, key))
        assert torch.allclose(attn(query, key, key), expected, atol=1e-5)


def test_sine_features_are_detr_sines_and_cosines():
    """Feature 2i is sin(c * scale / T^(2i/F)), feature 2i+1 cos of the same angle: written out here
    in float64 (the detector's box features and the pixel encodings are both this function)."""
    coords = torch.tensor([0.0, 0.25, 0.9], dtype=torch.float64)
    out = sine_features(coords, 6, scale=3.0, temperature=100.0)
    expected = torch.empty(3, 6, dtype=torch.float64)
    for i in range(3):
        angle = coords * 3.0 / 100.0 ** (2 * i / 6)
        expected[:, 2 * i], expected[:, 2 * i + 1] = angle.sin(), angle.cos()
    assert torch.allclose(out, expected, atol=1e-12, rtol=0)


def test_sine_position_encoding_is_the_sine_features_of_normalised_positions():
    pos = sine_position_encoding_2d(2, 3, 5, 4, dtype=torch.float64)  # (B, 2F, H, W)
    assert pos.shape == (2, 8, 3, 5)
    ys = torch.arange(1, 4, dtype=torch.float64) / (3 + 1e-6)
    xs = torch.arange(1, 6, dtype=torch.float64) / (5 + 1e-6)
    y_feats, x_feats = sine_features(ys, 4), sine_features(xs, 4)  # (H, F), (W, F)
    assert torch.allclose(pos[1, :4, :, 2], y_feats.T, atol=1e-12, rtol=0)  # y channels vary by row
    assert torch.allclose(pos[0, 4:, 1, :], x_feats.T, atol=1e-12, rtol=0)  # x channels by column
    raw = sine_position_encoding_2d(1, 3, 5, 4, dtype=torch.float64, normalize=False)
    assert torch.allclose(
        raw[0, 4:, 0, :], sine_features(torch.arange(1.0, 6.0, dtype=torch.float64), 4, 1.0).T
    )
