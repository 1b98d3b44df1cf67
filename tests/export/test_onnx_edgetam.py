"""EdgeTAM's image path in onnxruntime (CPU) against PyTorch: the image encoder (RepViT + FPN, with
the no-memory embedding a first prompt gets) and the click decoders on several prompts; the text
and concept parts are refused with a reason (EdgeTAM has neither).

Tolerance: fp32 1e-4 (the issue's bound); fp16-weight graphs 5e-2 (weights rounded to float16).
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
def edgetam(edgetam_dir):
    from sam3_core import EdgeTamVideoModel, Sam2VideoProcessor

    return EdgeTamVideoModel.from_pretrained(edgetam_dir, device="cpu"), Sam2VideoProcessor.from_pretrained(
        edgetam_dir
    )


def _diff(got, expected):
    return float(np.abs(np.asarray(got) - expected.detach().numpy()).max())


def test_edgetam_manifest_refuses_text_and_concepts(edgetam_onnx, edgetam):
    _, manifest = edgetam_onnx
    assert set(manifest["graphs"]) == {"image_encoder", "click_decoder", "click_decoder_single"}
    refused = {r["part"]: r["reason"] for r in manifest["refused"]}
    assert set(refused) == {"text_encoder", "concept_heads"}
    assert "no text encoder" in refused["text_encoder"]
    _, processor = edgetam
    assert manifest["preprocessing"]["image"]["mean"] == list(processor.image_mean)  # ImageNet's, not SAM 3's


def test_edgetam_refuses_a_named_text_part(edgetam_dir, tmp_path):
    from sam3_sdk.onnx_export import OnnxExportRefused, export_onnx

    with pytest.raises(OnnxExportRefused, match="text_encoder: EdgeTAM is a point/box tracker"):
        export_onnx(edgetam_dir, tmp_path, parts=["text_encoder"])


CLICKS = {
    "one click": ([(30.0, 50.5)], [1], None),
    "four clicks": ([(30.0, 50.5), (80.0, 20.0), (5.0, 5.0), (60.0, 61.0)], [1, 0, 1, 0], None),
    "box + click": ([(40.0, 44.0)], [1], (10.0, 20.0, 90.0, 100.0)),
}


@pytest.mark.parametrize("size", [(100, 140), (150, 90)])
def test_edgetam_encoder_and_clicks_match_pytorch(size, edgetam, edgetam_onnx, ort_session):
    model, processor = edgetam
    out, manifest = edgetam_onnx
    image = np.random.default_rng(sum(size)).integers(0, 256, (*size, 3), dtype=np.uint8)
    pixels = processor(images=image)["pixel_values"]
    with torch.no_grad():
        maps = list(model._image_features(pixels).maps)
        maps[-1] = maps[-1] + model.no_memory_embedding.reshape(1, -1, 1, 1)  # the first-prompt features
    for half, tol in ((False, FP32_TOL), (True, FP16_TOL)):
        entry = manifest["graphs"]["image_encoder"]
        got = ort_session(out / entry["fp16_file" if half else "file"]).run(
            None, {"pixel_values": pixels.numpy()}
        )
        diffs = [_diff(g, e) for g, e in zip(got, maps, strict=True)]
        assert max(diffs) <= tol, f"EdgeTAM image encoder (fp16 weights: {half}) deviates by {diffs}"

    scale = np.array([processor.target_size / size[1], processor.target_size / size[0]], np.float32)
    for name, multimask in (("click_decoder", True), ("click_decoder_single", False)):
        session = ort_session(out / manifest["graphs"][name]["file"])
        for points, labels, box in CLICKS.values():
            pts = np.asarray(points, np.float32) * scale
            coords, labs = pts, np.asarray(labels, np.float32)
            box_t = None
            if box is not None:
                corners = np.asarray(box, np.float32).reshape(2, 2) * scale
                coords, labs = (
                    np.concatenate([pts, corners]),
                    np.concatenate([labs, [2, 3]]).astype(np.float32),
                )
                box_t = torch.from_numpy(corners.reshape(1, 1, 4))
            with torch.no_grad():
                expected = model.decode_masks(
                    maps,
                    torch.from_numpy(pts)[None, None],
                    torch.tensor(labels)[None, None],
                    boxes=box_t,
                    multimask_output=multimask,
                )
            grid = maps[-1].shape[-1] * 4
            feed = {f"image_embeddings_{i}": m.numpy() for i, m in enumerate(maps)}
            feed.update(
                point_coords=coords[None],
                point_labels=labs[None],
                mask_input=np.zeros((1, 1, grid, grid), np.float32),
                has_mask_input=np.zeros(1, np.float32),
            )
            masks, iou, obj = session.run(None, feed)
            diffs = (
                _diff(masks, expected.masks[:, 0]),
                _diff(iou, expected.iou_scores[:, 0]),
                _diff(obj, expected.object_score_logits[:, 0]),
            )
            assert max(diffs) <= FP32_TOL, f"EdgeTAM {name}, {len(points)} clicks, box {box}: {diffs}"
