"""The CLIP text encoder of the concept detector.

`CLIPTextModelWithProjection` keeps the reference's module paths (`text_model.embeddings...`,
`text_model.encoder.layers.N...`, `text_model.final_layer_norm`, `text_projection`) so the detector's
`text_encoder.*` checkpoint keys load unchanged. SAM 3 uses the per-token hidden states (not CLIP's
pooled EOS embedding), so the forward returns `last_hidden_state` only.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import CLIPTextConfig
from .layers import MLP, Attention


class CLIPTextEmbeddings(nn.Module):
    """Token embedding plus learnt absolute position embedding."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[-1]
        max_len = self.position_embedding.num_embeddings
        if length > max_len:
            raise ValueError(
                f"input_ids has {length} tokens, more than the text encoder's {max_len} positions; "
                "tokenize with truncation to at most that length"
            )
        positions = torch.arange(length, device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)  # (B, L, D)


class CLIPEncoderLayer(nn.Module):
    """Pre-norm transformer layer."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        eps = config.layer_norm_eps if config.layer_norm_eps is not None else 1e-5
        hidden = config.hidden_size
        self.self_attn = Attention(hidden, config.num_attention_heads, out_name="out_proj")
        self.layer_norm1 = nn.LayerNorm(hidden, eps=eps)
        self.mlp = MLP([hidden, config.intermediate_size, hidden], config.hidden_act, names="fc")
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=eps)

    def forward(self, hidden_states: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.layer_norm1(hidden_states)
        hidden_states = hidden_states + self.self_attn(x, x, x, attn_mask)
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class CLIPEncoder(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden_states: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, attn_mask)
        return hidden_states


def causal_padding_mask(
    attention_mask: torch.Tensor | None, length: int, device: torch.device
) -> torch.Tensor:
    """Boolean SDPA mask (B or 1, 1, L, L): token i sees tokens j <= i that are not padding.

    Args:
        attention_mask: (B, L) with 1 for real tokens, 0 for padding; None means no padding.
    """
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()  # (L, L)
    if attention_mask is None:
        return causal[None, None]
    keys = attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, L)
    mask = causal[None, None] & keys
    # A query row with every key masked (an all-padding sequence) would give NaN; let it see itself.
    return mask | torch.eye(length, dtype=torch.bool, device=device)[None, None] & ~mask.any(-1, keepdim=True)


class CLIPTextModel(nn.Module):
    """CLIP text transformer: embeddings, causal encoder, final LayerNorm."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        eps = config.layer_norm_eps if config.layer_norm_eps is not None else 1e-5
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=eps)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L), 1 for tokens, 0 for padding.

        Returns:
            (B, L, hidden_size) per-token hidden states after the final LayerNorm.
        """
        hidden_states = self.embeddings(input_ids)
        mask = causal_padding_mask(attention_mask, input_ids.shape[-1], input_ids.device)
        hidden_states = self.encoder(hidden_states, mask)
        return self.final_layer_norm(hidden_states)


class CLIPTextModelWithProjection(nn.Module):
    """The detector's `text_encoder`: the text transformer plus CLIP's (unused by SAM 3) projection.

    `text_projection` projects CLIP's pooled EOS embedding; SAM 3 never uses it but the checkpoint
    holds it, so it is kept to load strictly.
    """

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.text_model = CLIPTextModel(config)
        projection_dim = config.projection_dim if config.projection_dim is not None else config.hidden_size
        self.text_projection = nn.Linear(config.hidden_size, projection_dim, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, hidden_size) hidden states."""
        return self.text_model(input_ids, attention_mask)
