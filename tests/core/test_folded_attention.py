"""Cross-attention of a few tokens against a large map with the map-side projections folded into
the tokens' side (`modeling/folded_attention.py`): equal to the plain attention in fp32, and used
where it saves work (the two-way decoder at the real widths), so these comparisons are not plain
against plain."""

from __future__ import annotations

import pytest
import torch
from sam3_core.config import Sam3TrackerMaskDecoderConfig
from sam3_core.modeling import folded_attention
from sam3_core.modeling.layers import Attention
from sam3_core.modeling.two_way_transformer import TwoWayTransformer


def _plain(attn: Attention, query, key, value):
    q, k, v = attn._project(query, key, value)
    return attn._attend(q, k, v, None, query.shape[:-1])


@pytest.mark.parametrize(
    "hidden, heads, internal, kv_dim, q_shape, k_shape, side",
    [
        (64, 4, 32, None, (1, 1, 300, 64), (1, 1, 5, 64), "keys"),  # image -> tokens
        (64, 4, 32, None, (2, 3, 6, 64), (6, 1, 400, 64), "queries"),  # tokens -> image, (B, P) vs (B*P, 1)
        (64, 2, 64, 48, (3, 7, 64), (3, 512, 48), "queries"),  # keys of another width
        (256, 8, 128, None, (4, 1, 5184, 256), (4, 1, 8, 256), "keys"),  # the decoder at 1008 px, 4 prompts
    ],
)
def test_folded_attention_equals_plain_attention(hidden, heads, internal, kv_dim, q_shape, k_shape, side):
    torch.manual_seed(0)
    attn = Attention(hidden, heads, internal_size=internal, kv_in_dim=kv_dim).eval()
    query, key = torch.randn(q_shape), torch.randn(k_shape)
    value = torch.randn(k_shape)
    assert folded_attention.folds(attn, q_shape[-2], k_shape[-2], torch.float32) == side
    with torch.no_grad():
        out, expected = attn(query, key, value), _plain(attn, query, key, value)
    assert out.shape == expected.shape == (*q_shape[:-1], hidden)
    assert (out - expected).abs().max().item() <= 2e-5


def test_plain_attention_where_folding_saves_nothing_or_rounds_differently():
    attn = Attention(256, 8, internal_size=128)
    assert folded_attention.folds(attn, 5184, 32, torch.float32) is None  # 8 heads x 32 tokens > 128
    assert folded_attention.folds(attn, 100, 8, torch.float32) is None  # a short map
    assert folded_attention.folds(attn, 5184, 8, torch.bfloat16) is None
    attn = Attention(32, 2)
    mask = torch.zeros(1, 2, 300, 4, dtype=torch.bool)
    mask[..., 0] = True  # only the first token may be attended: the plain path honours masks
    query, key = torch.randn(1, 300, 32), torch.randn(1, 4, 32)
    with torch.no_grad():
        one_token = attn(query, key[:, :1], key[:, :1])  # folded: 2 heads x 1 token < 32
        torch.testing.assert_close(attn(query, key, key, mask), one_token, atol=2e-5, rtol=0)


def test_two_way_decoder_at_the_real_width_matches_the_plain_path(monkeypatch):
    """The SAM 3 tracker's two-way transformer (hidden 256, 8 heads) on a 72x72 image with one
    click's tokens: folded (as it runs) vs plain, fp32 max abs diff <= 1e-4."""
    torch.manual_seed(0)
    transformer = TwoWayTransformer(Sam3TrackerMaskDecoderConfig()).eval()
    tokens, image, pe = torch.randn(1, 1, 8, 256), torch.randn(1, 256, 72, 72), torch.randn(1, 256, 72, 72)
    for attn in (transformer.final_attn_token_to_image, transformer.layers[0].cross_attn_image_to_token):
        assert folded_attention.folds(attn, 8, 5184, torch.float32) or folded_attention.folds(
            attn, 5184, 8, torch.float32
        )
    with torch.no_grad():
        folded = transformer(tokens, image, pe)
        monkeypatch.setattr(folded_attention, "MIN_LONG_SIDE", 10**9)  # nothing folds
        plain = transformer(tokens, image, pe)
    for a, b in zip(folded, plain, strict=True):
        assert (a - b).abs().max().item() <= 1e-4
