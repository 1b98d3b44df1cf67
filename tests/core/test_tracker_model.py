"""Sam3TrackerModel beyond the golden cases: checkpoint layouts, input checks, the decoder's
dynamic single-mask choice."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from sam3_core import Sam3TrackerModel
from sam3_core.config import Sam3TrackerMaskDecoderConfig
from sam3_core.modeling.mask_decoder import MaskDecoder


@pytest.fixture(scope="module")
def embeddings(tracker_model):
    torch.manual_seed(0)
    return tracker_model.get_image_embeddings(torch.randn(1, 3, 224, 224))


def test_checkpoint_mapping():
    m = Sam3TrackerModel.map_checkpoint_key
    assert (
        m("detector_model.vision_encoder.backbone.layer_norm.weight")
        == "vision_encoder.backbone.layer_norm.weight"
    )
    assert m("detector_model.vision_encoder.neck.fpn_layers.0.proj1.weight") is None
    assert m("detector_model.text_encoder.x") is None
    assert m("tracker_neck.fpn_layers.1.proj2.bias") == "vision_encoder.neck.fpn_layers.1.proj2.bias"
    assert m("tracker_model.mask_decoder.iou_token.weight") == "mask_decoder.iou_token.weight"
    for ignored in (
        "memory_attention.layers.0.x",
        "memory_encoder.y",
        "mask_downsample.weight",
        "object_pointer_proj.proj_in.weight",
        "no_object_pointer",
        "no_memory_positional_encoding",
        "occlusion_spatial_embedding_parameter",
        "memory_temporal_positional_encoding",
        "temporal_positional_encoding_projection_layer.bias",
    ):
        assert m("tracker_model." + ignored) is None, ignored
    assert m("tracker_model.no_memory_embedding") == "no_memory_embedding"


def test_single_model_layout_loads(tmp_path, tiny_checkpoint_dir, tracker_model):
    """A checkpoint already in our key layout (e.g. saved from this model) loads the same weights."""
    save_file(
        {k: v.contiguous() for k, v in tracker_model.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )
    (tmp_path / "config.json").write_text((tiny_checkpoint_dir / "config.json").read_text())
    again = Sam3TrackerModel.from_pretrained(tmp_path)
    for k, v in tracker_model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_missing_tracker_weights_fail_loudly(tmp_path, tiny_checkpoint_dir):
    state = load_file(str(tiny_checkpoint_dir / "model.safetensors"))
    del state["tracker_model.mask_decoder.iou_token.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((tiny_checkpoint_dir / "config.json").read_text())
    with pytest.raises(Exception, match="mask_decoder.iou_token.weight"):
        Sam3TrackerModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_points": torch.zeros(1, 1, 2)}, "input_points must be (batch, objects, points, 2)"),
        (
            {"input_points": torch.zeros(1, 1, 1, 2), "input_labels": torch.ones(1, 2, dtype=torch.int64)},
            "does not match input_points shape",
        ),
        ({"input_points": torch.full((1, 1, 1, 2), float("nan"))}, "NaN"),
        ({"input_points": torch.zeros(1, 1, 1, 2), "input_labels": torch.full((1, 1, 1), 7)}, "contains [7]"),
        ({"input_points": torch.zeros(2, 1, 1, 2)}, "is for 2 images but 1"),
        ({"input_boxes": torch.zeros(1, 1, 3)}, "input_boxes must be (batch, boxes, 4)"),
        (
            {"input_points": torch.zeros(1, 2, 1, 2), "input_boxes": torch.zeros(1, 1, 4)},
            "one box per object",
        ),
        ({"input_labels": torch.ones(1, 1, 1)}, "without input_points"),
        ({"input_masks": torch.zeros(1, 1, 1, 8, 8)}, "input_masks must be"),
    ],
)
def test_bad_prompts_raise(tracker_model, embeddings, kwargs, message):
    with pytest.raises(ValueError) as err:
        tracker_model(image_embeddings=embeddings, **kwargs)
    assert message in str(err.value)


def test_needs_exactly_one_image_source(tracker_model, embeddings):
    with pytest.raises(ValueError, match="exactly one"):
        tracker_model(input_points=torch.zeros(1, 1, 1, 2))
    with pytest.raises(ValueError, match="expected"):
        tracker_model(
            image_embeddings=[e[:, :, :4] for e in embeddings], input_points=torch.zeros(1, 1, 1, 2)
        )


def test_no_prompt_and_padding_points(tracker_model, embeddings):
    """No prompt at all decodes one "not a point" object; a padded point's coordinates are ignored
    (its token is zero, though, like the reference, it still takes part in attention)."""
    with torch.no_grad():
        empty = tracker_model(image_embeddings=embeddings)
        one = tracker_model(
            image_embeddings=embeddings,
            input_points=torch.tensor([[[[50.0, 60.0]]]]),
            input_labels=torch.tensor([[[1]]]),
        )
        padded = tracker_model(
            image_embeddings=embeddings,
            input_points=torch.tensor([[[[50.0, 60.0], [-10.0, -10.0]]]]),
            input_labels=torch.tensor([[[1, -10]]]),
        )
        moved = tracker_model(
            image_embeddings=embeddings,
            input_points=torch.tensor([[[[50.0, 60.0], [200.0, 3.0]]]]),
            input_labels=torch.tensor([[[1, -10]]]),
        )
    assert empty.pred_masks.shape == (1, 1, 3, 64, 64)
    assert torch.equal(moved.pred_masks, padded.pred_masks)
    assert not torch.allclose(one.pred_masks, empty.pred_masks, atol=1e-2)


def test_per_object_mask_inputs(tracker_model, embeddings):
    """A (B, P, H, W) mask input gives each object its own mask prompt."""
    pts = torch.tensor([[[[50.0, 60.0]], [[150.0, 100.0]]]])
    masks = torch.randn(1, 2, 64, 64)
    with torch.no_grad():
        both = tracker_model(
            image_embeddings=embeddings, input_points=pts, input_masks=masks, multimask_output=False
        )
        first = tracker_model(
            image_embeddings=embeddings,
            input_points=pts[:, :1],
            input_masks=masks[:, :1],
            multimask_output=False,
        )
    assert torch.allclose(both.pred_masks[:, :1], first.pred_masks, atol=1e-5)


def test_dynamic_single_mask_choice():
    """multimask_output=False keeps the single-mask token where it is stable, else the best of 3."""
    decoder = MaskDecoder(
        Sam3TrackerMaskDecoderConfig(
            hidden_size=32, num_attention_heads=2, mlp_dim=16, iou_head_hidden_dim=16
        )
    ).eval()
    stable = torch.full((8, 8), 5.0)  # far from 0: stability 1
    unstable = torch.linspace(-0.04, 0.04, 64).reshape(8, 8)  # all within +-delta: stability 0
    masks = torch.stack(
        [
            torch.stack([stable, stable + 1, stable + 2, stable + 3]),
            torch.stack([unstable, stable + 1, stable + 2, stable + 3]),
        ]
    )[None]  # (1, 2 objects, 4, 8, 8)
    iou = torch.tensor([[[0.1, 0.2, 0.9, 0.3], [0.1, 0.2, 0.9, 0.3]]])
    out_masks, out_iou = decoder._dynamic_single_mask(masks, iou)
    assert torch.equal(out_masks[0, 0, 0], stable) and out_iou[0, 0, 0] == pytest.approx(0.1)
    assert torch.equal(out_masks[0, 1, 0], stable + 2) and out_iou[0, 1, 0] == pytest.approx(0.9)
    assert decoder.stability_scores(unstable[None]).item() == 0.0
