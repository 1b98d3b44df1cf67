"""The video tracker's memory: encoding past predictions, and attending to them.

- `MemoryEncoder`: a frame's image features plus its predicted mask -> a compact memory map
  (`memory_encoder_output_channels` wide, 64 in SAM 3) and its sine position encoding.
- `MemoryAttention`: the current frame's features attend to the memories of earlier frames
  (2D RoPE on both sides) and to object pointers (appended after the spatial memories, without
  RoPE, as the reference does).
- `object_pointer_tokens`: object pointers of earlier frames -> memory tokens with a temporal
  encoding, split to the memory width.

Parameter names follow the hub checkpoint (`memory_encoder.memory_fuser.layers.0.scale`, ...).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import Sam3TrackerVideoConfig
from .layers import activation, apply_pairwise_rope, axial_rope_tables, sdpa, sine_position_encoding_2d
from .prompt_decoder import LayerNorm2d

__all__ = [
    "MaskDownSampler",
    "MemoryFuser",
    "MemoryEncoder",
    "MemoryRoPEAttention",
    "MemoryAttentionLayer",
    "MemoryAttention",
    "temporal_sine_encoding",
    "object_pointer_tokens",
]


# ---------------------------------------------------------------------------------------------
# Memory encoder
# ---------------------------------------------------------------------------------------------


class _DownSampleLayer(nn.Module):
    """Strided conv -> channel LayerNorm -> activation."""

    def __init__(self, config: Sam3TrackerVideoConfig, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=config.mask_downsampler_kernel_size,
            stride=config.mask_downsampler_stride,
            padding=config.mask_downsampler_padding,
        )
        self.layer_norm = LayerNorm2d(out_channels, eps=1e-6)
        self.act = activation(config.mask_downsampler_hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.layer_norm(self.conv(x)))


class MaskDownSampler(nn.Module):
    """(N, 1, H, W) mask -> (N, embed_dim, H / total_stride, W / total_stride).

    Each layer divides the side by `stride` and multiplies the channels by stride², then a 1x1
    conv projects to `mask_downsampler_embed_dim`.
    """

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        stride, total = config.mask_downsampler_stride, config.mask_downsampler_total_stride
        num_layers = int(math.log2(total) // math.log2(stride))
        channels = [stride ** (2 * i) for i in range(num_layers + 1)]  # 1, s², s⁴, ...
        self.layers = nn.ModuleList(
            _DownSampleLayer(config, channels[i], channels[i + 1]) for i in range(num_layers)
        )
        self.final_conv = nn.Conv2d(channels[-1], config.mask_downsampler_embed_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.final_conv(x)


class _FuserBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        dim = config.memory_fuser_embed_dim
        self.depthwise_conv = nn.Conv2d(
            dim,
            dim,
            kernel_size=config.memory_fuser_kernel_size,
            padding=config.memory_fuser_padding,
            groups=dim,
        )
        self.layer_norm = LayerNorm2d(dim, eps=1e-6)
        self.act = activation(config.memory_fuser_hidden_act)
        self.pointwise_conv1 = nn.Linear(dim, config.memory_fuser_intermediate_dim)
        self.pointwise_conv2 = nn.Linear(config.memory_fuser_intermediate_dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), config.memory_fuser_layer_scale_init_value))

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, H, W)
        h = self.layer_norm(self.depthwise_conv(x)).permute(0, 2, 3, 1)  # (N, H, W, C)
        h = self.scale * self.pointwise_conv2(self.act(self.pointwise_conv1(h)))
        return x + h.permute(0, 3, 1, 2)


class MemoryFuser(nn.Module):
    """A stack of ConvNeXt blocks mixing image features with the downsampled mask."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_FuserBlock(config) for _ in range(config.memory_fuser_num_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Image features + mask -> memory features and their sine position encoding."""

    def __init__(self, config: Sam3TrackerVideoConfig) -> None:
        super().__init__()
        hidden = config.memory_encoder_hidden_size
        self.output_channels = config.memory_encoder_output_channels
        self.mask_downsampler = MaskDownSampler(config)
        self.feature_projection = nn.Conv2d(hidden, hidden, kernel_size=1)
        self.memory_fuser = MemoryFuser(config)
        self.projection = nn.Conv2d(hidden, self.output_channels, kernel_size=1)

    def forward(self, vision_features: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """vision_features (N, C, h, w), masks (N, 1, 16h, 16w) already scaled for the encoder.

        Returns (features, position encoding), both (N, output_channels, h, w).
        """
        fused = self.feature_projection(vision_features) + self.mask_downsampler(masks)
        features = self.projection(self.memory_fuser(fused))
        n, _, h, w = features.shape
        pos = sine_position_encoding_2d(
            n, h, w, self.output_channels // 2, device=features.device, dtype=features.dtype
        )
        return features, pos


# ---------------------------------------------------------------------------------------------
# Memory attention
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Object pointers
# ---------------------------------------------------------------------------------------------


def temporal_sine_encoding(positions: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """1D sine encoding of (N,) float positions -> (N, dim) as [sin features, cos features]."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=positions.device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    angles = positions[:, None] / dim_t
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def object_pointer_tokens(
    pointers: list[Tensor],
    temporal_offsets: list[int],
    max_offset: int,
    memory_dim: int,
    projection: nn.Module | None,
) -> tuple[Tensor, Tensor]:
    """Object pointers of earlier frames as memory tokens.

    Args:
        pointers: per frame a (B, C) object pointer.
        temporal_offsets: per pointer, how many frames ago (in tracking direction) it was made.
        max_offset: the offsets are divided by this before the sine encoding.
        memory_dim: width of the memory tokens; a C-wide pointer becomes C / memory_dim tokens.
        projection: C -> memory_dim projection of the temporal encoding, or None for no temporal
            encoding (zeros).

    Returns:
        tokens (B, N * C / memory_dim, memory_dim) and their position encodings, same shape.
    """
    stacked = torch.stack(pointers, dim=1)  # (B, N, C)
    batch, num, channels = stacked.shape
    if projection is not None:
        offsets = torch.tensor(temporal_offsets, device=stacked.device, dtype=torch.float32) / max_offset
        pos = projection(temporal_sine_encoding(offsets, channels).to(stacked.dtype))  # (N, memory_dim)
        pos = pos.unsqueeze(0).expand(batch, -1, -1)
    else:
        pos = stacked.new_zeros(batch, num, memory_dim)
    if memory_dim < channels:
        splits = channels // memory_dim
        stacked = stacked.reshape(batch, num * splits, memory_dim)  # each pointer -> `splits` tokens
        pos = pos.repeat_interleave(splits, dim=1)
    return stacked, pos
