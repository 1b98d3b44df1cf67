"""The trackers' prompt encoder: clicks, boxes and mask inputs -> sparse tokens and a dense embedding.

Sparse tokens: one per point / box corner (Fourier features of the coordinates plus a label
embedding). Dense embedding: the mask input downscaled 4x, or a learnt "no mask" embedding, on the
image-embedding grid.

Coordinate conventions: points and boxes are in pixels of the square model input
(`image_size` x `image_size`), x first. Point labels: 1 positive click, 0 negative click,
-1 "not a point" (padding that still takes a token), -10 padding that is ignored, 2 / 3 box
top-left / bottom-right corners.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Sam3TrackerPromptEncoderConfig
from ..dtypes import at_least_float32
from .layers import LayerNorm2d
from .layers import activation as get_activation

PAD_LABEL = -10  # a padded point: contributes a zero token


NOT_A_POINT_LABEL = -1  # a placeholder point: contributes the learnt "not a point" token


def _size(value: int | list[int] | tuple[int, int]) -> int:
    """The side of a square size given as an int or a pair."""
    if isinstance(value, (list, tuple)):
        if value[0] != value[1]:
            raise ValueError(f"the trackers need a square image/patch size, got {value}")
        return int(value[0])
    return int(value)


class FourierPositionEmbedding(nn.Module):
    """Random Fourier features of 2D coordinates (the SAM "shared embedding").

    `positional_embedding` (2, C/2) is a fixed Gaussian matrix stored in the checkpoint.
    """

    def __init__(self, hidden_size: int, scale: float = 1.0) -> None:
        super().__init__()
        if hidden_size % 2:
            raise ValueError(f"FourierPositionEmbedding needs an even hidden_size, got {hidden_size}")
        self.scale = scale
        self.register_buffer("positional_embedding", torch.empty(2, hidden_size // 2).normal_(std=scale))

    def forward(self, coords: Tensor) -> Tensor:
        """coords: (..., 2) as (x, y) normalised to [0, 1] -> (..., C) in the buffer's dtype.

        The Fourier features are computed in fp32 (bf16 would lose the phase of the sines); a
        float64 buffer computes them in float64, as the reference does.
        """
        compute = torch.promote_types(self.positional_embedding.dtype, torch.float32)
        coords = (2 * at_least_float32(coords) - 1).to(compute)
        coords = 2 * math.pi * (coords @ self.positional_embedding.to(compute))
        return torch.cat([coords.sin(), coords.cos()], dim=-1).to(self.positional_embedding.dtype)

    def dense_grid(self, height: int, width: int) -> Tensor:
        """Encoding of the pixel centres of a (height, width) grid -> (1, C, height, width).

        Cached per grid and per state of the buffer: every click on an image needs the same grid,
        and recomputing its sines and cosines costs about a tenth of a click's decoder time.
        """
        buffer = self.positional_embedding
        # Inference tensors keep no version counter (and cannot be changed in place outside
        # inference mode): their storage alone identifies them.
        version = None if buffer.is_inference() else buffer._version
        key = (height, width, buffer.device, buffer.dtype, buffer.data_ptr(), version)
        cached = self.__dict__.get("_dense_grid_cache")
        if cached is None or cached[0] != key:
            cached = (key, self._dense_grid(height, width))
            self.__dict__["_dense_grid_cache"] = cached  # not a buffer: never in the state dict
        return cached[1]

    def _dense_grid(self, height: int, width: int) -> Tensor:
        device = self.positional_embedding.device
        dtype = torch.promote_types(self.positional_embedding.dtype, torch.float32)  # float64 stays
        ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        return self(grid).permute(2, 0, 1).unsqueeze(0)


class MaskInputEmbedding(nn.Module):
    """Downscales a low-resolution mask input 4x into a dense (B, C, h, w) prompt embedding."""

    def __init__(self, config: Sam3TrackerPromptEncoderConfig) -> None:
        super().__init__()
        mid = config.mask_input_channels // 4
        self.act = get_activation(config.hidden_act)
        self.conv1 = nn.Conv2d(1, mid, kernel_size=2, stride=2)
        self.layer_norm1 = LayerNorm2d(mid, eps=config.layer_norm_eps)
        self.conv2 = nn.Conv2d(mid, config.mask_input_channels, kernel_size=2, stride=2)
        self.layer_norm2 = LayerNorm2d(config.mask_input_channels, eps=config.layer_norm_eps)
        self.conv3 = nn.Conv2d(config.mask_input_channels, config.hidden_size, kernel_size=1)

    def forward(self, masks: Tensor) -> Tensor:
        """masks: (N, 1, 4h, 4w) mask logits -> (N, C, h, w)."""
        hidden = self.act(self.layer_norm1(self.conv1(masks)))
        hidden = self.act(self.layer_norm2(self.conv2(hidden)))
        return self.conv3(hidden)


class PromptEncoder(nn.Module):
    """Points, boxes and mask inputs -> (sparse tokens, dense embedding)."""

    def __init__(self, config: Sam3TrackerPromptEncoderConfig) -> None:
        super().__init__()
        self.shared_embedding = FourierPositionEmbedding(config.hidden_size, config.scale)
        self.mask_embed = MaskInputEmbedding(config)
        self.no_mask_embed = nn.Embedding(1, config.hidden_size)
        self.point_embed = nn.Embedding(config.num_point_embeddings, config.hidden_size)
        self.not_a_point_embed = nn.Embedding(1, config.hidden_size)

        self.hidden_size = config.hidden_size
        self.input_image_size = _size(config.image_size)
        grid = self.input_image_size // _size(config.patch_size)
        self.image_embedding_size = (grid, grid)  # the image-embedding grid the decoder sees
        self.mask_input_size = (4 * grid, 4 * grid)  # the mask-input (and low-res output) size

    def _encode_coords(self, coords: Tensor) -> Tensor:
        """Pixel coordinates (..., 2) of the model input -> Fourier features (..., C)."""
        # +0.5: pixel centres; float64 coordinates stay float64 (bf16 ones are computed in float32)
        return self.shared_embedding((at_least_float32(coords) + 0.5) / self.input_image_size)

    def embed_points(self, points: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """points (B, P, N, 2) pixels, labels (B, P, N) -> tokens (B, P, N[+1], C).

        With `pad`, a "not a point" token is appended (SAM does so when no box follows the points).
        """
        if pad:
            points = F.pad(points, (0, 0, 0, 1), value=0.0)
            labels = F.pad(labels, (0, 1), value=NOT_A_POINT_LABEL)
        labels = labels[..., None]
        tokens = self._encode_coords(points)
        tokens = torch.where(labels == NOT_A_POINT_LABEL, self.not_a_point_embed.weight, tokens)
        tokens = torch.where(labels == PAD_LABEL, torch.zeros_like(tokens), tokens)
        label_embed = self.point_embed(labels.squeeze(-1).clamp(min=0)) * (labels >= 0)
        return tokens + label_embed

    def embed_boxes(self, boxes: Tensor) -> Tensor:
        """boxes (B, P, 4) xyxy pixels -> tokens (B, P, 3, C): two corners and a "not a point"."""
        corners = self._encode_coords(boxes.reshape(*boxes.shape[:-1], 2, 2))  # (B, P, 2, C)
        corners = corners + self.point_embed.weight[2:4]
        # SAM pads a box with a zero point whose token is then overwritten by "not a point".
        filler = self.not_a_point_embed.weight.expand(*corners.shape[:-2], 1, -1)
        return torch.cat([corners, filler.to(corners.dtype)], dim=-2)

    def resize_mask_input(self, masks: Tensor) -> Tensor:
        """Bring mask inputs (..., H, W) to `mask_input_size` (antialiased bilinear when needed)."""
        if tuple(masks.shape[-2:]) == self.mask_input_size:
            return masks
        lead = masks.shape[:-2]
        resized = F.interpolate(
            at_least_float32(masks.reshape(-1, 1, *masks.shape[-2:])),
            size=self.mask_input_size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        return resized.reshape(*lead, *self.mask_input_size).to(masks.dtype)

    def forward(
        self,
        input_points: Tensor | None = None,
        input_labels: Tensor | None = None,
        input_boxes: Tensor | None = None,
        input_masks: Tensor | None = None,
        batch_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Embed the prompts of a batch of images.

        Args:
            input_points: (B, P, N, 2) pixel coordinates in the model input, x first, P objects.
            input_labels: (B, P, N) integer labels; all ones when omitted.
            input_boxes: (B, P, 4) xyxy pixel boxes (one per object).
            input_masks: (B, H, W) or (B, P, H, W) mask logits; resized to `mask_input_size`.
            batch_size: B, needed only when no prompt at all is given.

        Returns:
            sparse: (B, P, T, C) prompt tokens; with no point and no box, one "not a point" token.
            dense: (B, C, h, w) no-mask embedding, or (B*P, C, h, w) embedded mask inputs.
        """
        dtype = self.point_embed.weight.dtype
        if input_points is not None and input_labels is None:
            input_labels = torch.ones(input_points.shape[:-1], dtype=torch.int64, device=input_points.device)
        if input_points is None and input_boxes is None:
            if batch_size is None:
                batch_size = input_masks.shape[0] if input_masks is not None else 1
            device = self.point_embed.weight.device
            input_points = torch.zeros(batch_size, 1, 1, 2, dtype=dtype, device=device)
            input_labels = torch.full((batch_size, 1, 1), NOT_A_POINT_LABEL, dtype=torch.int64, device=device)

        sparse = []
        if input_points is not None:
            sparse.append(self.embed_points(input_points, input_labels, pad=input_boxes is None))
        if input_boxes is not None:
            sparse.append(self.embed_boxes(input_boxes))
        sparse_embeddings = torch.cat(sparse, dim=2).to(dtype)
        batch_size = sparse_embeddings.shape[0]

        if input_masks is not None:
            masks = self.resize_mask_input(input_masks)
            masks = masks.reshape(-1, 1, *self.mask_input_size).to(dtype)  # (B*P, 1, 4h, 4w)
            dense_embeddings = self.mask_embed(masks)
        else:
            dense_embeddings = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                batch_size, -1, *self.image_embedding_size
            )
        return sparse_embeddings, dense_embeddings
