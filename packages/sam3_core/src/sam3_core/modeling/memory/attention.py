"""Memory attention: the current frame's features attend to the memories of earlier frames (2D RoPE
on both sides) and to object pointers (appended after the spatial memories, without RoPE)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...config import Sam3TrackerVideoConfig
from ..layers import activation, apply_pairwise_rope, axial_rope_tables, sdpa


class MemoryRoPEAttention(nn.Module):
    """Attention with 2D axial RoPE on the queries and on all keys but the last `num_k_exclude_rope`.

    Keys longer than the queries (several memory frames) reuse the query grid's rotation for
    each frame, so every memory frame is laid out on the same grid as the current frame.
    """

    def __init__(self, config: Sam3TrackerVideoConfig, kv_in_dim: int | None = None) -> None:
        super().__init__()
        hidden = config.memory_attention_hidden_size
        internal = hidden // config.memory_attention_downsample_rate
        self.num_heads = config.memory_attention_num_attention_heads
        self.head_dim = internal // self.num_heads
        kv_in_dim = hidden if kv_in_dim is None else kv_in_dim
        self.q_proj = nn.Linear(hidden, internal)
        self.k_proj = nn.Linear(kv_in_dim, internal)
        self.v_proj = nn.Linear(kv_in_dim, internal)
        self.o_proj = nn.Linear(internal, hidden)

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)  # (B, nh, L, hd)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        rope: tuple[Tensor, Tensor],
        num_k_exclude_rope: int = 0,
    ) -> Tensor:
        """query (B, Lq, C), key/value (B, Lk, Ckv); rope: cos, sin (Lq, head_dim) -> (B, Lq, C)."""
        q, k, v = (
            self._heads(self.q_proj(query)),
            self._heads(self.k_proj(key)),
            self._heads(self.v_proj(value)),
        )
        cos, sin = rope
        q = apply_pairwise_rope(q, cos, sin)
        num_rope = k.shape[-2] - num_k_exclude_rope
        if num_rope > 0:
            repeats = num_rope // q.shape[-2]
            k_cos, k_sin = (cos.repeat(repeats, 1), sin.repeat(repeats, 1)) if repeats > 1 else (cos, sin)
            k_rot = apply_pairwise_rope(k[..., :num_rope, :], k_cos, k_sin)
            k = torch.cat([k_rot, k[..., num_rope:, :]], dim=-2)
        out = sdpa(q, k, v).transpose(1, 2).flatten(-2)  # (B, Lq, internal)
        return self.o_proj(out)


class MemoryAttentionLayer(nn.Module):
    """Pre-norm: RoPE self-attention, RoPE cross-attention to the memories, MLP."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        hidden = config.memory_attention_hidden_size
        self.self_attn = MemoryRoPEAttention(config)
        self.cross_attn_image = MemoryRoPEAttention(config, kv_in_dim=config.memory_encoder_output_channels)
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
        h = self.layer_norm2(x)
        x = x + self.cross_attn_image(h, memory + memory_pos, memory, rope, num_object_pointer_tokens)
        return x + self.linear2(self.act(self.linear1(self.layer_norm3(x))))


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
        self.rope_theta = float(config.rope_parameters.get("rope_theta", 10000.0))
        self.grid = tuple(config.memory_attention_rope_feat_sizes)  # (w, h) of the feature map
        hidden = config.memory_attention_hidden_size // config.memory_attention_downsample_rate
        self.head_dim = hidden // config.memory_attention_num_attention_heads
        # Not a buffer: the model is built on the meta device and filled from the checkpoint only.
        self._rope_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def rope(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos, sin (h*w, head_dim) of the feature grid, float32, cached per device."""
        if device not in self._rope_cache:
            w, h = self.grid
            self._rope_cache[device] = axial_rope_tables(w, h, self.head_dim, self.rope_theta, device=device)
        return self._rope_cache[device]

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
        x = features + 0.1 * features_pos
        rope = self.rope(x.device)
        for layer in self.layers:
            x = layer(x, memory, memory_pos, rope, num_object_pointer_tokens)
        return self.layer_norm(x)
