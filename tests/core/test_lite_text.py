"""SAM3-LiteText (`Sam3LiteTextModel`, `Sam3LiteTextTextModel`) against the reference's goldens on
tiny random checkpoints of every text-encoder variant (tests/fixtures/lite_text_checkpoint.py).

Tolerances: float32 1e-4 (the detector's, as in test_detector.py: rounding of a few hundred
float32 operations on values of order 1). float64 1e-9: there the two implementations' rounding
differs by ~1e-12, so anything larger is a difference in what is computed.
"""

from __future__ import annotations

import json

import pytest
import torch
from golden_io import max_abs_diff
from lite_text_checkpoint import VARIANTS, lite_text_config, write_lite_text_checkpoint
from safetensors.torch import load_file, save_file
from sam3_core import (
    AutoConfig,
    AutoModel,
    AutoProcessor,
    Sam3LiteTextConfig,
    Sam3LiteTextModel,
    Sam3LiteTextTextModel,
    Sam3Processor,
)
from sam3_core.checkpoint import CheckpointError
from test_images import make_image

AREA = "lite_text"
LENGTHS = (1, 5, 16, 32)
TOL = {"float32": 1e-4, "float64": 1e-9}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
OUTPUTS = ["pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg"]
IMAGES = (make_image(150, 200, seed=1), make_image(240, 180, seed=5))


@pytest.fixture(scope="module")
def lite_dirs(tmp_path_factory, tiny_repo_dir):
    """variant → checkpoint folder (config, weights, tokenizer, the detector's processor_config)."""
    out = {}
    for variant in VARIANTS:
        folder = write_lite_text_checkpoint(tmp_path_factory.mktemp(variant), variant)
        (folder / "processor_config.json").write_text((tiny_repo_dir / "processor_config.json").read_text())
        out[variant] = folder
    return out


_MODELS: dict = {}


def _model(lite_dirs, variant: str, dtype: str) -> Sam3LiteTextModel:
    if (variant, dtype) not in _MODELS:
        _MODELS[variant, dtype] = Sam3LiteTextModel.from_pretrained(lite_dirs[variant], dtype=DTYPES[dtype])
    return _MODELS[variant, dtype]


def _forward_diffs(out, tensors, stride) -> dict[str, float]:
    got = {k: getattr(out, k) for k in OUTPUTS}
    got["pred_masks"] = got["pred_masks"][:, :, ::stride, ::stride]
    got["semantic_seg"] = got["semantic_seg"][:, :, ::4, ::4]
    return {k: max_abs_diff(got[k].double(), tensors[k].double()) for k in OUTPUTS}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_text_features_match_reference(variant, dtype, lite_dirs, golden):
    model = _model(lite_dirs, variant, dtype)
    stride = 1 if dtype == "float32" else 4
    for length in LENGTHS:
        tensors, _ = golden(AREA, f"text_{variant}_{dtype}_L{length}")
        with torch.no_grad():
            out = model.get_text_features(tensors["input_ids"], tensors["attention_mask"])
        diffs = {
            "last_hidden_state": max_abs_diff(
                out.last_hidden_state[..., ::stride].double(), tensors["last_hidden_state"].double()
            ),
            "pooler_output": max_abs_diff(
                out.pooler_output[..., ::8].double(), tensors["pooler_output"].double()
            ),
            "text_embeds": max_abs_diff(out.text_embeds.double(), tensors["text_embeds"].double()),
        }
        assert all(d <= TOL[dtype] for d in diffs.values()), (length, diffs)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_matches_reference(variant, dtype, lite_dirs, golden):
    model = _model(lite_dirs, variant, dtype)
    processor = Sam3Processor.from_pretrained(lite_dirs[variant])
    prompts, meta = golden(AREA, "inputs")
    inputs = processor(images=list(IMAGES), text=meta["phrases"])
    assert torch.equal(inputs["input_ids"], prompts["input_ids"])
    tensors, meta = golden(AREA, f"forward_{variant}_{dtype}")
    with torch.no_grad():
        out = model(**inputs.to(dtype=DTYPES[dtype]))
    assert out.pred_logits.dtype == DTYPES[dtype]
    diffs = _forward_diffs(out, tensors, meta["mask_stride"])
    assert all(d <= TOL[dtype] for d in diffs.values()), diffs
    if dtype == "float32":  # the same instances are kept at thresholds in wide gaps of the scores
        ours = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()
        theirs = tensors["pred_logits"].sigmoid() * tensors["presence_logits"].sigmoid()
        for image, threshold in enumerate(meta["thresholds"]):
            kept = (ours[image] > threshold).nonzero().flatten().tolist()
            assert kept == (theirs[image] > threshold).nonzero().flatten().tolist()
            assert len(kept) >= 2
            results = processor.post_process_instance_segmentation(
                out, threshold=threshold, target_sizes=inputs["original_sizes"].tolist()
            )
            assert len(results[image]["scores"]) == len(kept)


def test_exemplar_box_with_phrase_matches_reference(lite_dirs, golden):
    variant = next(iter(VARIANTS))
    model = _model(lite_dirs, variant, "float32")
    processor = Sam3Processor.from_pretrained(lite_dirs[variant])
    inputs = processor(
        images=IMAGES[0], text="handle", input_boxes=[[[40.0, 60.0, 150.0, 90.0]]], input_boxes_labels=[[0]]
    )
    tensors, meta = golden(AREA, f"boxes_{variant}_float32")
    with torch.no_grad():
        out = model(**inputs)
    diffs = _forward_diffs(out, tensors, meta["mask_stride"])
    assert all(d <= TOL["float32"] for d in diffs.values()), diffs


def test_text_model_alone_loads_from_whole_and_own_checkpoints(lite_dirs, golden, tmp_path):
    variant = "repmixer_w32_d4"
    tensors, _ = golden(AREA, f"text_{variant}_float32_L16")
    text_model = Sam3LiteTextTextModel.from_pretrained(lite_dirs[variant])
    with torch.no_grad():
        out = text_model(tensors["input_ids"], tensors["attention_mask"])
    assert max_abs_diff(out.last_hidden_state, tensors["last_hidden_state"]) <= 1e-4
    assert max_abs_diff(out.pooler_output, tensors["text_embeds"]) <= 1e-4
    # its own single-model checkpoint (the layout of the hub's tiny Sam3LiteTextTextModel)
    text_model.config.save_pretrained(tmp_path)
    save_file(text_model.state_dict(), str(tmp_path / "model.safetensors"))
    again = AutoModel.from_pretrained(tmp_path)
    assert isinstance(again, Sam3LiteTextTextModel)
    for key, value in text_model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_auto_classes_pick_lite_text(lite_dirs):
    folder = lite_dirs["plain_w64_d3"]
    assert isinstance(AutoConfig.from_pretrained(folder), Sam3LiteTextConfig)
    assert isinstance(AutoModel.from_pretrained(folder), Sam3LiteTextModel)
    assert isinstance(AutoProcessor.from_pretrained(folder), Sam3Processor)


@pytest.mark.parametrize("variant", ["repmixer_w32_d4", "plain_w32_d1"])
def test_save_pretrained_round_trip(variant, lite_dirs, tmp_path):
    """Our save is the hub layout: the detector's own keys, BatchNorm counters included, the same
    key set and config as the reference writes (its config dict, field by field)."""
    model = _model(lite_dirs, variant, "float32")
    model.save_pretrained(tmp_path)
    saved = load_file(str(tmp_path / "model.safetensors"))
    hub = load_file(str(lite_dirs[variant] / "model.safetensors"))
    assert set(saved) == set(hub)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["Sam3LiteTextModel"]
    expected = lite_text_config(variant)
    assert config["model_type"] == "sam3_lite_text"
    for key, value in expected["text_config"].items():
        assert config["text_config"][key] == value, key
    assert config["detr_decoder_config"]["model_type"] == "sam3_lite_text_detr_decoder"
    again = Sam3LiteTextModel.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_loading_is_strict_and_reads_the_combined_prefix(lite_dirs, tmp_path):
    variant = "plain_w32_d1"
    hub = load_file(str(lite_dirs[variant] / "model.safetensors"))
    (tmp_path / "config.json").write_text((lite_dirs[variant] / "config.json").read_text())
    # under the combined layout's detector prefix, with a tracker's tensors beside it
    prefixed = {f"detector_model.{k}": v for k, v in hub.items()}
    prefixed["tracker_model.no_memory_embedding"] = torch.zeros(1, 1, 8)
    save_file(prefixed, str(tmp_path / "model.safetensors"))
    model = Sam3LiteTextModel.from_pretrained(tmp_path)
    assert torch.equal(model.text_projection.weight, hub["text_projection.weight"])
    # a missing RepMixer BatchNorm is named
    variant = "repmixer_w32_d4"
    hub = load_file(str(lite_dirs[variant] / "model.safetensors"))
    (tmp_path / "config.json").write_text((lite_dirs[variant] / "config.json").read_text())
    key = "text_encoder.layers.3.token_mixer.reference_batchnorm.running_var"
    save_file({k: v for k, v in hub.items() if k != key}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing: text_encoder.layers.3.token_mixer"):
        Sam3LiteTextModel.from_pretrained(tmp_path)


def test_batch_norms_use_running_statistics_in_training_mode(lite_dirs, golden):
    """The RepMixer BatchNorms are frozen: a module left in training mode gives the same numbers."""
    variant = "repmixer_w48_d2"
    model = Sam3LiteTextModel.from_pretrained(lite_dirs[variant])
    tensors, _ = golden(AREA, f"text_{variant}_float32_L5")
    model.text_encoder.train()
    with torch.no_grad():
        out = model.get_text_features(tensors["input_ids"], tensors["attention_mask"])
    assert max_abs_diff(out.last_hidden_state, tensors["last_hidden_state"]) <= 1e-4


def test_config_errors_name_the_field():
    from sam3_core import ConfigError, Sam3LiteTextTextConfig

    with pytest.raises(ConfigError, match="repmixer_kernel_size must be odd"):
        Sam3LiteTextTextConfig(repmixer_kernel_size=4)
    with pytest.raises(ConfigError, match="num_hidden_layers >= 2"):
        Sam3LiteTextTextConfig(num_hidden_layers=1)
    with pytest.raises(ConfigError, match="not divisible"):
        Sam3LiteTextTextConfig(hidden_size=30, num_attention_heads=4)


@pytest.mark.parametrize("variant", ["repmixer_w32_d4", "repmixer_w48_d2"])
def test_round_trips_with_the_reference(variant, lite_dirs, golden, tmp_path):
    """Ours → reference: what the reference computed from a folder our save_pretrained wrote (it
    loaded with no missing or unexpected key). Reference → ours: the config.json its save_pretrained
    writes, with the hub weights, loads through our AutoModel to the same numbers."""
    tensors, meta = golden(AREA, f"round_trip_{variant}")
    assert meta["class"] == "Sam3Processor"
    (tmp_path / "config.json").write_text(meta["config.json"])
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        if (lite_dirs[variant] / name).exists():
            (tmp_path / name).write_bytes((lite_dirs[variant] / name).read_bytes())
    model, processor = AutoModel.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(model, Sam3LiteTextModel)
    inputs = processor(images=IMAGES[1], text="dial")
    assert torch.equal(inputs["input_ids"], tensors["input_ids"])
    with torch.no_grad():
        out = model(**inputs)
    assert max_abs_diff(out.pred_logits, tensors["pred_logits"]) <= 1e-4
    assert max_abs_diff(out.pred_boxes, tensors["pred_boxes"]) <= 1e-4


def test_bfloat16_runs_close_to_fp32(lite_dirs, golden):
    """bf16 weights and activations, RepMixer BatchNorms and resampled positions included: token
    states within 3% of the largest fp32 state (measured 1.3%), logits within 0.1, boxes within 0.02
    and mask logits within 5% of the largest fp32 one (as for SAM 3's detector in test_detector.py)."""
    variant = "repmixer_w48_d2"
    model = Sam3LiteTextModel.from_pretrained(lite_dirs[variant], dtype=torch.bfloat16)
    tensors, _ = golden(AREA, f"text_{variant}_float32_L32")
    with torch.no_grad():
        out = model.get_text_features(tensors["input_ids"], tensors["attention_mask"])
    assert out.last_hidden_state.dtype == torch.bfloat16
    scale = tensors["last_hidden_state"].abs().max().item()
    assert max_abs_diff(out.last_hidden_state, tensors["last_hidden_state"]) <= 0.03 * scale
    processor = Sam3Processor.from_pretrained(lite_dirs[variant])
    _, prompts = golden(AREA, "inputs")
    tensors, meta = golden(AREA, f"forward_{variant}_float32")
    inputs = processor(images=list(IMAGES), text=prompts["phrases"]).to(dtype=torch.bfloat16)
    with torch.no_grad():
        diffs = _forward_diffs(model(**inputs), tensors, meta["mask_stride"])
    limits = {"pred_logits": 0.1, "presence_logits": 0.1, "pred_boxes": 0.02}
    for key in ("pred_masks", "semantic_seg"):
        limits[key] = 0.05 * tensors[key].abs().max().item()
    assert all(diffs[k] <= limits[k] for k in OUTPUTS), diffs
