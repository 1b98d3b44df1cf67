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
    assert slot.sam.checkpoint == tmp_path / "tiny-random"  # resolved here; the SDK loaded the folder


def test_the_edgetam_random_name_is_resolved_by_the_demo(tmp_path, monkeypatch):
    """`--video-model tiny-random-edgetam`: the demo writes the checkpoint into its cache and loads
    that folder (the SDK's `VideoTracker.from_pretrained` knows no random names)."""
    from sam3_demo.loading import ModelSlot
    from sam3_demo.video_models import EDGETAM, VideoModels

    monkeypatch.setenv("SAM3_CACHE", str(tmp_path))
    tracker = VideoModels(ModelSlot(name="facebook/sam3"), "tiny-random-edgetam", device="cpu").tracker(
        EDGETAM
    )
    assert tracker.name == "EdgeTAM"
    assert tracker.model.name_or_path == str(tmp_path / "tiny-random-edgetam")


def test_on_a_space_a_gated_model_without_token_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/sam3-demo")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network, no token: the hub cannot grant access
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    slot = load_model("facebook/sam3", device="cpu")
    assert slot.sam is None
    banner = slot.banner()
    assert "https://huggingface.co/facebook/sam3" in banner and "`HF_TOKEN`" in banner
    assert "Variables and secrets" in banner


def test_zerogpu_wraps_the_gpu_calls_only_when_spaces_is_importable(monkeypatch):
    from sam3_demo import gpu

    def handler(st, *args):
        return st

    assert gpu.on_gpu(gpu.CLICK_S)(handler) is handler  # `spaces` is not installed here
    asked = []

    class Spaces:  # what `spaces.GPU(duration=...)` does on ZeroGPU: wraps, keeping the signature
        @staticmethod
        def GPU(duration):  # noqa: N802 (the spaces API)
            asked.append(duration)
            return lambda fn: fn

    monkeypatch.setattr(gpu, "spaces", Spaces)
    gpu.on_gpu(gpu.CONCEPT_S)(handler)
    assert asked == [gpu.CONCEPT_S]
    assert gpu.propagate_seconds(10) == gpu.PROPAGATE_BASE_S + 10 * gpu.PROPAGATE_PER_FRAME_S
    assert gpu.propagate_seconds(10**6) == gpu.PROPAGATE_MAX_S
