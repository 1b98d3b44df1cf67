"""Cross-attention between a few tokens and a large map, with the map-side projections folded into
the tokens' side.

SAM's two-way decoder attends a handful of prompt tokens (T ≈ 8) to an image of thousands of
positions (72² = 5184 at 1008 px) and back. Written plainly, every attention projects the whole
image through a (C × internal) linear layer: most of a click's time. Since the projections are
linear, the same result comes from projecting the few tokens instead (heads × T ≤ internal
columns instead of internal), which is exact up to float rounding:

- few keys (image → tokens): q·k = x·(W_q^T k) + b_q·k, and o_proj(Σ a v) = Σ a (W_o v) + b_o;
- few queries (tokens → image): q·(W_k y + b_k) = (W_k^T q)·y + const (the constant drops out of
  the softmax), and Σ a (W_v z + b_v) = W_v (Σ a z) + b_v (the weights sum to one).

`Attention` calls these in fp32 when they are cheaper (`folds`); its parameters are used as they are.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# the large side must be at least this long for folding to pay for its extra small matmuls
MIN_LONG_SIDE = 256


def folds(attn: nn.Module, lq: int, lk: int, dtype: torch.dtype) -> str | None:
    """ "keys" or "queries" when that side is short enough for folding to save work, else None."""
    if dtype not in (torch.float32, torch.float64):
        # bf16 would round the folded products where the plain path rounds others: measured, that
        # doubles the deviation of a bf16 video from fp32 (the seed examples' tolerance)
        return None
    width = attn.num_heads * attn.head_dim
    plain_linears = all(
        isinstance(getattr(attn, name).weight, Tensor)
        for name in ("q_proj", "k_proj", "v_proj", attn.out_name)
    )  # int8-quantised layers keep their own kernels
    if not plain_linears:
        return None
    if attn.num_heads * lk < width and lq >= MIN_LONG_SIDE:
        return "keys"
    if attn.num_heads * lq < width and lk >= MIN_LONG_SIDE:
        return "queries"
    return None


def _heads(w: Tensor, num_heads: int) -> Tensor:
    """A projection's (internal, C) weight as (heads, head_dim, C)."""
    return w.view(num_heads, -1, w.shape[-1])


def attend_few_keys(attn: nn.Module, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """query (S, Lq, C) over few key/value tokens (S, Lk, C_kv) → (S, Lq, C)."""
    nh, hd = attn.num_heads, attn.head_dim
    s, lk = key.shape[0], key.shape[1]
    q_proj, out = attn.q_proj, attn.get_submodule(attn.out_name)
    k = attn.k_proj(key).view(s, lk, nh, hd) * hd**-0.5
    v = attn.v_proj(value).view(s, lk, nh, hd)
    # keys moved through q_proj: (S, nh*Lk, C), so the image is multiplied once, by nh*Lk columns
    k_in = (k.permute(0, 2, 1, 3) @ _heads(q_proj.weight, nh)).reshape(s, nh * lk, -1)
    k_bias = (k * q_proj.bias.view(nh, hd)).sum(-1).transpose(1, 2).reshape(s, nh * lk, 1)
    # scores laid out (S, nh, Lk, Lq): the softmax runs over Lk with Lq contiguous (a fast kernel;
    # a softmax over a last dim of ~8 is slow)
    scores = torch.baddbmm(k_bias, k_in, query.transpose(1, 2)).view(s, nh, lk, -1)
    weights = scores.softmax(2).view(s, nh * lk, -1).transpose(1, 2)
    # values moved through the output projection: (S, nh*Lk, C)
    w_out = out.weight.view(out.weight.shape[0], nh, hd).permute(1, 2, 0)  # (nh, hd, C)
    # each head's weights sum to one, so the output bias rides on the values (no pass over the output)
    v_out = torch.baddbmm(out.bias / nh, v.permute(0, 2, 1, 3).reshape(s * nh, lk, hd), w_out.repeat(s, 1, 1))
    return weights @ v_out.view(s, nh * lk, -1)


def attend_few_queries(attn: nn.Module, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """few queries (S, Lq, C) over key/value (S, Lk, C_kv) → (S, Lq, C)."""
    nh, hd = attn.num_heads, attn.head_dim
    s, lq = query.shape[0], query.shape[1]
    k_proj, v_proj = attn.k_proj, attn.v_proj
    q = attn.q_proj(query).view(s, lq, nh, hd).permute(0, 2, 1, 3) * hd**-0.5  # (S, nh, Lq, hd)
    # queries moved through k_proj: (S, nh*Lq, C_kv); k_proj's bias adds a constant per query
    q_in = (q @ _heads(k_proj.weight, nh)).reshape(s, nh * lq, -1)
    weights = (q_in @ key.transpose(1, 2)).softmax(-1)  # (S, nh*Lq, Lk)
    mixed = (weights @ value).view(s, nh, lq, -1)  # values mixed first, then projected
    heads = mixed @ _heads(v_proj.weight, nh).transpose(1, 2) + v_proj.bias.view(nh, 1, hd)
    return attn.get_submodule(attn.out_name)(heads.permute(0, 2, 1, 3).reshape(s, lq, nh * hd))
