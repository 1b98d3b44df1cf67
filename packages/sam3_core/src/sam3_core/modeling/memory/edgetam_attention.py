"""EdgeTAM's memory attention: the current frame attends to perceiver-compressed memories.

The SAM 3 tracker's memory attention (`attention.MemoryAttention`: pre-norm RoPE self-attention,
RoPE cross-attention to the memory, MLP) with another cross-attention part, for the memory's layout.
Each remembered frame is L1 global latents (no position, so no RoPE) followed by k x k windowed
latents, which rotate with the RoPE of their own k x k grid (`memory_attention_rope_k_sizes`), not
the query grid; object-pointer tokens at the end get no RoPE. The number of remembered frames
follows from the token count.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...config.edgetam import EdgeTamVideoConfig
from ..layers import Attention, AxialRoPE, apply_pairwise_rope
from .attention import MemoryAttention, memory_rope

__all__ = ["EdgeTamMemoryAttention", "LatentRoPECrossAttention"]


class LatentRoPECrossAttention(Attention):
    """Cross-attention whose keys are frames of [global latents | windowed latents] + pointers.

    rope_k: the RoPE of the windowed latents' k x k grid; num_global: L1, the global latents per frame.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        *,
        internal_size: int,
        kv_in_dim: int,
        rope_k: AxialRoPE,
        num_global: int,
    ) -> None:
        super().__init__(hidden_size, num_heads, internal_size=internal_size, kv_in_dim=kv_in_dim)
        self.rope_k = rope_k  # tables, not parameters: shared by the layers, built once per device
        self.num_global = num_global

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        rope: tuple[Tensor, Tensor],
        num_object_pointer_tokens: int = 0,
    ) -> Tensor:
        """query (B, Lq, C), key/value (B, F*(L1+L2) + P, C_kv); rope (Lq, hd) of the query grid."""
        q, k, v = self._project(query, key, value)  # (B, nh, L, hd)
        q = apply_pairwise_rope(q, *rope)
        rope_k = self.rope_k(q.device)  # (L2, hd)
        num_global = self.num_global
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


class EdgeTamMemoryAttention(MemoryAttention):
    """The memory attention with the perceiver latents' cross-attention (`LatentRoPECrossAttention`)."""

    def __init__(self, config: EdgeTamVideoConfig) -> None:
        rope_k = memory_rope(config, *config.memory_attention_rope_k_sizes)
        hidden = config.memory_attention_hidden_size

        def cross_attention() -> LatentRoPECrossAttention:
            return LatentRoPECrossAttention(
                hidden,
                config.memory_attention_num_attention_heads,
                internal_size=hidden // config.memory_attention_downsample_rate,
                kv_in_dim=config.memory_encoder_output_channels,
                rope_k=rope_k,
                num_global=config.perceiver_resampler_num_latents,
            )

        super().__init__(config, cross_attention)
