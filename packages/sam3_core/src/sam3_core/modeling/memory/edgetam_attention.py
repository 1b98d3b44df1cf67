"""EdgeTAM's memory attention: the current frame attends to perceiver-compressed memories.

Like the SAM 3 tracker's memory attention (pre-norm RoPE self-attention, RoPE cross-attention to
the memory, MLP), except for the memory's layout. Each remembered frame is L1 global latents (no
position, so no RoPE) followed by k x k windowed latents, which rotate with the RoPE of their own
k x k grid (`memory_attention_rope_k_sizes`), not the query grid; object-pointer tokens at the end
get no RoPE. The number of remembered frames follows from the token count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...config.edgetam import EdgeTamVideoConfig
from ..layers import Attention, AxialRoPE, RoPEAttention, activation, apply_pairwise_rope

__all__ = ["EdgeTamMemoryAttention"]


class LatentRoPECrossAttention(Attention):
    """Cross-attention whose keys are frames of [global latents | windowed latents] + pointers."""

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        rope_q: tuple[Tensor, Tensor],
        rope_k: tuple[Tensor, Tensor],
        num_global: int,
        num_object_pointer_tokens: int = 0,
    ) -> Tensor:
        """query (B, Lq, C), key/value (B, F*(L1+L2) + P, C_kv); rope_q (Lq, hd), rope_k (L2, hd)."""
        q, k, v = self._project(query, key, value)  # (B, nh, L, hd)
        q = apply_pairwise_rope(q, *rope_q)
        num_memory = k.shape[-2] - num_object_pointer_tokens
        per_frame = num_global + rope_k[0].shape[0]
        if num_memory % per_frame:
            raise ValueError(
                f"{num_memory} memory tokens are not a whole number of {per_frame}-token frames "
                f"({num_global} global + {rope_k[0].shape[0]} windowed latents)"
            )
        if num_memory:
            b, nh, _, hd = k.shape
            frames = k[..., :num_memory, :].reshape(b, nh, num_memory // per_frame, per_frame, hd)
            spatial = apply_pairwise_rope(frames[..., num_global:, :], *rope_k)
            frames = torch.cat([frames[..., :num_global, :], spatial], dim=-2).reshape(b, nh, num_memory, hd)
            k = torch.cat([frames, k[..., num_memory:, :]], dim=-2)
        return self._attend(q, k, v, None, query.shape[:-1])


class EdgeTamMemoryAttentionLayer(nn.Module):
    """Pre-norm: RoPE self-attention, cross-attention to the compressed memory, MLP."""

    def __init__(self, config: EdgeTamVideoConfig) -> None:
        super().__init__()
        hidden = config.memory_attention_hidden_size
        heads = config.memory_attention_num_attention_heads
        internal = hidden // config.memory_attention_downsample_rate
        self.self_attn = RoPEAttention(hidden, heads, internal_size=internal)
        self.cross_attn_image = LatentRoPECrossAttention(
            hidden, heads, internal_size=internal, kv_in_dim=config.memory_encoder_output_channels
        )
        self.mlp = _MLP(
            hidden, config.memory_attention_mlp_hidden_size, config.memory_attention_mlp_hidden_act
        )
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.layer_norm2 = nn.LayerNorm(hidden)
        self.layer_norm3 = nn.LayerNorm(hidden)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        rope_q: tuple[Tensor, Tensor],
        rope_k: tuple[Tensor, Tensor],
        num_global: int,
        num_object_pointer_tokens: int,
    ) -> Tensor:
        h = self.layer_norm1(x)
        x = x + self.self_attn(h, h, h, rope_q)
        h = self.layer_norm2(x)
        x = x + self.cross_attn_image(
            h, memory + memory_pos, memory, rope_q, rope_k, num_global, num_object_pointer_tokens
        )
        return x + self.mlp(self.layer_norm3(x))


class _MLP(nn.Module):
    """up_proj, activation, down_proj (the checkpoint's names)."""

    def __init__(self, hidden: int, intermediate: int, act: str):
        super().__init__()
        self.up_proj = nn.Linear(hidden, intermediate)
        self.down_proj = nn.Linear(intermediate, hidden)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.up_proj(x)))


class EdgeTamMemoryAttention(nn.Module):
    """Conditions the current frame's features on its perceiver-compressed memory."""

    def __init__(self, config: EdgeTamVideoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            EdgeTamMemoryAttentionLayer(config) for _ in range(config.memory_attention_num_layers)
        )
        self.layer_norm = nn.LayerNorm(config.memory_attention_hidden_size)
        rope_type = config.rope_parameters.get("rope_type", "axial")
        if rope_type not in ("axial", "default"):
            raise ValueError(f"the memory attention uses axial 2D RoPE; got rope_type {rope_type!r}")
        head_dim = config.memory_attention_hidden_size // (
            config.memory_attention_downsample_rate * config.memory_attention_num_attention_heads
        )
        theta = float(config.rope_parameters.get("rope_theta", 10000.0))
        self.rope_q = AxialRoPE(*config.memory_attention_rope_feat_sizes, head_dim, theta)
        self.rope_k = AxialRoPE(*config.memory_attention_rope_k_sizes, head_dim, theta)
        self.num_global = config.perceiver_resampler_num_latents

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
            memory: (B, F*(L1+L2) + P, C_mem) F frames of perceiver tokens, then P pointer tokens.
            memory_pos: (B, same, C_mem) their position (spatial + temporal) encodings.
            num_object_pointer_tokens: P.

        Returns:
            (B, h*w, C) memory-conditioned features.
        """
        x = features + 0.1 * features_pos
        rope_q, rope_k = self.rope_q(x.device), self.rope_k(x.device)
        for layer in self.layers:
            x = layer(x, memory, memory_pos, rope_q, rope_k, self.num_global, num_object_pointer_tokens)
        return self.layer_norm(x)
