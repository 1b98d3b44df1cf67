"""The MobileCLIP text encoder of SAM3-LiteText (the distilled students S0, S1 and L).

    token ids → token embedding + learnt positions (linearly resampled to the phrase length)
    → [RepMixer block] → pre-norm transformer layers (bidirectional, padding masked) → [RepMixer block]
    → final LayerNorm → per-token states (B, L, D); the EOT token's state → `projection` (B, P)

A RepMixer block mixes tokens with depthwise convolutions along the phrase instead of attention
(MobileCLIP's "mct" encoder, S0, puts one at each end; S1 and L have none). Its branches are kept
as trained, in (B, C, 1, L) maps: the checkpoints store the three BatchNorms and the convolution of
the token mixer separately (the reference has no fused, re-parameterised form), and a fused
convolution would change the rounding of every phrase. The convolutions see padding tokens: they
mix them into the phrase exactly as the reference does; only the attention layers mask them.

BatchNorms always use their running statistics: this encoder is for inference, also when the
module was left in training mode.

Parameter names follow the reference checkpoint (`embeddings.*`, `layers.N.*`, `final_layer_norm.*`,
`projection.*`), so `text_encoder.*` hub keys load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config.lite_text import Sam3LiteTextTextConfig
from .layers import activation
from .text import CLIPEncoderLayer


def _frozen_batch_norm(x: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
    """`norm` with its running statistics, whatever the module's training flag."""
    return F.batch_norm(
        x, norm.running_mean, norm.running_var, norm.weight, norm.bias, training=False, eps=norm.eps
    )


def _depthwise_conv(channels: int, kernel_size: int) -> nn.Conv2d:
    """A (1, k) depthwise convolution along the tokens of a (B, C, 1, L) map; keeps L."""
    return nn.Conv2d(
        channels,
        channels,
        kernel_size=(1, kernel_size),
        padding=(0, kernel_size // 2),
        groups=channels,
        bias=False,
    )


class LiteTextPositionEmbedding(nn.Module):
    """Learnt positions (1, 1, N, D), linearly resampled when a phrase has L != N tokens.

    The hub checkpoints learnt N = 16 positions while the processor pads phrases to 32 tokens, so
    resampling is the common case. Half-pixel centres, clamped at the ends (`align_corners=False`).
    """

    def __init__(self, max_position_embeddings: int, hidden_size: int):
        super().__init__()
        self.position_embedding = nn.Parameter(torch.empty(1, 1, max_position_embeddings, hidden_size))

    def forward(self, length: int) -> torch.Tensor:
        table = self.position_embedding[0, 0]  # (N, D)
        if length != table.shape[0]:
            table = F.interpolate(table.T[None], size=length, mode="linear", align_corners=False)[0].T
        return table[None]  # (1, L, D)


class LiteTextEmbeddings(nn.Module):
    def __init__(self, config: Sam3LiteTextTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = LiteTextPositionEmbedding(
            config.max_position_embeddings, config.hidden_size
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        tokens = self.token_embedding(input_ids)  # (B, L, D)
        return tokens + self.position_embedding(input_ids.shape[-1]).to(tokens.dtype)


class MobileOneMixer(nn.Module):
    """MobileOne's training-time depthwise block: BN(conv(x)) + BN(x)."""

    def __init__(self, hidden_size: int, kernel_size: int):
        super().__init__()
        self.batchnorm_skip = nn.BatchNorm2d(hidden_size)
        self.conv = _depthwise_conv(hidden_size, kernel_size)
        self.batchnorm_conv = nn.BatchNorm2d(hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _frozen_batch_norm(self.conv(x), self.batchnorm_conv) + _frozen_batch_norm(
            x, self.batchnorm_skip
        )


class RepMixer(nn.Module):
    """Token mixing by convolution: x + scale * (mixer(x) - BN(x)), on (B, C, 1, L) maps.

    Subtracting a BatchNorm of the input makes the update zero-mean at initialisation; at inference
    the three branches are per-channel affine maps around one depthwise convolution.
    """

    def __init__(self, config: Sam3LiteTextTextConfig):
        super().__init__()
        hidden = config.hidden_size
        self.layer_scale = nn.Parameter(torch.full((hidden, 1, 1), config.layer_scale_init_value))
        self.reference_batchnorm = nn.BatchNorm2d(hidden)
        self.mixer = MobileOneMixer(hidden, config.repmixer_kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * (self.mixer(x) - _frozen_batch_norm(x, self.reference_batchnorm))


class ConvFeedForward(nn.Module):
    """Depthwise convolution + BN, then a pointwise (1x1 convolution) MLP, on (B, C, 1, L) maps."""

    def __init__(self, config: Sam3LiteTextTextConfig):
        super().__init__()
        hidden = config.hidden_size
        self.depthwise_conv = _depthwise_conv(hidden, config.repmixer_kernel_size)
        self.depthwise_batchnorm = nn.BatchNorm2d(hidden)
        self.mlp = nn.Module()  # keeps the checkpoint's `mlp.fc1` / `mlp.fc2` names
        self.mlp.fc1 = nn.Conv2d(hidden, config.intermediate_size, kernel_size=1)
        self.mlp.fc2 = nn.Conv2d(config.intermediate_size, hidden, kernel_size=1)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _frozen_batch_norm(self.depthwise_conv(x), self.depthwise_batchnorm)
        return self.mlp.fc2(self.act(self.mlp.fc1(x)))


class RepMixerBlock(nn.Module):
    """A convolutional layer in place of a transformer layer: RepMixer, then a scaled feed-forward.

    Takes and returns (B, L, D) like the transformer layers; the padding mask is not used.
    """

    def __init__(self, config: Sam3LiteTextTextConfig):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((config.hidden_size, 1, 1), config.layer_scale_init_value))
        self.token_mixer = RepMixer(config)
        self.conv_feed_forward = ConvFeedForward(config)

    def forward(self, hidden_states: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = hidden_states.transpose(1, 2).unsqueeze(2)  # (B, D, 1, L)
        x = self.token_mixer(x)
        x = x + self.layer_scale * self.conv_feed_forward(x)
        return x.squeeze(2).transpose(1, 2)  # (B, L, D)


def padding_mask(attention_mask: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """Boolean SDPA mask (B, 1, 1, L): every token sees every non-padding token (no causal mask)."""
    if attention_mask is None:
        return None
    keys = attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]
    # a phrase of padding only would leave a query with no key (NaN); let it see everything
    return keys | ~keys.any(-1, keepdim=True)


class LiteTextEncoder(nn.Module):
    """The MobileCLIP text encoder: (B, L) ids → (B, L, D) states and (B, P) phrase embeddings."""

    def __init__(self, config: Sam3LiteTextTextConfig):
        super().__init__()
        self.config = config
        self.embeddings = LiteTextEmbeddings(config)
        ends = {0, config.num_hidden_layers - 1} if config.use_repmixer_blocks else set()
        self.layers = nn.ModuleList(
            RepMixerBlock(config) if i in ends else CLIPEncoderLayer(config)
            for i in range(config.num_hidden_layers)
        )
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            input_ids: (B, L) token ids, any L (positions are resampled).
            attention_mask: (B, L), 1 for tokens, 0 for padding.

        Returns:
            (B, L, hidden_size) per-token states after the final LayerNorm (what the detector
            reads), and (B, projection_dim) phrase embeddings: the state at the end-of-text token
            (the largest id) projected.
        """
        hidden = self.embeddings(input_ids)
        mask = padding_mask(attention_mask, input_ids.device)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        hidden = self.final_layer_norm(hidden)
        ends = input_ids.argmax(-1)  # CLIP's end-of-text id is the vocabulary's largest
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), ends]  # (B, D)
        return hidden, self.projection(pooled)
