"""SAM's two-way transformer: prompt tokens and image embedding attend to each other."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Sam3TrackerMaskDecoderConfig
from .layers import SamMLP


class PromptAttention(nn.Module):
    """Multi-head attention whose inner width is `hidden_size / downsample_rate` (SDPA).

    Queries may be laid out (B, P, Nq, C) and keys (B*P, 1, Nk, C) or the other way round:
    both are flattened to B*P sequences.
    """

    def __init__(self, hidden_size: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        internal = hidden_size // downsample_rate
        if internal % num_heads:
            raise ValueError(f"attention width {internal} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = internal // num_heads
        self.q_proj = nn.Linear(hidden_size, internal)
        self.k_proj = nn.Linear(hidden_size, internal)
        self.v_proj = nn.Linear(hidden_size, internal)
        self.o_proj = nn.Linear(internal, hidden_size)

    def _heads(self, x: Tensor, sequences: int) -> Tensor:
        return x.reshape(sequences, -1, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, attn_bias: Tensor | None = None) -> Tensor:
        """query (B, P, Nq, C), key/value (B', P', Nk, C) with B*P == B'*P' -> (B, P, Nq, C).

        `attn_bias` is an optional additive bias broadcastable to (B*P, heads, Nq, Nk).
        """
        lead = query.shape[:2]
        sequences = lead[0] * lead[1]
        q = self._heads(self.q_proj(query), sequences)
        k = self._heads(self.k_proj(key), sequences)
        v = self._heads(self.v_proj(value), sequences)
        if attn_bias is not None:
            attn_bias = attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # (B*P, heads, Nq, hd)
        out = out.transpose(1, 2).reshape(*lead, -1, self.num_heads * self.head_dim)
        return self.o_proj(out)


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image attention, token MLP, image->token attention."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        hidden, heads, rate = config.hidden_size, config.num_attention_heads, config.attention_downsample_rate
        self.self_attn = PromptAttention(hidden, heads, downsample_rate=1)
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.cross_attn_token_to_image = PromptAttention(hidden, heads, rate)
        self.layer_norm2 = nn.LayerNorm(hidden)
        # The reference sizes this MLP's depth by the decoder's layer count (2 in every checkpoint).
        self.mlp = SamMLP(hidden, config.mlp_dim, hidden, num_layers=config.num_hidden_layers)
        self.layer_norm3 = nn.LayerNorm(hidden)
        self.layer_norm4 = nn.LayerNorm(hidden)
        self.cross_attn_image_to_token = PromptAttention(hidden, heads, rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor, attn_bias: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """queries (B, P, T, C) tokens, keys (B*P, 1, HW, C) image -> updated (queries, keys)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.layer_norm1(queries)

        q, k = queries + query_pe, keys + key_pe
        queries = self.layer_norm2(queries + self.cross_attn_token_to_image(q, k, keys, attn_bias))
        queries = self.layer_norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.layer_norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of two-way blocks plus a final token->image attention."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(config, skip_first_layer_pe=(i == 0))
            for i in range(config.num_hidden_layers)
        )
        self.final_attn_token_to_image = PromptAttention(
            config.hidden_size, config.num_attention_heads, config.attention_downsample_rate
        )
        self.layer_norm_final_attn = nn.LayerNorm(config.hidden_size)

    def forward(
        self,
        tokens: Tensor,
        image_embeddings: Tensor,
        image_pe: Tensor,
        attn_bias: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """tokens (B, P, T, C); image_embeddings, image_pe (B*P, C, h, w).

        Returns tokens (B, P, T, C) and image keys (B*P, 1, h*w, C).
        """
        keys = image_embeddings.flatten(2).transpose(1, 2).unsqueeze(1)
        key_pe = image_pe.flatten(2).transpose(1, 2).unsqueeze(1)
        if target_embedding is not None:
            # The reference adds the target in place on the first layer, which also shifts the
            # token positional embedding; later layers only shift the queries.
            tokens = tokens + target_embedding
        queries = tokens
        for i, layer in enumerate(self.layers):
            if target_embedding is not None and i > 0:
                queries = queries + target_embedding
            queries, keys = layer(queries, keys, tokens, key_pe, attn_bias)
        q, k = queries + tokens, keys + key_pe
        queries = self.layer_norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
