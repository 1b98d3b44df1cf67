"""Memory attention: the current frame's features attend to the memories of earlier frames (2D RoPE
on both sides) and to object pointers (appended after the spatial memories, without RoPE)."""

from __future__ import annotations

from torch import Tensor, nn

from ...config import Sam3TrackerVideoConfig
from ..layers import AxialRoPE, RoPEAttention, activation, feed_forward


class MemoryAttentionLayer(nn.Module):
    """Pre-norm: RoPE self-attention, RoPE cross-attention to the memories, MLP."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        hidden = config.memory_attention_hidden_size
        heads = config.memory_attention_num_attention_heads
        internal = hidden // config.memory_attention_downsample_rate
        self.self_attn = RoPEAttention(hidden, heads, internal_size=internal)
        self.cross_attn_image = RoPEAttention(
            hidden, heads, internal_size=internal, kv_in_dim=config.memory_encoder_output_channels
        )
        # The hub checkpoint names the MLP's layers on this layer itself (`linear1`, `linear2`).
        self.linear1 = nn.Linear(hidden, config.memory_attention_feed_forward_hidden_size)
        self.linear2 = nn.Linear(config.memory_attention_feed_forward_hidden_size, hidden)
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.layer_norm3 = nn.LayerNorm(hidden)
        self.act = activation(config.memory_attention_feed_forward_hidden_act)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        rope: tuple[Tensor, Tensor],
        num_object_pointer_tokens: int = 0,
    ) -> Tensor:
        h = self.layer_norm1(x)
        x = x + self.self_attn(h, h, h, rope)
        h = self.layer_norm2(x).expand(memory.shape[0], -1, -1)  # x may be one frame shared by all
        x = x + self.cross_attn_image(h, memory + memory_pos, memory, rope, num_object_pointer_tokens)
        return x + feed_forward(self.layer_norm3(x), [self.linear1, self.linear2], self.act)


class MemoryAttention(nn.Module):
    """Conditions the current frame's features on the memory bank."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(config) for _ in range(config.memory_attention_num_layers)
        )
        self.layer_norm = nn.LayerNorm(config.memory_attention_hidden_size)
        rope_type = config.rope_parameters.get("rope_type", "axial")
        if rope_type not in ("axial", "default"):
            raise ValueError(f"the memory attention uses axial 2D RoPE; got rope_type {rope_type!r}")
        hidden = config.memory_attention_hidden_size // config.memory_attention_downsample_rate
        w, h = config.memory_attention_rope_feat_sizes  # the current frame's feature grid
        self.rope = AxialRoPE(
            w,
            h,
            hidden // config.memory_attention_num_attention_heads,
            float(config.rope_parameters.get("rope_theta", 10000.0)),
        )

    def forward(
        self,
        features: Tensor,
        features_pos: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_object_pointer_tokens: int = 0,
    ) -> Tensor:
        """Attend from the current frame to the memories.

        Args:
            features: (B, h*w, C) current frame's lowest-resolution features, row-major.
            features_pos: (B, h*w, C) their sine position encoding.
            memory: (B, M, C_mem) spatial memories of earlier frames, then object-pointer tokens.
            memory_pos: (B, M, C_mem) their position (spatial + temporal) encodings.
            num_object_pointer_tokens: how many of the last memory tokens are object pointers
                (they get no RoPE).

        Returns:
            (B, h*w, C) memory-conditioned features.
        """
        if features.shape[0] > 1 and features.stride(0) == 0 and features_pos.stride(0) == 0:
            # the same frame for every object (an expanded view): the first layer's self-attention
            # runs once for all of them, not once per object
            features, features_pos = features[:1], features_pos[:1]
        x = features + 0.1 * features_pos
        rope = self.rope(x.device)
        for layer in self.layers:
            x = layer(x, memory, memory_pos, rope, num_object_pointer_tokens)
        return self.layer_norm(x)
