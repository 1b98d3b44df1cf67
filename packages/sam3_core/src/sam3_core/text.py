"""The CLIP text encoder of the concept detector, and its tokenizer.

`CLIPTextModelWithProjection` keeps the reference's module paths (`text_model.embeddings...`,
`text_model.encoder.layers.N...`, `text_model.final_layer_norm`, `text_projection`) so the detector's
`text_encoder.*` checkpoint keys load unchanged. SAM 3 uses the per-token hidden states (not CLIP's
pooled EOS embedding), so the forward returns `last_hidden_state` only.

`CLIPTokenizer` reads the vocabulary and merges of a checkpoint's `tokenizer.json` with the
`tokenizers` library and applies CLIP's pipeline around them (NFC, whitespace collapse,
lower-casing, CLIP's word split, byte-level BPE with `</w>`, `<|startoftext|> ... <|endoftext|>`),
as the reference tokenizer does whatever pipeline the file itself declares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch
from torch import nn

from .config import CLIPTextConfig
from .layers import FeedForward, sdpa

__all__ = ["CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer"]


# ---------------------------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------------------------


class CLIPTextEmbeddings(nn.Module):
    """Token embedding plus learnt absolute position embedding."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[-1]
        max_len = self.position_embedding.num_embeddings
        if length > max_len:
            raise ValueError(
                f"input_ids has {length} tokens, more than the text encoder's {max_len} positions; "
                "tokenize with truncation to at most that length"
            )
        positions = torch.arange(length, device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)  # (B, L, D)


class CLIPAttention(nn.Module):
    """Multi-head self-attention (SDPA) with CLIP's parameter names."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        dim = config.hidden_size
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, hidden_states: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = hidden_states.shape
        heads = (b, n, self.num_heads, d // self.num_heads)
        q = self.q_proj(hidden_states).view(heads).transpose(1, 2)  # (B, h, L, d_h)
        k = self.k_proj(hidden_states).view(heads).transpose(1, 2)
        v = self.v_proj(hidden_states).view(heads).transpose(1, 2)
        out = sdpa(q, k, v, attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class CLIPEncoderLayer(nn.Module):
    """Pre-norm transformer layer."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        eps = config.layer_norm_eps if config.layer_norm_eps is not None else 1e-5
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=eps)
        self.mlp = FeedForward(config.hidden_size, config.intermediate_size, config.hidden_act)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=eps)

    def forward(self, hidden_states: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states), attn_mask)
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class CLIPEncoder(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden_states: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, attn_mask)
        return hidden_states


def causal_padding_mask(
    attention_mask: torch.Tensor | None, length: int, device: torch.device
) -> torch.Tensor:
    """Boolean SDPA mask (B or 1, 1, L, L): token i sees tokens j <= i that are not padding.

    Args:
        attention_mask: (B, L) with 1 for real tokens, 0 for padding; None means no padding.
    """
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()  # (L, L)
    if attention_mask is None:
        return causal[None, None]
    keys = attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, L)
    mask = causal[None, None] & keys
    # A query row with every key masked (an all-padding sequence) would give NaN; let it see itself.
    return mask | torch.eye(length, dtype=torch.bool, device=device)[None, None] & ~mask.any(-1, keepdim=True)


class CLIPTextModel(nn.Module):
    """CLIP text transformer: embeddings, causal encoder, final LayerNorm."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        eps = config.layer_norm_eps if config.layer_norm_eps is not None else 1e-5
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=eps)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L), 1 for tokens, 0 for padding.

        Returns:
            (B, L, hidden_size) per-token hidden states after the final LayerNorm.
        """
        hidden_states = self.embeddings(input_ids)
        mask = causal_padding_mask(attention_mask, input_ids.shape[-1], input_ids.device)
        hidden_states = self.encoder(hidden_states, mask)
        return self.final_layer_norm(hidden_states)


class CLIPTextModelWithProjection(nn.Module):
    """The detector's `text_encoder`: the text transformer plus CLIP's (unused by SAM 3) projection.

    `text_projection` projects CLIP's pooled EOS embedding; SAM 3 never uses it but the checkpoint
    holds it, so it is kept to load strictly.
    """

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.text_model = CLIPTextModel(config)
        projection_dim = config.projection_dim if config.projection_dim is not None else config.hidden_size
        self.text_projection = nn.Linear(config.hidden_size, projection_dim, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, hidden_size) hidden states."""
        return self.text_model(input_ids, attention_mask)


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

# CLIP's word split: special tokens, English contractions, letter runs, single digits, other symbols.
_CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


def _token_content(token) -> str | None:
    if isinstance(token, dict):
        return token.get("content")
    return token


def clip_bpe_tokenizer(vocab: dict[str, int], merges: list, unk_token: str):
    """A `tokenizers.Tokenizer` with CLIP's BPE model (`</w>` word ends) and text pipeline."""
    from tokenizers import Tokenizer
    from tokenizers.models import BPE

    tok = Tokenizer(
        BPE(
            vocab=vocab,
            merges=merges,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
            unk_token=unk_token,
        )
    )
    set_clip_pipeline(tok)
    return tok


def set_clip_pipeline(tok) -> None:
    """CLIP's text pipeline on a `tokenizers.Tokenizer`: NFC, whitespace collapsed, lower case, CLIP's
    word-splitting regex, then the byte-level alphabet."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()


class CLIPTokenizer:
    """CLIP's BPE tokenizer over a checkpoint's `tokenizer.json`, padding to a fixed length.

    Args:
        tokenizer_file: path of `tokenizer.json` (vocabulary and merges are read from it).
        max_length: padded (and truncated) length of every sequence, bos and eos included.
        bos_token, eos_token, pad_token, unk_token: CLIP's special tokens (pad is `<|endoftext|>`).
    """

    def __init__(
        self,
        tokenizer_file: str | os.PathLike,
        max_length: int = 32,
        bos_token: str = "<|startoftext|>",
        eos_token: str = "<|endoftext|>",
        pad_token: str = "<|endoftext|>",
        unk_token: str = "<|endoftext|>",
    ):
        from tokenizers import processors

        if max_length < 2:
            raise ValueError(f"max_length must leave room for bos and eos (>= 2), got {max_length}")
        with open(tokenizer_file, encoding="utf-8") as f:
            spec = json.load(f)
        model = spec.get("model") or {}
        if model.get("type") != "BPE" or "vocab" not in model:
            raise ValueError(
                f"{tokenizer_file}: expected a BPE tokenizer.json, got model type {model.get('type')!r}"
            )
        vocab: dict[str, int] = model["vocab"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
        for name, token in (("bos_token", bos_token), ("eos_token", eos_token), ("pad_token", pad_token)):
            if token not in vocab:
                raise ValueError(f"{tokenizer_file}: {name} {token!r} is not in the vocabulary")

        tok = clip_bpe_tokenizer(vocab, merges, unk_token)
        specials = [bos_token, eos_token, pad_token, unk_token]
        specials += [_token_content(t) for t in spec.get("added_tokens", []) if t.get("special")]
        tok.add_special_tokens(list(dict.fromkeys(s for s in specials if s)))
        tok.post_processor = processors.RobertaProcessing(
            (eos_token, vocab[eos_token]),
            (bos_token, vocab[bos_token]),
            trim_offsets=False,
            add_prefix_space=False,
        )
        self._tokenizer = tok
        self.max_length = max_length
        self.bos_token_id = vocab[bos_token]
        self.eos_token_id = vocab[eos_token]
        self.pad_token_id = vocab[pad_token]
        self.pad_token = pad_token
        self.vocab_size = max(vocab.values()) + 1

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, max_length: int = 32) -> CLIPTokenizer:
        """Load from a folder holding `tokenizer.json` (and optionally `tokenizer_config.json`)."""
        path = os.path.join(directory, "tokenizer.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no tokenizer.json in {directory}")
        kwargs: dict[str, str] = {}
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
                value = _token_content(config.get(name))
                if value:
                    kwargs[name] = value
        return cls(path, max_length=max_length, **kwargs)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Ids of one phrase, `<|startoftext|>` and `<|endoftext|>` included, truncated, unpadded."""
        max_length = self.max_length if max_length is None else max_length
        ids = self._tokenizer.encode(text).ids
        if len(ids) > max_length:
            # Truncate the words, keep the closing eos (as the reference's truncation does).
            ids = ids[: max_length - 1] + [self.eos_token_id]
        return ids

    def __call__(
        self, text: str | Sequence[str], max_length: int | None = None, return_tensors: str | None = "pt"
    ) -> dict[str, torch.Tensor | list[list[int]]]:
        """Tokenize one phrase or a list of phrases, padded to `max_length`.

        Returns:
            dict with `input_ids` and `attention_mask`, each (B, max_length) (torch.long when
            `return_tensors="pt"`, nested lists when None).
        """
        if isinstance(text, str):
            text = [text]
        bad = [t for t in text if not isinstance(t, str)]
        if bad:
            raise ValueError(f"text must be strings, got {bad[0]!r} ({type(bad[0]).__name__})")
        length = self.max_length if max_length is None else max_length
        input_ids, attention_mask = [], []
        for phrase in text:
            ids = self.encode(phrase, length)
            pad = length - len(ids)
            input_ids.append(ids + [self.pad_token_id] * pad)
            attention_mask.append([1] * len(ids) + [0] * pad)
        if return_tensors == "pt":
            return {
                "input_ids": torch.tensor(input_ids, dtype=torch.long),
                "attention_mask": torch.tensor(attention_mask, dtype=torch.long),
            }
        if return_tensors is not None:
            raise ValueError(f"return_tensors must be 'pt' or None, got {return_tensors!r}")
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids` (words separated by single spaces)."""
        text = self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return text.replace("</w>", " ").strip()
