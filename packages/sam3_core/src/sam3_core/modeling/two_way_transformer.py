"""SAM's two-way transformer: prompt tokens and image embedding attend to each other."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import Sam3TrackerMaskDecoderConfig
from .layers import MLP, Attention


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image attention, token MLP, image->token attention."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        hidden, heads, rate = config.hidden_size, config.num_attention_heads, config.attention_downsample_rate
        self.self_attn = Attention(hidden, heads)
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.cross_attn_token_to_image = Attention(hidden, heads, internal_size=hidden // rate)
        self.layer_norm2 = nn.LayerNorm(hidden)
        # The reference sizes this MLP's depth by the decoder's layer count (2 in every checkpoint).
        depth = config.num_hidden_layers
        self.mlp = MLP([hidden, *[config.mlp_dim] * (depth - 1), hidden], names="sam")
        self.layer_norm3 = nn.LayerNorm(hidden)
        self.layer_norm4 = nn.LayerNorm(hidden)
        self.cross_attn_image_to_token = Attention(hidden, heads, internal_size=hidden // rate)
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
        self.final_attn_token_to_image = Attention(
            config.hidden_size,
            config.num_attention_heads,
            internal_size=config.hidden_size // config.attention_downsample_rate,
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
        """tokens (B, P, T, C); image_embeddings (B*P, C, h, w), image_pe (B*P or 1, C, h, w).

        Returns tokens (B, P, T, C) and image keys (B*P, 1, h*w, C).
        """
        # Tokens stay (B, P, T, C) and the image (B*P, 1, hw, C): attention pairs them by sequence,
        # so neither side is reshaped between layers.
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
