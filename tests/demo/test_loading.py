"""What the demo says when the model cannot be loaded (no browser needed)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "apps" / "demo"))

from sam3_demo.loading import load_model  # noqa: E402


def test_missing_weights_become_a_sentence_on_the_page(tmp_path):
    slot = load_model(str(tmp_path / "no-such-checkpoint"))
    assert slot.sam is None
    assert "does not exist" in slot.error
    banner = slot.banner()
    assert "could not be loaded" in banner and "--model tiny-random" in banner


def test_tiny_random_is_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv("SAM3_CACHE", str(tmp_path))
    slot = load_model("tiny-random", device="cpu")
    assert slot.sam is not None and slot.error is None
    assert "RANDOM weights" in slot.banner()
    assert (tmp_path / "tiny-random" / "tokenizer.json").is_file()
