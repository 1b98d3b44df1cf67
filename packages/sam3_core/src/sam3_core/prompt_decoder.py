"""Prompt encoder and two-way mask decoder shared by every SAM 3 tracker.

The prompt encoder turns clicks, boxes and mask inputs into sparse tokens (one per point / box
corner) and a dense embedding on the image-embedding grid. The mask decoder runs a two-way
transformer between the prompt tokens (plus learnt output tokens) and the image embedding, then
upsamples the image side with the high-resolution FPN features and predicts masks with per-token
hypernetworks, an IoU estimate per mask and an "is there an object" logit.

Nothing here is specific to still images: the caller passes the image embeddings (plain or
memory-conditioned), their positional encoding and the high-resolution features, so the video
tracker reuses these modules unchanged. Parameter names follow the reference checkpoints.

Coordinate conventions: points and boxes are in pixels of the square model input
(`image_size` x `image_size`), x first. Point labels: 1 positive click, 0 negative click,
-1 "not a point" (padding that still takes a token), -10 padding that is ignored, 2 / 3 box
top-left / bottom-right corners.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Sam3TrackerMaskDecoderConfig, Sam3TrackerPromptEncoderConfig
from .layers import activation as get_activation

__all__ = [
    "SamMLP",
    "LayerNorm2d",
    "FourierPositionEmbedding",
    "MaskInputEmbedding",
    "PromptEncoder",
    "PromptAttention",
    "TwoWayAttentionBlock",
    "TwoWayTransformer",
    "MaskDecoder",
    "MaskDecoderOutput",
    "PAD_LABEL",
    "NOT_A_POINT_LABEL",
]

PAD_LABEL = -10  # a padded point: contributes a zero token
NOT_A_POINT_LABEL = -1  # a placeholder point: contributes the learnt "not a point" token


def _size(value: int | list[int] | tuple[int, int]) -> int:
    """The side of a square size given as an int or a pair."""
    if isinstance(value, (list, tuple)):
        if value[0] != value[1]:
            raise ValueError(f"the trackers need a square image/patch size, got {value}")
        return int(value[0])
    return int(value)


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
        self.act = get_activation(activation)
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

        The Fourier features are computed in fp32 (bf16 would lose the phase of the sines).
        """
        coords = 2 * coords.float() - 1
        coords = 2 * math.pi * (coords @ self.positional_embedding.float())
        return torch.cat([coords.sin(), coords.cos()], dim=-1).to(self.positional_embedding.dtype)

    def dense_grid(self, height: int, width: int) -> Tensor:
        """Encoding of the pixel centres of a (height, width) grid -> (1, C, height, width)."""
        device = self.positional_embedding.device
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
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
        return self.shared_embedding((coords.float() + 0.5) / self.input_image_size)  # +0.5: pixel centres

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
            masks.reshape(-1, 1, *masks.shape[-2:]).float(),
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


class PromptAttention(nn.Module):
    """Multi-head attention whose inner width is `hidden_size / downsample_rate` (SDPA).

    Queries may be laid out (B, P, Nq, C) and keys (B*P, 1, Nk, C) or the other way round:
    both are flattened to B*P sequences.
    """

    def __init__(self, hidden_size: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        internal = hidden_size // downsample_rate
        if internal % num_heads:
            raise ValueError(f"attention width {internal} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = internal // num_heads
        self.q_proj = nn.Linear(hidden_size, internal)
        self.k_proj = nn.Linear(hidden_size, internal)
        self.v_proj = nn.Linear(hidden_size, internal)
        self.o_proj = nn.Linear(internal, hidden_size)

    def _heads(self, x: Tensor, sequences: int) -> Tensor:
        return x.reshape(sequences, -1, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, attn_bias: Tensor | None = None) -> Tensor:
        """query (B, P, Nq, C), key/value (B', P', Nk, C) with B*P == B'*P' -> (B, P, Nq, C).

        `attn_bias` is an optional additive bias broadcastable to (B*P, heads, Nq, Nk).
        """
        lead = query.shape[:2]
        sequences = lead[0] * lead[1]
        q = self._heads(self.q_proj(query), sequences)
        k = self._heads(self.k_proj(key), sequences)
        v = self._heads(self.v_proj(value), sequences)
        if attn_bias is not None:
            attn_bias = attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # (B*P, heads, Nq, hd)
        out = out.transpose(1, 2).reshape(*lead, -1, self.num_heads * self.head_dim)
        return self.o_proj(out)


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image attention, token MLP, image->token attention."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        hidden, heads, rate = config.hidden_size, config.num_attention_heads, config.attention_downsample_rate
        self.self_attn = PromptAttention(hidden, heads, downsample_rate=1)
        self.layer_norm1 = nn.LayerNorm(hidden)
        self.cross_attn_token_to_image = PromptAttention(hidden, heads, rate)
        self.layer_norm2 = nn.LayerNorm(hidden)
        # The reference sizes this MLP's depth by the decoder's layer count (2 in every checkpoint).
        self.mlp = SamMLP(hidden, config.mlp_dim, hidden, num_layers=config.num_hidden_layers)
        self.layer_norm3 = nn.LayerNorm(hidden)
        self.layer_norm4 = nn.LayerNorm(hidden)
        self.cross_attn_image_to_token = PromptAttention(hidden, heads, rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor, attn_bias: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """queries (B, P, T, C) tokens, keys (B*P, 1, HW, C) image -> updated (queries, keys)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.layer_norm1(queries)

        q, k = queries + query_pe, keys + key_pe
        queries = self.layer_norm2(queries + self.cross_attn_token_to_image(q, k, keys, attn_bias))
        queries = self.layer_norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.layer_norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of two-way blocks plus a final token->image attention."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(config, skip_first_layer_pe=(i == 0))
            for i in range(config.num_hidden_layers)
        )
        self.final_attn_token_to_image = PromptAttention(
            config.hidden_size, config.num_attention_heads, config.attention_downsample_rate
        )
        self.layer_norm_final_attn = nn.LayerNorm(config.hidden_size)

    def forward(
        self,
        tokens: Tensor,
        image_embeddings: Tensor,
        image_pe: Tensor,
        attn_bias: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """tokens (B, P, T, C); image_embeddings, image_pe (B*P, C, h, w).

        Returns tokens (B, P, T, C) and image keys (B*P, 1, h*w, C).
        """
        keys = image_embeddings.flatten(2).transpose(1, 2).unsqueeze(1)
        key_pe = image_pe.flatten(2).transpose(1, 2).unsqueeze(1)
        if target_embedding is not None:
            # The reference adds the target in place on the first layer, which also shifts the
            # token positional embedding; later layers only shift the queries.
            tokens = tokens + target_embedding
        queries = tokens
        for i, layer in enumerate(self.layers):
            if target_embedding is not None and i > 0:
                queries = queries + target_embedding
            queries, keys = layer(queries, keys, tokens, key_pe, attn_bias)
        q, k = queries + tokens, keys + key_pe
        queries = self.layer_norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class MaskDecoderOutput(NamedTuple):
    """What the mask decoder returns (a tuple: unpacks as masks, iou, tokens, object logits)."""

    masks: Tensor  # (B, P, M, 4h, 4w) mask logits; M = num_multimask_outputs or 1
    iou_scores: Tensor  # (B, P, M) predicted IoU of each mask
    mask_tokens: Tensor  # (B, P, M, C) decoder output tokens of the returned masks (object pointers)
    object_score_logits: Tensor  # (B, P, 1) logit that the object is present


class MaskDecoder(nn.Module):
    """Two-way transformer mask decoder with multimask output, IoU head and object-score head."""

    def __init__(self, config: Sam3TrackerMaskDecoderConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.hidden_size = hidden
        self.num_multimask_outputs = config.num_multimask_outputs
        self.num_mask_tokens = config.num_multimask_outputs + 1  # token 0: the single-mask output

        self.iou_token = nn.Embedding(1, hidden)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, hidden)
        self.obj_score_token = nn.Embedding(1, hidden)
        self.transformer = TwoWayTransformer(config)

        self.upscale_conv1 = nn.ConvTranspose2d(hidden, hidden // 4, kernel_size=2, stride=2)
        self.upscale_conv2 = nn.ConvTranspose2d(hidden // 4, hidden // 8, kernel_size=2, stride=2)
        self.upscale_layer_norm = LayerNorm2d(hidden // 4, eps=1e-6)
        # 1x1 projections of the two high-resolution FPN levels; the models apply them once per
        # image (in get_image_features) rather than on every click.
        self.conv_s0 = nn.Conv2d(hidden, hidden // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(hidden, hidden // 4, kernel_size=1)

        self.output_hypernetworks_mlps = nn.ModuleList(
            SamMLP(hidden, hidden, hidden // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = SamMLP(
            hidden,
            config.iou_head_hidden_dim,
            self.num_mask_tokens,
            config.iou_head_depth,
            sigmoid_output=True,
        )
        self.pred_obj_score_head = SamMLP(hidden, hidden, 1, 3)

        self.dynamic_multimask_via_stability = config.dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = config.dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = config.dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: Tensor,
        image_positional_embeddings: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
        high_resolution_features: list[Tensor] | tuple[Tensor, Tensor],
        attention_similarity: Tensor | None = None,
        target_embedding: Tensor | None = None,
    ) -> MaskDecoderOutput:
        """Predict masks for P prompts on each of B images.

        Args:
            image_embeddings: (B, C, h, w) lowest-resolution image features.
            image_positional_embeddings: (B or 1, C, h, w) their positional encoding.
            sparse_prompt_embeddings: (B, P, T, C) prompt tokens.
            dense_prompt_embeddings: (B, C, h, w) or (B*P, C, h, w) dense prompt.
            multimask_output: return the 3 multimask outputs, else one mask (the single-mask token,
                or, when it is unstable and `dynamic_multimask_via_stability`, the best multimask).
            high_resolution_features: [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)] already projected by
                `conv_s0` / `conv_s1`.
            attention_similarity: optional additive bias of the token->image attention (PerSAM).
            target_embedding: optional (.., C) embedding added to the tokens (PerSAM).
        """
        batch_size, channels, height, width = image_embeddings.shape
        points_per_image = sparse_prompt_embeddings.shape[1]
        dtype = self.iou_token.weight.dtype
        output_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight]
        )
        output_tokens = output_tokens.expand(batch_size, points_per_image, -1, -1)
        tokens = torch.cat([output_tokens, sparse_prompt_embeddings.to(dtype)], dim=2)  # (B, P, T', C)

        # Image-side data is per image; expand it to one copy per prompt.
        if dense_prompt_embeddings.shape[0] == batch_size:
            image = (image_embeddings + dense_prompt_embeddings).repeat_interleave(points_per_image, dim=0)
        else:
            image = image_embeddings.repeat_interleave(points_per_image, dim=0) + dense_prompt_embeddings
        image_pe = image_positional_embeddings.expand(batch_size, -1, -1, -1)
        image_pe = image_pe.repeat_interleave(points_per_image, dim=0)

        tokens, keys = self.transformer(tokens, image, image_pe, attention_similarity, target_embedding)
        iou_token_out = tokens[:, :, 1]
        mask_tokens_out = tokens[:, :, 2 : 2 + self.num_mask_tokens]  # (B, P, 4, C)

        # Upscale the image side 4x, adding the high-resolution features on the way.
        image = keys.transpose(2, 3).reshape(batch_size * points_per_image, channels, height, width)
        feat_s0, feat_s1 = (f.repeat_interleave(points_per_image, dim=0) for f in high_resolution_features)
        upscaled = F.gelu(self.upscale_layer_norm(self.upscale_conv1(image) + feat_s1))
        upscaled = F.gelu(self.upscale_conv2(upscaled) + feat_s0)  # (B*P, C/8, 4h, 4w)

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, :, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=2
        )  # (B, P, 4, C/8)
        up_h, up_w = upscaled.shape[-2:]
        upscaled = upscaled.reshape(batch_size, points_per_image, -1, up_h * up_w)
        masks = (hyper_in @ upscaled).reshape(batch_size, points_per_image, -1, up_h, up_w)

        iou_pred = self.iou_prediction_head(iou_token_out)  # (B, P, 4)
        object_score_logits = self.pred_obj_score_head(tokens[:, :, 0])  # (B, P, 1)

        if multimask_output:
            return MaskDecoderOutput(
                masks[:, :, 1:], iou_pred[:, :, 1:], mask_tokens_out[:, :, 1:], object_score_logits
            )
        if self.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self._dynamic_single_mask(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, :, :1], iou_pred[:, :, :1]
        return MaskDecoderOutput(masks, iou_pred, mask_tokens_out[:, :, :1], object_score_logits)

    def stability_scores(self, mask_logits: Tensor) -> Tensor:
        """IoU of the masks thresholded at +delta and -delta: (..., H, W) -> (...)."""
        flat = mask_logits.flatten(-2)
        delta = self.dynamic_multimask_stability_delta
        inter = (flat > delta).sum(-1).float()
        union = (flat > -delta).sum(-1).float()
        return torch.where(union > 0, inter / union, torch.ones_like(inter))

    def _dynamic_single_mask(self, masks: Tensor, iou_pred: Tensor) -> tuple[Tensor, Tensor]:
        """Keep the single-mask output where it is stable, else the multimask output of best IoU.

        masks (B, P, 4, H, W), iou_pred (B, P, 4) -> (B, P, 1, H, W), (B, P, 1).
        """
        best = iou_pred[:, :, 1:].argmax(dim=-1, keepdim=True) + 1  # (B, P, 1), index into all 4
        best_masks = torch.take_along_dim(masks, best[..., None, None], dim=2)
        best_iou = torch.take_along_dim(iou_pred, best, dim=2)
        single_masks, single_iou = masks[:, :, :1], iou_pred[:, :, :1]
        stable = self.stability_scores(single_masks) >= self.dynamic_multimask_stability_thresh  # (B, P, 1)
        return (
            torch.where(stable[..., None, None], single_masks, best_masks),
            torch.where(stable, single_iou, best_iou),
        )
