"""SAM 3's image encoder, text encoder and concept heads in onnxruntime (CPU) against PyTorch.

The references are what the SDK computes: the image encoder against the `FeatureStore`'s tracker
embeddings and detector FPN features of images of several sizes (preprocessed by the processor, so
the graph sees the same pixel_values), the text encoder against `get_text_features`, the concept
heads on P phrases against one PyTorch forward per phrase.

Tolerance: fp32 1e-4 (the issue's bound; measured ~1e-5 at the tiny widths). fp16-weight graphs:
bounded at 5e-2 here (weights rounded to float16; measured deviations are in the README).
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
def graphs(sam3_onnx, ort_session):
    out, manifest = sam3_onnx
    return {
        (name, half): ort_session(out / entry["fp16_file" if half else "file"])
        for name, entry in manifest["graphs"].items()
        for half in (False, True)
    }


def _max_diff(got, expected):
    return float(np.abs(np.asarray(got) - expected.detach().float().cpu().numpy()).max())


def test_manifest_lists_every_sam3_graph(sam3_onnx):
    out, manifest = sam3_onnx
    assert set(manifest["graphs"]) == {
        "image_encoder",
        "click_decoder",
        "click_decoder_single",
        "text_encoder",
        "concept_heads",
    }
    assert manifest["refused"] == []
    for entry in manifest["graphs"].values():
        assert (out / entry["file"]).is_file() and (out / entry["fp16_file"]).is_file()
    phrases = {d["name"]: d["shape"] for d in manifest["graphs"]["concept_heads"]["inputs"]}
    assert phrases["text_features"][0] == "num_phrases" and phrases["attention_mask"][0] == "num_phrases"


def test_manifest_shapes_match_every_graph(sam3_onnx):
    """Each input and output of each graph as the manifest says: names in order, fixed dims equal,
    dynamic dims named where the graph has a symbolic one."""
    import onnx

    out, manifest = sam3_onnx
    for name, entry in manifest["graphs"].items():
        graph = onnx.load(str(out / entry["file"]), load_external_data=False).graph
        for values, described in ((graph.input, entry["inputs"]), (graph.output, entry["outputs"])):
            assert [v.name for v in values] == [d["name"] for d in described], name
            for value, desc in zip(values, described, strict=True):
                dims = [
                    d.dim_value if d.HasField("dim_value") else "dynamic"
                    for d in value.type.tensor_type.shape.dim
                ]
                shape = ["dynamic" if isinstance(s, str) else s for s in desc["shape"]]
                assert shape == dims, f"{name}.{desc['name']}: manifest {desc['shape']}, graph {dims}"


@pytest.mark.parametrize("size", [(90, 130), (160, 100)])
def test_image_encoder_matches_the_feature_store(size, export_sam, graphs):
    image = np.random.default_rng(sum(size)).integers(0, 256, (*size, 3), dtype=np.uint8)
    pixels = export_sam.image_processor(images=image)["pixel_values"].numpy()
    entry = export_sam.features(image)
    store = export_sam.feature_store
    expected = list(store.tracker_embeddings(entry))
    expected += list(store.detector_embeds(entry, export_sam.detector.vision_encoder).fpn_hidden_states[:3])
    got = graphs[("image_encoder", False)].run(None, {"pixel_values": pixels})
    diffs = [_max_diff(g, e) for g, e in zip(got, expected, strict=True)]
    assert max(diffs) <= FP32_TOL, f"image encoder outputs deviate by {diffs}"
    half = graphs[("image_encoder", True)].run(None, {"pixel_values": pixels})
    diffs = [_max_diff(g, e) for g, e in zip(half, expected, strict=True)]
    assert max(diffs) <= FP16_TOL, f"fp16 image encoder outputs deviate by {diffs}"


PHRASE_SETS = [["tree"], ["a cat", "yellow school bus", "tree"]]


def _tokens(sam, phrases):
    processor = sam.detector_processor
    return processor.tokenizer(phrases, max_length=processor.text_max_length)


@pytest.mark.parametrize("phrases", PHRASE_SETS, ids=len)
def test_text_encoder_matches_pytorch(phrases, export_sam, graphs):
    tokens = _tokens(export_sam, phrases)
    feed = {"input_ids": tokens["input_ids"].numpy(), "attention_mask": tokens["attention_mask"].numpy()}
    with torch.no_grad():
        expected = export_sam.detector.get_text_features(tokens["input_ids"], tokens["attention_mask"])
    for half, tol in ((False, FP32_TOL), (True, FP16_TOL)):
        features, embeds = graphs[("text_encoder", half)].run(None, feed)
        diffs = (_max_diff(features, expected.pooler_output), _max_diff(embeds, expected.text_embeds))
        assert max(diffs) <= tol, f"text encoder (fp16 weights: {half}) deviates by {diffs}"


@pytest.mark.parametrize("phrases", PHRASE_SETS, ids=len)
def test_concept_heads_match_one_forward_per_phrase(phrases, export_sam, graphs):
    image = np.random.default_rng(5).integers(0, 256, (120, 150, 3), dtype=np.uint8)
    entry = export_sam.features(image)
    detector = export_sam.detector
    vision = export_sam.feature_store.detector_embeds(entry, detector.vision_encoder)
    tokens = _tokens(export_sam, phrases)
    with torch.no_grad():
        text = detector.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
    feed = {f"detector_fpn_{i}": vision.fpn_hidden_states[i].numpy() for i in range(3)}
    feed.update(text_features=text.numpy(), attention_mask=tokens["attention_mask"].numpy())
    got = graphs[("concept_heads", False)].run(None, feed)
    half = graphs[("concept_heads", True)].run(None, feed)
    for i in range(len(phrases)):
        with torch.no_grad():
            out = detector(
                vision_embeds=vision,
                text_embeds=text[i : i + 1],
                attention_mask=tokens["attention_mask"][i : i + 1],
            )
        expected = (out.pred_masks, out.pred_boxes, out.pred_logits, out.presence_logits, out.semantic_seg)
        diffs = [_max_diff(g[i : i + 1], e) for g, e in zip(got, expected, strict=True)]
        assert max(diffs) <= FP32_TOL, f"phrase {phrases[i]!r}: concept heads deviate by {diffs}"
        diffs = [_max_diff(g[i : i + 1], e) for g, e in zip(half, expected, strict=True)]
        assert max(diffs) <= FP16_TOL, f"phrase {phrases[i]!r}: fp16 concept heads deviate by {diffs}"
    # different phrases give different outputs (the graph does read the text)
    if len(phrases) > 1:
        assert np.abs(got[2][0] - got[2][1]).max() > 1e-3


def _export_run(module, x, path, ort_session):
    from sam3_sdk.onnx_io import export_graph

    export_graph(module, (x,), path, ("x",), ("y",))
    return ort_session(path).run(None, {"x": x.numpy()})[0]


def test_staged_group_norm_keeps_float32_accuracy_in_onnxruntime(tmp_path, ort_session):
    """A group as large as the real pixel decoder's at 288x288 (32 channels x 288 x 288 = 2.65M values):
    the staged GroupNorm in onnxruntime is as close to float64 as PyTorch's float32 GroupNorm (measured
    1.8e-6 vs 1.6e-6 on outputs up to ~13); a plain GroupNorm, traced to InstanceNormalization, was
    6.9e-4 away (one float32 accumulator over the group), which the 2e-5 bound here catches."""
    from sam3_sdk.onnx_graphs import StagedGroupNorm

    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(1, 32)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(1, 32, 288, 288) * 2 + 3  # an offset mean, as after a conv + skip
    staged = StagedGroupNorm(norm)
    with torch.no_grad():
        truth = torch.nn.functional.group_norm(x.double(), 1, norm.weight.double(), norm.bias.double())
        truth = truth.numpy()
        assert np.abs(staged(x).numpy() - truth).max() <= 2e-5  # the same maths as GroupNorm in PyTorch
    got = _export_run(staged, x, tmp_path / "staged.onnx", ort_session)
    assert np.abs(got - truth).max() <= 2e-5, f"staged GroupNorm in onnxruntime: {np.abs(got - truth).max()}"


def test_concept_heads_wrapper_leaves_the_detector_alone(export_sam):
    """The graph's wrapper swaps in `StagedGroupNorm` on a shallow copy: the SDK's detector keeps its
    own GroupNorms (and shares the weights)."""
    from sam3_sdk.onnx_graphs import ConceptHeads, StagedGroupNorm

    detector = export_sam.detector
    heads = ConceptHeads(detector, [torch.zeros(1)] * 3)
    norms = heads.detector.mask_decoder.pixel_decoder.norms
    assert all(isinstance(n, StagedGroupNorm) for n in norms)
    assert all(isinstance(n, torch.nn.GroupNorm) for n in detector.mask_decoder.pixel_decoder.norms)
    assert norms[0].weight is detector.mask_decoder.pixel_decoder.norms[0].weight
    assert heads.detector.detr_encoder is detector.detr_encoder


def test_concept_heads_are_as_close_to_float64_as_pytorch_fp32(export_sam, graphs):
    """Against our detector run in float64 on the same (fp32) inputs, each output of the fp32 graph is
    at most 4x as far as our fp32 model's output is (plus 1e-6 of the output's magnitude, for outputs
    PyTorch happens to round exactly): an exporter op that loses float32 precision (as the pixel
    decoder's GroupNorm did) shows here as the graph being the farther one, whatever the absolute bound.
    Measured at the tiny widths: masks (up to ~15) graph 1.2e-5, ours fp32 2.0e-5; the largest ratio
    graph / ours is 1.6 (pred_logits, 7.9e-7 vs 5.0e-7). Not sensitive to the GroupNorm case itself
    (tiny maps make small groups): `test_staged_group_norm_...` covers that."""
    import copy

    from sam3_core.outputs import Sam3VisionOutput

    image = np.random.default_rng(7).integers(0, 256, (140, 120, 3), dtype=np.uint8)
    detector = export_sam.detector
    vision = export_sam.feature_store.detector_embeds(export_sam.features(image), detector.vision_encoder)
    tokens = _tokens(export_sam, ["yellow school bus"])
    mask = tokens["attention_mask"]
    with torch.no_grad():
        text = detector.get_text_features(tokens["input_ids"], mask).pooler_output
        ours = detector(vision_embeds=vision, text_embeds=text, attention_mask=mask)
        detector64 = copy.deepcopy(detector).double()
        vision64 = Sam3VisionOutput(
            fpn_hidden_states=[None if f is None else f.double() for f in vision.fpn_hidden_states],
            fpn_position_encoding=[None if p is None else p.double() for p in vision.fpn_position_encoding],
        )
        truth = detector64(vision_embeds=vision64, text_embeds=text.double(), attention_mask=mask)
    feed = {f"detector_fpn_{i}": vision.fpn_hidden_states[i].numpy() for i in range(3)}
    feed.update(text_features=text.numpy(), attention_mask=mask.numpy())
    got = graphs[("concept_heads", False)].run(None, feed)
    names = ("pred_masks", "pred_boxes", "pred_logits", "presence_logits", "semantic_seg")
    for name, graph_out in zip(names, got, strict=True):
        t = getattr(truth, name).numpy()
        graph_err = float(np.abs(graph_out - t).max())
        ours_err = float(np.abs(getattr(ours, name).double().numpy() - t).max())
        bound = 4 * ours_err + 1e-6 * float(np.abs(t).max())
        assert graph_err <= bound, (
            f"{name}: the graph is {graph_err:.2e} from float64, ours fp32 {ours_err:.2e} (bound {bound:.2e})"
        )
