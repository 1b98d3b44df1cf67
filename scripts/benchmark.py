"""Speed of sam3_core next to the reference on the same weights (a benchmark, not a test).

Runs in the reference venv, where both are importable (`make fixtures` installs sam3_core there):

    .ref/bin/python scripts/benchmark.py [--image-size 560] [--layers 8] [--width 512] [--repeats 3]

It builds a mid-sized ViT (default: width 512, 8 layers, 560 px) with random weights, loads the same
weights into both implementations, checks that they agree, and times the image backbone + FPN and the
point decoder in fp32 and bf16 on the CPU (or CUDA when available).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=560)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from sam3_core import Sam3TrackerModel
    from transformers import Sam3TrackerModel as RefTracker
    from transformers import Sam3VideoConfig

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = json.loads((ROOT / "tests" / "fixtures" / "tiny" / "config.json").read_text())
    grid = args.image_size // 14
    for sub in ("detector_config", "tracker_config"):
        bb = cfg[sub]["vision_config"]["backbone_config"]
        bb.update(hidden_size=args.width, intermediate_size=4 * args.width, num_hidden_layers=args.layers,
                  num_attention_heads=max(1, args.width // 64), image_size=args.image_size,
                  pretrain_image_size=args.image_size, window_size=grid // 4 if grid % 4 == 0 else 8,
                  global_attn_indexes=[args.layers // 2 - 1, args.layers - 1])  # fmt: skip
        cfg[sub]["vision_config"]["backbone_feature_sizes"] = [[4 * grid] * 2, [2 * grid] * 2, [grid] * 2]
    cfg["tracker_config"]["image_size"] = args.image_size
    cfg["tracker_config"]["prompt_encoder_config"]["image_size"] = args.image_size
    cfg["tracker_config"]["memory_attention_rope_feat_sizes"] = [grid, grid]
    ref = RefTracker(Sam3VideoConfig.from_dict(cfg)).eval().to(device)
    with tempfile.TemporaryDirectory() as tmp:
        from safetensors.torch import save_file

        state = {("detector_model." + k if k.startswith("vision_encoder.backbone.") else
                  "tracker_neck." + k[len("vision_encoder.neck."):] if k.startswith("vision_encoder.neck.") else
                  "tracker_model." + k): v.contiguous() for k, v in ref.state_dict().items()}  # fmt: skip
        save_file(state, f"{tmp}/model.safetensors")
        Path(tmp, "config.json").write_text(json.dumps(cfg))
        ours = Sam3TrackerModel.from_pretrained(tmp, device=device)
    pixels = torch.randn(1, 3, args.image_size, args.image_size, device=device)
    points = torch.tensor([[[[100.0, 120.0]]]], device=device)
    labels = torch.ones(1, 1, 1, dtype=torch.long, device=device)
    print(f"device={device} threads={torch.get_num_threads()} image={args.image_size} width={args.width} "
          f"layers={args.layers}")  # fmt: skip
    print(f"{'what':34s} {'reference':>10s} {'sam3_core':>10s} {'speed-up':>9s}  max|diff|")
    for dtype in (torch.float32, torch.bfloat16):
        r, o = ref.to(dtype), ours.to(dtype)
        px = pixels.to(dtype)
        with torch.inference_mode():
            emb_ref = r.get_image_embeddings(px)
            emb_our = o.get_image_embeddings(px)
            diff = (emb_ref[-1].float() - emb_our[-1].float()).abs().max().item()
            t_ref = timed(lambda: r.get_image_embeddings(px), args.repeats)
            t_our = timed(lambda: o.get_image_embeddings(px), args.repeats)
            name = str(dtype).replace("torch.", "")
            print(
                f"{'backbone + FPN, ' + name:34s} {t_ref * 1e3:8.1f}ms {t_our * 1e3:8.1f}ms {t_ref / t_our:8.2f}x  {diff:.2e}"
            )
            out_r = r(image_embeddings=emb_ref, input_points=points, input_labels=labels)
            out_o = o(image_embeddings=emb_our, input_points=points, input_labels=labels)
            diff = (out_r.pred_masks.float() - out_o.pred_masks.float()).abs().max().item()
            t_ref = timed(
                lambda: r(image_embeddings=emb_ref, input_points=points, input_labels=labels), args.repeats
            )
            t_our = timed(
                lambda: o(image_embeddings=emb_our, input_points=points, input_labels=labels), args.repeats
            )
            print(
                f"{'point decoder, ' + name:34s} {t_ref * 1e3:8.1f}ms {t_our * 1e3:8.1f}ms {t_ref / t_our:8.2f}x  {diff:.2e}"
            )


if __name__ == "__main__":
    main()
