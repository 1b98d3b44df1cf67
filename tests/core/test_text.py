"""The CLIP tokenizer and text encoder of the concept detector, against the reference."""

from __future__ import annotations

import pytest
import torch
from golden_io import max_abs_diff
from sam3_core import Sam3Model
from sam3_core.modeling.text import causal_padding_mask
from sam3_core.processing.tokenizer import CLIPTokenizer

AREA = "detector"


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint_dir) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(tiny_checkpoint_dir)


def test_tokenizer_ids_match_reference(golden, tokenizer):
    _, meta = golden(AREA, "tokenizer")
    out = tokenizer(meta["phrases"], return_tensors=None)
    for i, phrase in enumerate(meta["phrases"]):
        assert out["input_ids"][i] == meta["input_ids"][i], phrase
        assert out["attention_mask"][i] == meta["attention_mask"][i], phrase


def test_tokenizer_truncates_and_pads(tokenizer):
    long = tokenizer("zebra " * 100)
    assert long["input_ids"].shape == (1, 32)
    assert long["input_ids"][0, 0].item() == tokenizer.bos_token_id
    assert long["input_ids"][0, -1].item() == tokenizer.eos_token_id
    assert long["attention_mask"].sum().item() == 32
    short = tokenizer(["a cat", "A   CAT"])
    assert torch.equal(short["input_ids"][0], short["input_ids"][1])  # lower-cased, whitespace collapsed
    n = short["attention_mask"][0].sum().item()
    assert (short["input_ids"][0, n:] == tokenizer.pad_token_id).all()
    assert tokenizer.decode(short["input_ids"][0, :n].tolist()) == "a cat"


def test_tokenizer_rejects_bad_input(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="must be strings"):
        tokenizer(["ok", None])
    with pytest.raises(FileNotFoundError):
        CLIPTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "WordPiece", "vocab": {}}}')
    with pytest.raises(ValueError, match="BPE"):
        CLIPTokenizer(tmp_path / "tokenizer.json")


def test_text_encoder_matches_reference(golden, tiny_checkpoint_dir):
    tensors, _ = golden(AREA, "text_features")
    model = Sam3Model.from_pretrained(tiny_checkpoint_dir)
    with torch.no_grad():
        out = model.get_text_features(tensors["input_ids"], tensors["attention_mask"])
    assert max_abs_diff(out.last_hidden_state, tensors["last_hidden_state"]) <= 1e-4
    assert max_abs_diff(out.pooler_output, tensors["pooler_output"]) <= 1e-4


def test_causal_padding_mask():
    mask = causal_padding_mask(torch.tensor([[1, 1, 0]]), 3, torch.device("cpu"))
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask[0, 0], expected)
