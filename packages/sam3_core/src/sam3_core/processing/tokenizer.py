"""CLIP's tokenizer for the concept detector's phrases.

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
            self._spec_text = f.read()  # written back unchanged by save_pretrained
        spec = json.loads(self._spec_text)
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
        self.special_tokens = {
            "bos_token": bos_token,
            "eos_token": eos_token,
            "pad_token": pad_token,
            "unk_token": unk_token,
        }
        self.vocab_size = max(vocab.values()) + 1

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Write `tokenizer.json` (as loaded) and `tokenizer_config.json`; returns the file names."""
        os.makedirs(save_directory, exist_ok=True)
        with open(os.path.join(save_directory, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(self._spec_text)
        config = {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": self.max_length,
            "padding_side": "right",
            "clean_up_tokenization_spaces": False,
            **self.special_tokens,
        }
        with open(os.path.join(save_directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return ["tokenizer.json", "tokenizer_config.json"]

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
