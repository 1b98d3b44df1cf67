"""Building blocks used by several models: activations, MLPs, SDPA attention, 2D RoPE, sine
position encodings, channel LayerNorm."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "quick_gelu": _quick_gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


def activation(name: str):
    """The activation function called `name` in a config (`gelu`, `relu`, `quick_gelu`, ...)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


activation_by_name = activation  # for modules whose argument is called `activation`


class FeedForward(nn.Module):
    """Linear → activation → Linear, with the checkpoint names `fc1`, `fc2`."""

    def __init__(self, hidden_size: int, intermediate_size: int, act: str = "gelu"):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention on (B, heads, L, head_dim) tensors.

    `mask` is boolean (True = attend) or additive float, broadcastable to (B, heads, Lq, Lk).
    """
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def axial_rope_tables(
    width: int, height: int, head_dim: int, theta: float, scale: float = 1.0, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (width*height, head_dim) of the 2D axial RoPE, row-major over (y, x).

    The first half of the head dim rotates with the x coordinate, the second with y; each frequency
    is applied to a pair of adjacent channels. Coordinates are multiplied by `scale`.
    """
    quarter = torch.arange(0, head_dim // 2, 2, dtype=torch.float32, device=device)
    inv_freq = 1.0 / (theta ** (quarter / (head_dim // 2)))  # (head_dim/4,)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    xs = xs.flatten().float() * scale
    ys = ys.flatten().float() * scale
    angles = torch.cat([xs[:, None] * inv_freq, ys[:, None] * inv_freq], dim=-1)  # (N, head_dim/2)
    angles = angles.repeat_interleave(2, dim=-1)  # (N, head_dim)
    return angles.cos(), angles.sin()


def apply_pairwise_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of `x` (..., N, head_dim) by the angles in `cos`/`sin` (N, head_dim).

    Computed in float32 and cast back, so bf16 inputs keep their accuracy.
    """
    xf = x.float()
    pairs = xf.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return (xf * cos + rotated * sin).to(x.dtype)


def sine_position_encoding_2d(
    batch: int,
    height: int,
    width: int,
    num_features: int,
    device=None,
    dtype: torch.dtype = torch.float32,
    temperature: float = 10000.0,
    normalize: bool = True,
    scale: float = 2 * math.pi,
) -> torch.Tensor:
    """DETR-style sine/cosine encoding of pixel positions: (batch, 2*num_features, height, width).

    Channels are [y features, x features]; positions count from 1 and, when `normalize`, are scaled
    to (0, scale]. Computed in `dtype` as the reference does.
    """
    y = torch.arange(1, height + 1, dtype=dtype, device=device)[:, None].expand(height, width)
    x = torch.arange(1, width + 1, dtype=dtype, device=device)[None, :].expand(height, width)
    if normalize:
        eps = 1e-6
        y = y / (y[-1:, :] + eps) * scale
        x = x / (x[:, -1:] + eps) * scale
    dim_t = torch.arange(num_features, dtype=torch.int64, device=device).to(dtype)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_features)
    pos_x = x[..., None] / dim_t
    pos_y = y[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=-1).flatten(-2)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=-1).flatten(-2)
    pos = torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1)  # (2F, H, W)
    return pos.unsqueeze(0).expand(batch, -1, -1, -1)


class SamMLP(nn.Module):
    """`num_layers` linear layers with an activation between them (the SAM "MLP" heads)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: str = "relu",
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"SamMLP needs at least 2 layers, got num_layers={num_layers}")
        self.act = activation_by_name(activation)
        self.proj_in = nn.Linear(input_dim, hidden_dim)
        self.layers = nn.ModuleList([nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers - 2)])
        self.proj_out = nn.Linear(hidden_dim, output_dim)
        self.sigmoid_output = sigmoid_output

    def forward(self, hidden: Tensor) -> Tensor:
        hidden = self.act(self.proj_in(hidden))
        for layer in self.layers:
            hidden = self.act(layer(hidden))
        hidden = self.proj_out(hidden)
        return torch.sigmoid(hidden) if self.sigmoid_output else hidden


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Sam3Attention(nn.Module):
    """Multi-head attention (SDPA) with separate query/key/value inputs: q_proj, k_proj, v_proj, o_proj."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """query (B, Lq, C), key/value (B, Lk, C); mask bool (True = attend) or additive, → (B, Lq, C)."""
        b, lq, c = query.shape
        lk = key.shape[1]
        hd = c // self.num_heads
        q = self.q_proj(query).view(b, lq, self.num_heads, hd).transpose(1, 2)
        k = self.k_proj(key).view(b, lk, self.num_heads, hd).transpose(1, 2)
        v = self.v_proj(value).view(b, lk, self.num_heads, hd).transpose(1, 2)
        out = sdpa(q, k, v, mask).transpose(1, 2).reshape(b, lq, c)
        return self.o_proj(out)


class Sam3DecoderMLP(nn.Module):
    """2- or 3-layer ReLU MLP with parameters `layer1`, `layer2`[, `layer3`]."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int = 2):
        super().__init__()
        if num_layers not in (2, 3):
            raise ValueError(f"Sam3DecoderMLP supports 2 or 3 layers, got {num_layers}")
        self.layer1 = nn.Linear(input_dim, hidden_dim)
        if num_layers == 2:
            self.layer2 = nn.Linear(hidden_dim, output_dim)
            self.layer3 = None
        else:
            self.layer2 = nn.Linear(hidden_dim, hidden_dim)
            self.layer3 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.layer1(x))
        if self.layer3 is None:
            return self.layer2(x)
        return self.layer3(F.relu(self.layer2(x)))
