"""The click decoder graphs in onnxruntime (CPU) against our PyTorch tracker on the same inputs.

Tolerance: fp32 graphs within 1e-4 of PyTorch on the mask logits, IoU scores and object-score
logits (the issue's bound; the same arithmetic in another runtime differs by float rounding, ~1e-5
at the tiny widths). The fp16-weight graphs: their deviation is the weights' rounding to float16
(relative 2^-11 per weight), measured here and bounded at 5e-2 on logits of magnitude ~1-10.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FP32_TOL = 1e-4
FP16_TOL = 5e-2


@pytest.fixture(scope="module")
def sessions(sam3_click_export, ort_session):
    out, entries = sam3_click_export
    return {
        (name, half): ort_session(out / entry["fp16_file" if half else "file"])
        for name, entry in entries.items()
        for half in (False, True)
    }


@pytest.fixture(scope="module")
def embeddings(tracker_model):
    size = tracker_model.prompt_encoder.input_image_size
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    return tracker_model.get_image_embeddings(pixels)


def _feed(embeddings, coords, labels, mask=None):
    mask_shape = (1, 1, *(4 * e for e in embeddings[-1].shape[-2:]))
    return {
        "image_embeddings_0": embeddings[0].numpy(),
        "image_embeddings_1": embeddings[1].numpy(),
        "image_embeddings_2": embeddings[2].numpy(),
        "point_coords": np.asarray(coords, np.float32)[None],
        "point_labels": np.asarray(labels, np.float32)[None],
        "mask_input": np.zeros(mask_shape, np.float32) if mask is None else mask.numpy()[None, None],
        "has_mask_input": np.array([0.0 if mask is None else 1.0], np.float32),
    }


def _max_diffs(onnx_out, torch_out):
    masks, iou, obj = onnx_out
    return (
        float(np.abs(masks - torch_out.pred_masks[:, 0].numpy()).max()),
        float(np.abs(iou - torch_out.iou_scores[:, 0].numpy()).max()),
        float(np.abs(obj - torch_out.object_score_logits[:, 0].numpy()).max()),
    )


CASES = {
    # name: (clicks [(x, y, label)], box or None, with a mask input)
    "one click": ([(60.5, 101.0, 1)], None, False),
    "three clicks": ([(60.5, 101.0, 1), (150.0, 40.0, 0), (12.0, 200.0, 1)], None, False),
    "seven clicks + mask": ([(float(10 + 29 * i), float(200 - 23 * i), i % 2) for i in range(7)], None, True),
    "box": ([], (30.0, 40.0, 170.0, 190.0), False),
    "box + two clicks": ([(90.0, 100.0, 1), (35.0, 45.0, 0)], (30.0, 40.0, 170.0, 190.0), False),
    "mask only": ([], None, True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", ["click_decoder", "click_decoder_single"])
def test_click_decoder_matches_pytorch(case, name, sessions, embeddings, tracker_model):
    clicks, box, with_mask = CASES[case]
    gen = torch.Generator().manual_seed(len(clicks))
    mask = torch.randn(*(4 * e for e in embeddings[-1].shape[-2:]), generator=gen) * 4 if with_mask else None
    points = [c[:2] for c in clicks]
    labels = [c[2] for c in clicks]
    if box is not None:  # the graph's box: two corner points labelled 2 and 3, after the clicks
        points += [box[:2], box[2:]]
        labels += [2, 3]
    if not points:  # the model's own prompt when only a mask is given: a not-a-point at (0, 0)
        points, labels = [(0.0, 0.0)], [-1]
    with torch.no_grad():
        expected = tracker_model(
            image_embeddings=embeddings,
            input_points=torch.tensor([[[c[:2] for c in clicks]]]) if clicks else None,
            input_labels=torch.tensor([[[c[2] for c in clicks]]]) if clicks else None,
            input_boxes=torch.tensor([[box]]) if box is not None else None,
            input_masks=mask[None] if mask is not None else None,
            multimask_output=name == "click_decoder",
        )
    feed = _feed(embeddings, points, labels, mask)
    fp32 = _max_diffs(sessions[(name, False)].run(None, feed), expected)
    assert max(fp32) <= FP32_TOL, f"{name}, {case}: max |onnx - torch| (masks, iou, object) = {fp32}"
    fp16 = _max_diffs(sessions[(name, True)].run(None, feed), expected)
    assert max(fp16) <= FP16_TOL, f"{name}, {case}: fp16 weights deviate by {fp16}"
    # the masks are not trivially equal (a broken graph returning zeros would fail above, and the
    # candidates differ from one another)
    assert expected.pred_masks.abs().max() > 0.1


def test_box_equals_corner_points_in_pytorch(tracker_model, embeddings):
    """Our prompt encoder's box is the same as corner points labelled 2 and 3 (so the graph needs no
    `boxes` input)."""
    box = torch.tensor([[[30.0, 40.0, 170.0, 190.0]]])
    with torch.no_grad():
        as_box = tracker_model(image_embeddings=embeddings, input_boxes=box)
        as_points = tracker_model(
            image_embeddings=embeddings,
            input_points=box.reshape(1, 1, 2, 2),
            input_labels=torch.tensor([[[2, 3]]]),
        )
    torch.testing.assert_close(as_points.pred_masks, as_box.pred_masks, atol=1e-5, rtol=0)


def test_manifest_entries_match_the_graphs(sam3_click_export):
    import onnx

    out, entries = sam3_click_export
    assert set(entries) == {"click_decoder", "click_decoder_single"}
    for name, entry in entries.items():
        graph = onnx.load(str(out / entry["file"])).graph
        for io_list, described in ((graph.input, entry["inputs"]), (graph.output, entry["outputs"])):
            assert [v.name for v in io_list] == [d["name"] for d in described]
            for value, desc in zip(io_list, described, strict=True):
                dims = [
                    d.dim_value if d.HasField("dim_value") else "dyn"
                    for d in value.type.tensor_type.shape.dim
                ]
                assert [("dyn" if isinstance(s, str) else s) for s in desc["shape"]] == dims, (name, desc)
        masks = entry["outputs"][0]["shape"]
        assert masks[1] == (3 if entry["multimask"] else 1)
        half = (out / entry["fp16_file"]).stat().st_size
        assert half < 0.7 * (out / entry["file"]).stat().st_size  # the fp16 weights halve the file
