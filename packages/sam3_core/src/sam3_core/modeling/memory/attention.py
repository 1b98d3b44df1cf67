"""Memory attention: the current frame's features attend to the memories of earlier frames (2D RoPE
on both sides) and to object pointers (appended after the spatial memories, without RoPE).

One layer loop serves every tracker; the cross-attention to the memories is a part passed in,
because the memories' layout differs: the SAM 3 tracker remembers whole feature maps (keys rotate
with the query grid's RoPE, `RoPEAttention`), EdgeTAM perceiver latents (`edgetam_attention`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from ...config.tracker import TrackerVideoConfigBase
from ..layers import AxialRoPE, RoPEAttention, activation, feed_forward

# A cross-attention to the memories: (query (B, h*w, C), key (B, M, C_mem), value (B, M, C_mem),
# rope (cos, sin) of the query grid, number of object-pointer tokens at the end of the keys) → (B, h*w, C).
CrossAttentionFactory = Callable[[], nn.Module]


class MemoryAttentionLayer(nn.Module):
    """Pre-norm: RoPE self-attention, cross-attention to the memories (the part given), MLP."""

    def __init__(self, config: TrackerVideoConfigBase, cross_attention: nn.Module) -> None:
        super().__init__()
        hidden = config.memory_attention_hidden_size
        heads = config.memory_attention_num_attention_heads
        internal = hidden // config.memory_attention_downsample_rate
        mlp_size, mlp_act = config.memory_attention_mlp
        self.self_attn = RoPEAttention(hidden, heads, internal_size=internal)
        self.cross_attn_image = cross_attention
        # The SAM 3 checkpoint names the MLP's layers on this layer itself (`linear1`, `linear2`);
        # EdgeTAM's says `mlp.up_proj`, `mlp.down_proj` (`checkpoint_keys.EDGETAM_VIDEO` maps them).
        self.linear1 = nn.Linear(hidden, mlp_size)
        self.linear2 = nn.Linear(mlp_size, hidden)
        self.act = activation(mlp_act)
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.layer_norm3 = nn.LayerNorm(hidden)

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
    """Conditions the current frame's features on the memory bank.

    cross_attention: builds one layer's cross-attention to the memories (see `CrossAttentionFactory`);
        default: RoPE on the keys laid out as whole frames on the query grid (the SAM 3 tracker's).
    """

    def __init__(
        self, config: TrackerVideoConfigBase, cross_attention: CrossAttentionFactory | None = None
    ) -> None:
        super().__init__()
        if cross_attention is None:
            cross_attention = self.grid_cross_attention(config)
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(config, cross_attention()) for _ in range(config.memory_attention_num_layers)
        )
        self.layer_norm = nn.LayerNorm(config.memory_attention_hidden_size)
        w, h = config.memory_attention_rope_feat_sizes  # the current frame's feature grid
        self.rope = memory_rope(config, w, h)

    @staticmethod
    def grid_cross_attention(config: TrackerVideoConfigBase) -> CrossAttentionFactory:
        """RoPE cross-attention whose keys are whole frames on the query grid, then object pointers."""
        hidden = config.memory_attention_hidden_size
        return lambda: RoPEAttention(
            hidden,
            config.memory_attention_num_attention_heads,
            internal_size=hidden // config.memory_attention_downsample_rate,
            kv_in_dim=config.memory_encoder_output_channels,
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
            memory: (B, M, C_mem) memories of earlier frames (laid out as the cross-attention part
                reads them), then object-pointer tokens.
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


def memory_rope(config: TrackerVideoConfigBase, width: int, height: int) -> AxialRoPE:
    """The memory attention's axial 2D RoPE tables on a `width` x `height` grid."""
    rope_type = config.rope_parameters.get("rope_type", "axial")
    if rope_type not in ("axial", "default"):
        raise ValueError(f"the memory attention uses axial 2D RoPE; got rope_type {rope_type!r}")
    head_dim = config.memory_attention_hidden_size // (
        config.memory_attention_downsample_rate * config.memory_attention_num_attention_heads
    )
    return AxialRoPE(width, height, head_dim, float(config.rope_parameters.get("rope_theta", 10000.0)))
