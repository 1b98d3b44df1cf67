"""Building blocks shared by every model: activations, one MLP, one SDPA attention (with a 2D RoPE
variant), sine position encodings, channel LayerNorm.

The attention and the MLP keep each caller's parameter names (`out_proj` for CLIP, `fc1`/`fc2`,
`layer1..3`, ...), so the checkpoint keys stay those of the hub checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .folded_attention import attend_few_keys, attend_few_queries, folds


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

    Computed in float32 and cast back, so bf16 inputs keep their accuracy. Each pair is one complex
    number times the unit complex (cos, sin): a single elementwise pass instead of the five
    (negate, stack, two products, sum) of the real-valued rotation.
    """
    xf = x.float()
    if not _complex_viewable(xf):
        xf = xf.contiguous()
    rotation = torch.complex(cos[..., 0::2].float(), sin[..., 0::2].float())  # (N, head_dim/2)
    rotated = torch.view_as_complex(xf.unflatten(-1, (-1, 2))) * rotation
    return torch.view_as_real(rotated).flatten(-2).to(x.dtype)


def _complex_viewable(x: torch.Tensor) -> bool:
    """Whether `view_as_complex` can read x (..., 2k) as (..., k) complex pairs without a copy."""
    return x.stride(-1) == 1 and x.storage_offset() % 2 == 0 and all(s % 2 == 0 for s in x.stride()[:-1])


def sine_angles(
    coords: torch.Tensor, num_features: int, scale: float = 2 * math.pi, temperature: float = 10000.0
) -> torch.Tensor:
    """The angles of the sine encodings: (...,) → (..., num_features), `coords * scale` over
    frequencies that fall by `temperature` across the features, each frequency used twice
    (feature 2i and 2i+1: one for the sine, one for the cosine). Computed in the dtype of `coords`."""
    dim_t = torch.arange(num_features, dtype=torch.int64, device=coords.device).to(coords.dtype)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_features)
    return coords[..., None] * scale / dim_t


def sine_features(
    coords: torch.Tensor, num_features: int, scale: float = 2 * math.pi, temperature: float = 10000.0
) -> torch.Tensor:
    """DETR's sine/cosine features of coordinates: (...,) → (..., num_features), interleaved
    [sin, cos, sin, cos, ...] of the `sine_angles`.

    The one sine encoding of the project: box and point coordinates in the detector, pixel positions
    (`sine_position_encoding_2d`) everywhere else; the object pointers' temporal encoding lays out
    the same angles as [sines | cosines] (`memory.pointers`).
    """
    pos = sine_angles(coords, num_features, scale, temperature)
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


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

    Channels are [y features, x features] (`sine_features` of each coordinate); positions count from
    1 and, when `normalize`, are scaled to (0, scale]. Computed in `dtype` as the reference does.
    """
    # The y features depend on the row only and the x features on the column only: the sines are
    # taken on (H + W) positions and broadcast (elementwise the same numbers as on the full grid,
    # at a fraction of the cost on the 288x288 FPN level).
    y = torch.arange(1, height + 1, dtype=dtype, device=device)
    x = torch.arange(1, width + 1, dtype=dtype, device=device)
    if normalize:
        eps = 1e-6
        y = y / (y[-1:] + eps)
        x = x / (x[-1:] + eps)
    else:
        scale = 1.0
    pos_x = sine_features(x, num_features, scale, temperature)  # (W, F)
    pos_y = sine_features(y, num_features, scale, temperature)  # (H, F)
    pos = torch.cat(
        (pos_y.T[:, :, None].expand(-1, height, width), pos_x.T[:, None, :].expand(-1, height, width))
    )  # (2F, H, W)
    return pos.unsqueeze(0).expand(batch, -1, -1, -1)


class ConvTranspose2x2(nn.ConvTranspose2d):
    """A 2x2, stride-2 transposed convolution (the FPN's and the mask decoder's 2x upsampling)
    computed as one matmul plus a pixel shuffle, with the same `weight` (C, O, 2, 2) and `bias`.

    The strides never overlap, so each input pixel maps to its own 2x2 output block: a (C -> 4*O)
    linear map per pixel. This runs about 2x faster than the CPU transposed-convolution kernel in
    fp32 and 3x faster in bf16 (where that kernel has no fast path), to within float rounding. The
    output is channels-last in memory (a permuted view's copy), which the following convolutions
    read without another copy.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=2, stride=2)

    def forward(self, x: Tensor, residual: Tensor | None = None, then: nn.Conv2d | None = None) -> Tensor:
        """(B, C, H, W) -> (B, O, 2H, 2W), plus `residual` (B, O, 2H, 2W) when given. `then`: a 1x1
        convolution (O -> O') applied to the result, folded into the same matmul."""
        b, _, h, w = x.shape
        weight, bias = self.weight, self.bias  # (C, O, 2, 2), (O,)
        if then is not None:
            # two linear maps per pixel make one: no pass (and no map) at the doubled resolution
            if then.kernel_size != (1, 1) or then.stride != (1, 1) or then.groups != 1:
                raise ValueError(f"`then` must be a plain 1x1 convolution, got {then}")
            proj = then.weight.flatten(1)  # (O', O)
            weight = torch.einsum("po,cokl->cpkl", proj, weight)
            bias = proj @ bias if then.bias is None else torch.addmv(then.bias, proj, bias)
        o = weight.shape[1]
        weight = weight.permute(1, 2, 3, 0).reshape(o * 4, -1)  # (O*2*2, C), rows (o, dy, dx)
        # the bias goes into the matmul (no pass over the output for it)
        y = F.linear(x.permute(0, 2, 3, 1), weight, bias.repeat_interleave(4))  # (B, H, W, O*4)
        y = y.view(b, h, w, o, 2, 2).permute(0, 1, 4, 2, 5, 3)  # (B, H, dy, W, dx, O) view
        if residual is not None:  # shuffled and added in one pass over the output
            out = torch.add(residual.permute(0, 2, 3, 1).view(b, h, 2, w, 2, o), y)
            return out.view(b, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
        return y.reshape(b, 2 * h, 2 * w, o).permute(0, 3, 1, 2)  # NCHW view of channels-last memory


def channels_last_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """`conv(x)` with its weight in channels-last memory (a copy of the small weight per call: the
    parameter keeps the checkpoint's layout). With `x` channels-last too, the output is."""
    weight = conv.weight.contiguous(memory_format=torch.channels_last)
    return conv._conv_forward(x, weight, conv.bias)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# Parameter names of the `n` linear layers of each MLP layout; they are the checkpoint's names.
MLP_LAYOUTS = {
    "layers": lambda n: [f"layers.{i}" for i in range(n)],
    "fc": lambda n: [f"fc{i}" for i in range(1, n + 1)],
    "layer": lambda n: [f"layer{i}" for i in range(1, n + 1)],
    "sam": lambda n: ["proj_in", *[f"layers.{i}" for i in range(n - 2)], "proj_out"],
    "proj": lambda n: ["up_proj", *[f"layers.{i}" for i in range(n - 2)], "down_proj"],
}


class MLP(nn.Module):
    """Linear layers with an activation between them (none after the last), optional sigmoid output.

    Args:
        dims: widths [input, hidden..., output]; `len(dims) - 1` linear layers.
        act: activation name (see `ACTIVATIONS`).
        sigmoid_output: apply a sigmoid to the output.
        names: parameter layout, one of `MLP_LAYOUTS`: "layers" (layers.0..n-1), "fc" (fc1, fc2, ...),
            "layer" (layer1, layer2, ...), "sam" (proj_in, layers.0..n-3, proj_out), "proj" (up_proj,
            layers.0..n-3, down_proj: the memory attention's and EdgeTAM's perceiver's).
        bias: whether the linear layers have biases (EdgeTAM's perceiver's have none).
        pre_norm: normalise the input first with a LayerNorm named `layer_norm` (EdgeTAM's perceiver).
    """

    def __init__(
        self,
        dims: Sequence[int],
        act: str = "relu",
        sigmoid_output: bool = False,
        names: str = "layers",
        bias: bool = True,
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"an MLP needs at least [input, output] widths, got dims={list(dims)}")
        if names not in MLP_LAYOUTS:
            raise ValueError(f"unknown MLP layout {names!r}; expected one of {sorted(MLP_LAYOUTS)}")
        num_layers = len(dims) - 1
        if names in ("sam", "proj") and num_layers < 2:
            raise ValueError(f"the {names!r} MLP layout needs at least 2 layers, got dims={list(dims)}")
        self.layer_norm = nn.LayerNorm(dims[0]) if pre_norm else None
        self.layer_names = MLP_LAYOUTS[names](num_layers)
        for name, d_in, d_out in zip(self.layer_names, dims[:-1], dims[1:]):
            parent, _, _ = name.rpartition(".")  # "layers.2" lives in the ModuleList `layers`
            if not parent:
                self.add_module(name, nn.Linear(d_in, d_out, bias=bias))
                continue
            if parent not in self._modules:
                self.add_module(parent, nn.ModuleList())
            self._modules[parent].append(nn.Linear(d_in, d_out, bias=bias))
        self.act = activation(act)
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        """(..., dims[0]) → (..., dims[-1])."""
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        x = feed_forward(x, [self.get_submodule(name) for name in self.layer_names], self.act)
        return torch.sigmoid(x) if self.sigmoid_output else x


# A feed-forward's hidden activations are cut into chunks of rows of at most this many bytes: a whole
# frame's (5184 tokens x 2048 in the memory attention: 42 MB) is mapped fresh from the system and
# faulted in on every call, while small chunks are reused from the heap and stay in cache (measured:
# a tracking step at 1008 px 1.60 -> 1.47 s on 2 CPU cores).
FEED_FORWARD_CHUNK_BYTES = 8 * 2**20
_IN_PLACE = {F.gelu: torch.ops.aten.gelu_, F.relu: torch.ops.aten.relu_}


def feed_forward(x: Tensor, linears: Sequence[nn.Module], act) -> Tensor:
    """`linears` with `act` between them (none after the last) over (..., C) → (..., C_out),
    in chunks of rows when the hidden activations are large. Rows are independent, so the result
    is the same as in one piece."""
    act_ = _IN_PLACE.get(act, act) if not torch.is_grad_enabled() else act  # no extra hidden buffer

    def run(rows: Tensor) -> Tensor:
        for i, linear in enumerate(linears):
            rows = linear(rows)
            if i < len(linears) - 1:
                rows = act_(rows)
        return rows

    widest = max(linear.out_features for linear in linears[:-1]) if len(linears) > 1 else 0
    n = math.prod(x.shape[:-1])
    step = max(1, FEED_FORWARD_CHUNK_BYTES // max(1, widest * x.element_size()))
    if n <= step:
        return run(x)
    flat = x.reshape(n, x.shape[-1])
    out = flat.new_empty(n, linears[-1].out_features)
    for start in range(0, n, step):
        out[start : start + step] = run(flat[start : start + step])
    return out.view(*x.shape[:-1], -1)


class Attention(nn.Module):
    """Multi-head attention (SDPA) with q/k/v/output projections over any leading dims.

    Queries (..., Lq, C) and keys/values (..., Lk, C_kv) may lay out their leading dims differently
    (SAM's decoder has (B, P, N, C) against (B*P, 1, N, C)) as long as both hold the same number of
    sequences; the output has the query's leading dims.

    Args:
        hidden_size: width C of the queries and of the output.
        num_heads: attention heads; must divide the internal width.
        internal_size: width inside the attention (SAM's decoder and memory attention narrow it);
            default `hidden_size`.
        kv_in_dim: width C_kv of the key and value inputs; default `hidden_size`.
        out_name: parameter name of the output projection (`o_proj`; CLIP's checkpoint says `out_proj`).
        bias: whether the projections have biases (EdgeTAM's perceiver's have none).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        internal_size: int | None = None,
        kv_in_dim: int | None = None,
        out_name: str = "o_proj",
        bias: bool = True,
    ) -> None:
        super().__init__()
        internal = hidden_size if internal_size is None else internal_size
        kv_in_dim = hidden_size if kv_in_dim is None else kv_in_dim
        if internal % num_heads:
            raise ValueError(f"attention width {internal} is not divisible by {num_heads} heads")
        if out_name in ("q_proj", "k_proj", "v_proj"):
            raise ValueError(f"out_name {out_name!r} collides with an input projection")
        self.num_heads = num_heads
        self.head_dim = internal // num_heads
        self.q_proj = nn.Linear(hidden_size, internal, bias=bias)
        self.k_proj = nn.Linear(kv_in_dim, internal, bias=bias)
        self.v_proj = nn.Linear(kv_in_dim, internal, bias=bias)
        self.out_name = out_name
        self.add_module(out_name, nn.Linear(internal, hidden_size, bias=bias))

    def _heads(self, x: Tensor, sequences: int) -> Tensor:
        # A strided view, not a copy: SDPA reads (S, nh, L, hd) heads in place.
        return x.reshape(sequences, -1, self.num_heads, self.head_dim).transpose(1, 2)  # (S, nh, L, hd)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Projected heads (S, nh, L, hd), S = the number of query sequences."""
        sequences = math.prod(query.shape[:-2])
        if math.prod(key.shape[:-2]) != sequences or math.prod(value.shape[:-2]) != sequences:
            raise ValueError(
                f"query {tuple(query.shape)}, key {tuple(key.shape)} and value {tuple(value.shape)} must "
                "hold the same number of sequences in their leading dims"
            )
        q = self._heads(self.q_proj(query), sequences)
        k = self._heads(self.k_proj(key), sequences)
        v = self._heads(self.v_proj(value), sequences)
        return q, k, v

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, lead: torch.Size) -> Tensor:
        """SDPA on the heads, merged back to (*lead, internal) and projected out to (*lead, C)."""
        out = sdpa(q, k, v, mask).transpose(1, 2).reshape(*lead, self.num_heads * self.head_dim)
        return self.get_submodule(self.out_name)(out)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> Tensor:
        """query (..., Lq, C), key/value (..., Lk, C_kv) → (..., Lq, C).

        `mask` is boolean (True = attend) or additive, broadcastable to (S, heads, Lq, Lk) where S
        is the number of sequences (the product of the query's leading dims).
        """
        side = folds(self, query.shape[-2], key.shape[-2], query.dtype) if mask is None else None
        if side is not None:  # a few tokens against a large map: project the tokens, not the map
            s = math.prod(query.shape[:-2])
            fold = attend_few_keys if side == "keys" else attend_few_queries
            q, k, v = (x.reshape(s, x.shape[-2], x.shape[-1]) for x in (query, key, value))
            return fold(self, q, k, v).view(*query.shape[:-1], -1)
        q, k, v = self._project(query, key, value)
        return self._attend(q, k, v, mask, query.shape[:-1])


class RoPEAttention(Attention):
    """Attention with 2D axial RoPE on the queries and on all keys but the last `num_k_exclude_rope`.

    The ViT rotates queries and keys of one grid (a window or the image); the memory attention's
    keys hold several memory frames laid out on the query grid, so the tables repeat once per frame,
    and its object-pointer tokens at the end are excluded.
    """

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        rope: tuple[Tensor, Tensor],
        num_k_exclude_rope: int = 0,
        mask: Tensor | None = None,
    ) -> Tensor:
        """query (..., Lq, C), key/value (..., Lk, C_kv); rope: cos, sin (Lq, head_dim) → (..., Lq, C)."""
        q, k, v = self._project(query, key, value)
        cos, sin = rope
        q = apply_pairwise_rope(q, cos, sin)
        num_rope = k.shape[-2] - num_k_exclude_rope
        if num_rope > 0:
            if num_rope % cos.shape[0]:
                raise ValueError(
                    f"{num_rope} rotated keys are not a whole number of {cos.shape[0]}-token grids"
                )
            repeats = num_rope // cos.shape[0]

            def rotate(keys: Tensor) -> Tensor:
                # One grid per memory frame: the keys are viewed as (..., frames, grid, hd) so the
                # tables broadcast over the frames (no tiled copies of the tables).
                grids = keys.unflatten(-2, (repeats, cos.shape[0]))
                return apply_pairwise_rope(grids, cos, sin).flatten(-3, -2)

            if num_k_exclude_rope:
                k = torch.cat([rotate(k[..., :num_rope, :]), k[..., num_rope:, :]], dim=-2)
            else:  # every key rotates: no slice-and-concat copy
                k = rotate(k)
        return self._attend(q, k, v, mask, query.shape[:-1])


class AxialRoPE:
    """The cos/sin tables of a 2D axial RoPE on a fixed grid, float32, built once per device.

    Not a buffer: models are built on the meta device and filled from the checkpoint only.
    """

    def __init__(self, width: int, height: int, head_dim: int, theta: float = 10000.0, scale: float = 1.0):
        self.grid = (height, width)
        self.head_dim = head_dim
        self.theta = theta
        self.scale = scale
        self._cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __call__(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos, sin (height*width, head_dim) on `device`."""
        if device not in self._cache:
            h, w = self.grid
            self._cache[device] = axial_rope_tables(
                w, h, self.head_dim, self.theta, self.scale, device=device
            )
        return self._cache[device]
