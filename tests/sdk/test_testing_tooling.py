"""Test tooling off the runtime path (issue 22): the loaders take hub ids and folders only, a random
checkpoint's name is resolved by `sam3_sdk.testing` at the CLI's and the demo's edge; and the
`Sam3` facade's attributes say what each is, the old names warning for one release."""

from __future__ import annotations

import warnings

import pytest
from sam3_core import CheckpointError, Sam3TrackerModel
from sam3_sdk import Sam3, VideoTracker
from sam3_sdk.testing import (
    RANDOM_CHECKPOINTS,
    TINY_RANDOM,
    TINY_RANDOM_EDGETAM,
    TINY_RANDOM_LITE_TEXT,
    resolve_name,
)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Hugging Face cache, no downloads, and a private random-checkpoint cache."""
    monkeypatch.setenv("SAM3_CACHE", str(tmp_path / "sam3"))
    return {"cache_dir": str(tmp_path / "hf"), "local_files_only": True}


@pytest.mark.parametrize(
    "load",
    [
        lambda name, hub: Sam3.from_pretrained(name, device="cpu", **hub),
        lambda name, hub: VideoTracker.from_pretrained(name, device="cpu", **hub),
        lambda name, hub: Sam3TrackerModel.from_pretrained(name, device="cpu", **hub),
    ],
    ids=["Sam3", "VideoTracker", "Sam3TrackerModel"],
)
@pytest.mark.parametrize("name", sorted(RANDOM_CHECKPOINTS))
def test_the_runtime_loaders_do_not_know_random_names(load, name, offline, tmp_path):
    """`tiny-random` is no model name to the loaders: a hub id like any other, not in the (empty)
    cache, so the usual "not found" error; and no weights are written anywhere."""
    with pytest.raises(
        CheckpointError, match=f"the weights of '{name}' are not in the local Hugging Face cache"
    ):
        load(name, offline)
    assert not (tmp_path / "sam3").exists()


def test_resolve_name_writes_a_random_checkpoint_once(offline, tmp_path):
    folder = resolve_name(TINY_RANDOM)
    assert folder == tmp_path / "sam3" / TINY_RANDOM
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_name(TINY_RANDOM) == folder  # cached: not written again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    for other in ("facebook/sam3", str(tmp_path), None):  # hub ids, folders and None pass through
        assert resolve_name(other) == other
    assert Sam3.from_pretrained(folder, device="cpu").image_model is not None  # a folder like any other


def test_the_cli_resolves_random_names_at_its_edge(offline, tmp_path):
    from sam3_sdk.cli.jobs import load_sam

    sam = load_sam(TINY_RANDOM, "cpu", video_model=TINY_RANDOM_EDGETAM)
    assert sam.checkpoint == tmp_path / "sam3" / TINY_RANDOM
    assert sam.video_checkpoint == tmp_path / "sam3" / TINY_RANDOM_EDGETAM
    assert sam.video_predictor.name == "EdgeTAM"
    lite = load_sam(TINY_RANDOM_LITE_TEXT, "cpu")
    assert lite.checkpoint == tmp_path / "sam3" / TINY_RANDOM_LITE_TEXT and lite.image_model is None


# (old name, new name) of the facade's attributes
RENAMED = [
    ("tracker", "image_model"),
    ("tracker_processor", "image_processor"),
    ("video_tracker", "video_model"),
    ("concept_video_tracker", "concept_video_predictor"),
]


@pytest.mark.parametrize(("old", "new"), RENAMED)
def test_old_facade_names_warn_and_give_the_new_ones(sam, old, new):
    with pytest.warns(DeprecationWarning, match=f"Sam3.{old} is deprecated; use Sam3.{new}"):
        value = getattr(sam, old)
    assert value is getattr(sam, new)


def test_new_facade_names_say_what_each_is(sam):
    from sam3_core import Sam3Model, Sam3TrackerProcessor, Sam3TrackerVideoModel
    from sam3_sdk import ConceptVideoTracker

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names never warn
        assert isinstance(sam.image_model, Sam3TrackerModel)
        assert isinstance(sam.image_processor, Sam3TrackerProcessor)
        assert isinstance(sam.detector, Sam3Model)
        assert isinstance(sam.video_predictor, VideoTracker)
        assert isinstance(sam.video_model, Sam3TrackerVideoModel)
        assert sam.video_model is sam.video_predictor.model
        assert sam.video_processor is sam.video_predictor.processor
        assert isinstance(sam.concept_video_predictor, ConceptVideoTracker)
        assert sam.video_checkpoint is None  # SAM 3's own video tracker
