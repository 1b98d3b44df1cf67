"""The checkpoint loader: hub layout, single-model layout, shards, strictness, bad files, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sam3_core
import torch
from safetensors.torch import load_file, save_file
from sam3_core import (
    CheckpointError,
    ConfigError,
    PreTrainedModel,
    Sam3Model,
    Sam3TrackerModel,
    Sam3TrackerVideoConfig,
    Sam3VisionModel,
)
from sam3_core.checkpoint import SafetensorsCheckpoint, read_safetensors, resolve_checkpoint_dir
from sam3_core.checkpoint_keys import (
    DETECTOR,
    EDGETAM_VIDEO,
    IMAGE_TRACKER,
    SAM3_VIDEO,
    VIDEO_TRACKER,
    VISION_LAYOUTS,
    Rename,
)
from sam3_sdk.testing import hub_manifest


class TrackerVision(PreTrainedModel):
    """A minimal model of the tracker family (backbone + tracker neck) to exercise the loader."""

    config_class = Sam3TrackerVideoConfig
    config_key = "tracker_config"

    def __init__(self, config):
        super().__init__()
        self.vision_encoder = Sam3VisionModel(config.vision_config)

    @classmethod
    def map_checkpoint_key(cls, key):
        for old, new in (
            ("detector_model.vision_encoder.backbone.", "vision_encoder.backbone."),
            ("tracker_neck.", "vision_encoder.neck."),
        ):
            if key.startswith(old):
                return new + key[len(old) :]
        if key.startswith(("detector_model.", "tracker_model.")):
            return None  # other heads of the family
        return key  # single-model layout: keys are already ours


def copy_checkpoint(src: Path, dst: Path, state=None, config=None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / "config.json").read_text()) if config is None else config
    (dst / "config.json").write_text(json.dumps(cfg))
    if state is not None:
        save_file(state, str(dst / "model.safetensors"))
    return dst


@pytest.fixture(scope="module")
def hub_state(tiny_checkpoint_dir):
    return load_file(str(tiny_checkpoint_dir / "model.safetensors"))


def test_hub_layout_loads_and_maps(tiny_checkpoint_dir, hub_state):
    model = TrackerVision.from_pretrained(tiny_checkpoint_dir)
    assert not model.training
    w = model.vision_encoder.neck.fpn_layers[0].proj1.weight
    assert torch.equal(w, hub_state["tracker_neck.fpn_layers.0.proj1.weight"])
    q = model.vision_encoder.backbone.layers[1].attention.q_proj.weight
    assert torch.equal(
        q, hub_state["detector_model.vision_encoder.backbone.layers.1.attention.q_proj.weight"]
    )
    assert model.vision_encoder.config.backbone_config.image_size == 224


def test_single_model_layout(tiny_checkpoint_dir, hub_state, tmp_path):
    combined = json.loads((tiny_checkpoint_dir / "config.json").read_text())
    single_cfg = combined["tracker_config"]
    state = {TrackerVision.map_checkpoint_key(k): v for k, v in hub_state.items()}
    state = {k: v for k, v in state.items() if k is not None}
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "single", state, single_cfg)
    model = TrackerVision.from_pretrained(folder)
    ref = TrackerVision.from_pretrained(tiny_checkpoint_dir)
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(a, b), k


def test_sharded_checkpoint(tiny_checkpoint_dir, hub_state, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "sharded")
    keys = sorted(hub_state)
    halves = {
        "model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    weight_map = {}
    for name, part in halves.items():
        save_file({k: hub_state[k] for k in part}, str(folder / name))
        weight_map.update({k: name for k in part})
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    assert read_safetensors(folder).keys() == hub_state.keys()
    TrackerVision.from_pretrained(folder)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        read_safetensors(folder)


def test_missing_key_is_named(tiny_checkpoint_dir, hub_state, tmp_path):
    gone = "tracker_neck.fpn_layers.1.proj2.bias"
    state = {k: v for k, v in hub_state.items() if k != gone}
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "missing", state)
    with pytest.raises(CheckpointError, match=r"1 missing: vision_encoder\.neck\.fpn_layers\.1\.proj2\.bias"):
        TrackerVision.from_pretrained(folder)


def test_unexpected_key_is_named(tiny_checkpoint_dir, hub_state, tmp_path):
    state = dict(hub_state)
    state["tracker_neck.extra.weight"] = torch.zeros(3)
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "unexpected", state)
    with pytest.raises(CheckpointError, match=r"1 unexpected: vision_encoder\.neck\.extra\.weight"):
        TrackerVision.from_pretrained(folder)


def test_shape_mismatch_names_both_shapes(tiny_checkpoint_dir, hub_state, tmp_path):
    state = dict(hub_state)
    key = "tracker_neck.fpn_layers.2.proj1.weight"
    state[key] = torch.zeros(7, 64, 1, 1)
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "shape", state)
    with pytest.raises(
        CheckpointError, match=r"proj1\.weight: checkpoint \(7, 64, 1, 1\) vs model \(128, 64, 1, 1\)"
    ):
        TrackerVision.from_pretrained(folder)


def test_truncated_and_foreign_files(tiny_checkpoint_dir, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "truncated")
    data = (tiny_checkpoint_dir / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        TrackerVision.from_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"PK\x03\x04 this is a zip, not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        TrackerVision.from_pretrained(folder)


def test_pickle_weights_are_never_opened(tiny_checkpoint_dir, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "pickle")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04 not to be unpickled")
    with pytest.raises(CheckpointError, match="only pickle weights"):
        TrackerVision.from_pretrained(folder)


def test_missing_folder_and_config(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        TrackerVision.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        TrackerVision.from_pretrained(tmp_path / "empty")


def test_wrong_model_type_is_refused(tiny_checkpoint_dir, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "other", config={"model_type": "bert"})
    with pytest.raises(ConfigError, match="cannot be built from a 'bert' config"):
        TrackerVision.from_pretrained(folder)


def test_dtype_and_device(tiny_checkpoint_dir):
    model = TrackerVision.from_pretrained(tiny_checkpoint_dir, dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu"
    with pytest.raises(ValueError, match="dtype 'int8' is not supported"):
        TrackerVision.from_pretrained(tiny_checkpoint_dir, dtype="int8")


def test_offline_without_cache_explains_how_to_get_weights(tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "c"),
    }
    code = (
        "from sam3_core.checkpoint import resolve_checkpoint_dir, CheckpointError\n"
        "try:\n    resolve_checkpoint_dir('facebook/sam3')\n"
        "except CheckpointError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ERR" in out.stdout, out.stderr
    assert "not in the local Hugging Face cache" in out.stdout
    assert "HF_TOKEN" in out.stdout and "facebook/sam3" in out.stdout


def test_offline_with_cached_snapshot(tiny_checkpoint_dir, tmp_path):
    """A hub id resolves from the local cache when offline (the layout huggingface_hub writes)."""
    cache = tmp_path / "cache"
    repo = cache / "models--someone--tiny-sam3"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snap / name).write_bytes((tiny_checkpoint_dir / name).read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    code = "from sam3_core.checkpoint import resolve_checkpoint_dir\nprint(resolve_checkpoint_dir('someone/tiny-sam3'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == snap


def test_not_a_repo_id():
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint_dir("./not/here")


# -- one table of key mappings ------------------------------------------------------------------


def test_key_table_round_trips_every_hub_key(hub_state):
    for layout in (DETECTOR, IMAGE_TRACKER, VIDEO_TRACKER, *VISION_LAYOUTS.values()):
        mapped = [(k, layout.to_model(k)) for k in hub_state]
        assert any(ours is not None for _, ours in mapped), layout.name
        for hub_key, ours in mapped:
            if ours is not None:
                assert layout.to_hub(ours) == hub_key, (layout.name, hub_key)


def test_edgetam_memory_attention_mlp_keys_are_renamed_both_ways():
    """EdgeTAM's `mlp.up_proj` / `mlp.down_proj` are the shared memory-attention layer's `linear1` /
    `linear2` (the SAM 3 checkpoint's names, which the SAM 3 layouts keep); nothing else is touched."""
    hub = "memory_attention.layers.12.mlp.down_proj.bias"
    assert EDGETAM_VIDEO.to_model(hub) == "memory_attention.layers.12.linear2.bias"
    assert EDGETAM_VIDEO.to_hub("memory_attention.layers.12.linear2.bias") == hub
    perceiver = "spatial_perceiver.layers.0.mlp.up_proj.weight"  # not the memory attention's
    assert EDGETAM_VIDEO.to_model(perceiver) == perceiver == EDGETAM_VIDEO.to_hub(perceiver)
    sam3 = "tracker_model.memory_attention.layers.3.linear1.weight"
    assert VIDEO_TRACKER.to_model(sam3) == sam3.removeprefix("tracker_model.")
    assert SAM3_VIDEO.to_model(sam3) == sam3
    assert Rename("a.{i}.b.", "a.{i}.c.").to_model("xa.1.b.w") == "xa.1.b.w"  # only whole key parts
    assert Rename("a.{i}.b.", "a.{i}.c.").to_model("x.a.1.b.w") == "x.a.1.c.w"


def test_manifest_of_our_models_is_the_reference_layout(tiny_checkpoint_dir, hub_state):
    manifest = hub_manifest(json.loads((tiny_checkpoint_dir / "config.json").read_text()))
    assert manifest == {k: list(v.shape) for k, v in hub_state.items()}


# -- one trunk, built once ----------------------------------------------------------------------


def _checkpoint_with_other_backbone(tiny_checkpoint_dir, hub_state, folder):
    """The tiny checkpoint with its backbone zeroed: a model that reads it shows it."""
    state = {
        k: torch.zeros_like(v) if k.startswith("detector_model.vision_encoder.backbone.") else v
        for k, v in hub_state.items()
    }
    return copy_checkpoint(tiny_checkpoint_dir, folder, state)


@pytest.mark.parametrize("name", ["Sam3Model", "Sam3TrackerVideoModel", "Sam3VisionModel"])
def test_shared_backbone_is_built_in_and_never_read(name, tiny_checkpoint_dir, hub_state, tmp_path):
    tracker = sam3_core.Sam3TrackerModel.from_pretrained(tiny_checkpoint_dir)
    trunk = tracker.vision_encoder.backbone
    before = {k: (v.data_ptr(), v.clone()) for k, v in trunk.state_dict().items()}
    folder = _checkpoint_with_other_backbone(tiny_checkpoint_dir, hub_state, tmp_path / "zeroed")
    cls = getattr(sam3_core, name)
    shared = cls.from_pretrained(folder, backbone=trunk)
    alone = cls.from_pretrained(tiny_checkpoint_dir)
    vision = shared if name == "Sam3VisionModel" else shared.vision_encoder
    assert vision.backbone is trunk
    for k, v in trunk.state_dict().items():  # neither re-read, nor re-allocated, nor cast
        assert v.data_ptr() == before[k][0] and torch.equal(v, before[k][1]), k
    for (k, a), b in zip(shared.state_dict().items(), alone.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not shared.training


def test_shared_backbone_must_match_dtype_and_shapes(tiny_checkpoint_dir, hub_state, tmp_path):
    trunk = Sam3TrackerModel.from_pretrained(tiny_checkpoint_dir).vision_encoder.backbone
    with pytest.raises(
        ValueError, match=r"backbone is in torch\.float32; the model is asked for torch\.bfloat16"
    ):
        Sam3Model.from_pretrained(tiny_checkpoint_dir, backbone=trunk, dtype="bfloat16")
    state = dict(hub_state)
    key = "detector_model.vision_encoder.backbone.layers.0.mlp.fc1.weight"
    state[key] = torch.zeros(3, 3)
    folder = copy_checkpoint(tiny_checkpoint_dir, tmp_path / "other-trunk", state)
    with pytest.raises(CheckpointError, match=r"layers\.0\.mlp\.fc1\.weight: checkpoint \(3, 3\) vs model"):
        Sam3Model.from_pretrained(folder, backbone=trunk)


def test_reads_only_the_tensors_the_model_needs(tiny_checkpoint_dir, monkeypatch):
    read: list[str] = []
    original = SafetensorsCheckpoint.read_into
    monkeypatch.setattr(
        SafetensorsCheckpoint,
        "read_into",
        lambda self, key, out: (read.append(key), original(self, key, out)),
    )
    model = Sam3TrackerModel.from_pretrained(tiny_checkpoint_dir)
    assert len(read) == len(set(read)) == len(model.state_dict())
    assert not [k for k in read if k.startswith(("detector_model.text_encoder.", "tracker_model.memory_"))]
    read.clear()
    Sam3TrackerModel.from_pretrained(tiny_checkpoint_dir, backbone=model.vision_encoder.backbone)
    assert read and not [k for k in read if ".backbone." in k]


def test_converting_reads_pass_through_a_small_buffer_and_match_a_plain_cast(tmp_path, monkeypatch):
    # another dtype (or device) than the stored one: read a slice at a time through one buffer; a
    # 40-byte buffer splits every tensor below into several slices, the last one short
    import sam3_core.checkpoint_files as files

    monkeypatch.setattr(files, "CHUNK_BYTES", 40)
    g = torch.Generator().manual_seed(0)
    state = {
        "a": torch.randn(7, 13, generator=g),  # 91 floats: 9 slices of 10, then 1
        "b": torch.randn(3, generator=g).to(torch.bfloat16),
        "c": torch.arange(25, dtype=torch.int64).reshape(5, 5),
        "s": torch.tensor(2.5),  # 0-d
    }
    save_file(state, str(tmp_path / "model.safetensors"))
    with SafetensorsCheckpoint(tmp_path) as checkpoint:
        for key, dtype in (
            ("a", torch.bfloat16),
            ("a", torch.float64),
            ("b", torch.float32),
            ("s", torch.float16),
        ):
            out = torch.empty(state[key].shape, dtype=dtype)
            checkpoint.read_into(key, out)
            assert torch.equal(out, state[key].to(dtype)), key  # the same cast, element by element
        strided = torch.zeros(5, 10, dtype=torch.int64)[:, ::2]  # a non-contiguous destination
        checkpoint.read_into("c", strided)
        assert torch.equal(strided, state["c"])
        with pytest.raises(CheckpointError, match="'a' holds 364 bytes; expected 360"):
            checkpoint.read_into("a", torch.empty(9, 10, dtype=torch.bfloat16))
