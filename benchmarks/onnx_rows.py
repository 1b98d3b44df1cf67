"""The ONNX rows of `make bench`: onnxruntime (CPU) next to our PyTorch (fp32 and bf16) on the same
weights and inputs, at the real widths: SAM 3's image encoder, a click, a phrase on a cached image
(concept heads), EdgeTAM's image encoder and a click. Also each graph's largest deviation from
PyTorch fp32 (the real-width check of the export; the tests check the tiny widths), for the fp32
graphs and the fp16-weight ones, and how far the fp32 graph and our fp32 model each are from our model
run in float64 on the same inputs (the truth both approximate: a deviation from ours fp32 is only a
graph's fault where the graph is the farther of the two from float64).

    python benchmarks/onnx_rows.py --sam3 DIR --edgetam DIR [--repeats 3] [--threads 0] > result.json

Run in its own process by benchmarks/run.py (the export holds the traced models in memory).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROWS = {
    "sam3_encoder": "SAM 3 image encoder (ViT + both FPN necks)",
    "sam3_click": "SAM 3 click (1 point, 3 masks)",
    "sam3_concept": "SAM 3 concept heads (1 phrase, cached image)",
    "edgetam_encoder": "EdgeTAM image encoder",
    "edgetam_click": "EdgeTAM click (1 point, 3 masks)",
}


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (also the compared run)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _diff(got: list, expected: list) -> float:
    return max(
        float(np.abs(np.asarray(g, np.float32) - e.detach().float().cpu().numpy()).max())
        for g, e in zip(got, expected, strict=True)
    )


def _diff64(got: list, truth: list) -> float:
    """Largest |got - truth| over the outputs, in float64 (`truth`: the float64 model's)."""
    return max(
        float(np.abs(np.asarray(g, np.float64) - t.detach().double().cpu().numpy()).max())
        for g, t in zip(got, truth, strict=True)
    )


def _torch_runs(checkpoint: Path, edgetam: bool, dtype: torch.dtype, given: dict | None = None):
    """{row: (callable, outputs)} of our PyTorch model in `dtype`, and the inputs they use. `given`:
    the inputs of an earlier call (the fp32 model's image features and text features), cast to
    `dtype` and used by the click and concept rows instead of this model's own."""
    from sam3_core import EdgeTamVideoModel, Sam2VideoProcessor
    from sam3_core.outputs import Sam3VisionOutput
    from sam3_sdk import Sam3

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    if edgetam:
        model = EdgeTamVideoModel.from_pretrained(checkpoint, device="cpu", dtype=dtype).eval()
        processor = Sam2VideoProcessor.from_pretrained(checkpoint)
        tracker, detector = model, None
    else:
        sam = Sam3.from_pretrained(checkpoint, device="cpu", dtype=dtype)
        tracker, processor, detector = sam.image_model, sam.image_processor, sam.detector
    pixels = processor(images=image)["pixel_values"]
    size = processor.target_size
    points = torch.tensor([[[[0.4 * size, 0.55 * size]]]])
    labels = torch.ones(1, 1, 1, dtype=torch.int64)
    inputs = {"pixels": pixels, "points": points}
    runs = {}
    with torch.inference_mode():
        if edgetam:
            maps = list(tracker._image_features(pixels.to(dtype)).maps)
            maps[-1] = maps[-1] + tracker.no_memory_embedding.reshape(1, -1, 1, 1)
        else:
            vision = tracker.vision_encoder
            backbone = vision.backbone_map(pixels.to(dtype))
            maps = tracker.image_embeddings_from_vision(vision.from_backbone_map(backbone))
            fpn = detector.vision_encoder.from_backbone_map(backbone)

        def encode():
            with torch.inference_mode():
                if edgetam:
                    return list(tracker._image_features(pixels.to(dtype)).maps)
                b = tracker.vision_encoder.backbone_map(pixels.to(dtype))
                return [
                    *tracker.image_embeddings_from_vision(tracker.vision_encoder.from_backbone_map(b)),
                    *detector.vision_encoder.from_backbone_map(b).fpn_hidden_states[:3],
                ]

        def click():
            with torch.inference_mode():
                return tracker.decode_masks(maps, points, labels, multimask_output=True)

        name = "edgetam" if edgetam else "sam3"
        expected_maps = list(maps) + ([] if edgetam else list(fpn.fpn_hidden_states[:3]))
        runs[f"{name}_encoder"] = (encode, expected_maps)
        if given is not None:  # the click and the concept heads on the given (fp32) features
            maps = [m.to(dtype) for m in given["maps"]]
            if not edgetam:
                levels = [f.to(dtype) for f in given["fpn"]] + list(fpn.fpn_hidden_states[3:])
                fpn = Sam3VisionOutput(
                    fpn_hidden_states=levels, fpn_position_encoding=fpn.fpn_position_encoding
                )
        out = click()
        runs[f"{name}_click"] = (
            click,
            [out.masks[:, 0], out.iou_scores[:, 0], out.object_score_logits[:, 0]],
        )
        inputs["maps"] = [m.float() for m in maps]
        if not edgetam:
            text_processor = sam.detector_processor
            tokens = text_processor.tokenizer(
                ["yellow school bus"], max_length=text_processor.text_max_length
            )
            text = detector.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
            if given is not None:
                text = given["text"].to(dtype)

            def concept():
                with torch.inference_mode():
                    return detector(
                        vision_embeds=fpn, text_embeds=text, attention_mask=tokens["attention_mask"]
                    )

            o = concept()
            runs["sam3_concept"] = (
                concept,
                [o.pred_masks, o.pred_boxes, o.pred_logits, o.presence_logits, o.semantic_seg],
            )
            inputs.update(
                fpn=[f.float() for f in fpn.fpn_hidden_states[:3]], text=text.float(), tokens=tokens
            )
    return runs, inputs


def _feeds(row: str, inputs: dict, grid: int) -> dict:
    if row.endswith("encoder"):
        return {"pixel_values": inputs["pixels"].numpy()}
    if row.endswith("click"):
        feed = {f"image_embeddings_{i}": m.numpy() for i, m in enumerate(inputs["maps"])}
        feed.update(
            point_coords=inputs["points"][0].numpy(),
            point_labels=np.ones((1, 1), np.float32),
            mask_input=np.zeros((1, 1, grid, grid), np.float32),
            has_mask_input=np.zeros(1, np.float32),
        )
        return feed
    feed = {f"detector_fpn_{i}": f.numpy() for i, f in enumerate(inputs["fpn"])}
    feed.update(
        text_features=inputs["text"].numpy(), attention_mask=inputs["tokens"]["attention_mask"].numpy()
    )
    return feed


GRAPH = {"encoder": "image_encoder", "click": "click_decoder", "concept": "concept_heads"}


def measure(checkpoint: Path, edgetam: bool, repeats: int, threads: int, graphs: Path | None = None) -> dict:
    """The rows of one model; `graphs`: a folder this checkpoint was already exported to (skips the export)."""
    from sam3_sdk import export_onnx
    from sam3_sdk.onnx_decode import load_manifest

    parts = ["image_encoder", "click_decoder"] + ([] if edgetam else ["text_encoder", "concept_heads"])
    results: dict = {}
    fp32_outputs: dict = {}  # row -> (ours fp32, onnxruntime fp32 graph), for the float64 comparison
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if graphs is None:
            manifest = export_onnx(checkpoint, tmp, parts=parts)
        else:
            manifest, tmp = load_manifest(graphs), str(graphs)
        export_s = time.perf_counter() - start if graphs is None else None
        runs32, inputs = _torch_runs(checkpoint, edgetam, torch.float32)
        grid = manifest["postprocessing"]["low_res_size"][0]
        for row, (fn, expected) in runs32.items():
            entry = results.setdefault(row, {"label": ROWS[row], "export_s": export_s and round(export_s, 1)})
            entry["torch_float32"] = _time(fn, repeats)
            graph = manifest["graphs"][GRAPH[row.split("_")[1]]]
            feed = _feeds(row, inputs, grid)
            for key, file in (("onnx_float32", graph["file"]), ("onnx_fp16_weights", graph["fp16_file"])):
                session = _session(Path(tmp) / file, threads)
                got = session.run(None, feed)
                if key == "onnx_float32":
                    fp32_outputs[row] = ([e.detach().float().numpy().copy() for e in expected], got)
                entry[f"{key}_max_abs_diff"] = _diff(got, expected)
                entry[key] = _time(lambda s=session, f=feed: s.run(None, f), repeats)
            entry["mb_float32"] = round((Path(tmp) / graph["file"]).stat().st_size / 2**20, 1)
            entry["mb_fp16_weights"] = round((Path(tmp) / graph["fp16_file"]).stat().st_size / 2**20, 1)
            print(f"{row}: {json.dumps(entry)}", file=sys.stderr, flush=True)
        del runs32
        runs16, _ = _torch_runs(checkpoint, edgetam, torch.bfloat16)
        for row, (fn, _expected) in runs16.items():
            results[row]["torch_bfloat16"] = _time(fn, repeats)
        del runs16
        runs64, _ = _torch_runs(checkpoint, edgetam, torch.float64, given=inputs)
        for row, (_fn, truth) in runs64.items():
            ours, graph_out = fp32_outputs.pop(row)
            results[row]["torch_float32_vs_f64"] = _diff64(ours, truth)
            results[row]["onnx_float32_vs_f64"] = _diff64(graph_out, truth)
            results[row]["max_abs_f64"] = max(float(t.detach().abs().max()) for t in truth)
            print(f"{row}: {json.dumps(results[row])}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sam3", type=Path, required=True)
    parser.add_argument("--edgetam", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--sam3-graphs", type=Path, default=None, help="reuse this export of --sam3")
    parser.add_argument("--skip-edgetam", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args.sam3, False, args.repeats, args.threads, args.sam3_graphs)
    if not args.skip_edgetam:
        results.update(measure(args.edgetam, True, args.repeats, args.threads))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
