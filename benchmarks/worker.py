"""One implementation's side of the benchmark, in its own interpreter (ours in the project venv,
the reference in its venv): loads the models, runs the rows the driver asks for, one JSON line
per request on stdin, one JSON line per answer on stdout; outputs go to .pt files to compare.

    python benchmarks/worker.py --impl ours|reference --sam3 DIR --edgetam DIR --out DIR
    python benchmarks/worker.py --impl ... --load         # load time and peak RSS, then exit
    python benchmarks/worker.py --impl ... --video-rss N  # peak RSS over an N-frame 720p video
    (--tracker edgetam: the last two for EdgeTAM instead of the SAM 3 tracker)
    python benchmarks/worker.py --impl ... --lite-text s0 --lite s0=DIR  # a concept model's text cost
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import rows  # noqa: E402

# "int8": float32 inputs; ours quantises its linear layers, the reference stays float32
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.float32}


def status(field: str) -> int:
    """A /proc/self/status memory field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def library(impl: str):
    if impl == "ours":
        import sam3_core

        return sam3_core
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


# --tracker → the video model class (same name in both libraries)
TRACKERS = {"sam3": "Sam3TrackerVideoModel", "edgetam": "EdgeTamVideoModel"}


def load(env: rows.Env, tracker: str) -> dict:
    """Seconds and peak-RSS increase of loading a video tracker (fp32)."""
    reset_peak()
    before = status("VmRSS")
    t = time.perf_counter()
    env.model(TRACKERS[tracker], torch.float32)
    env.sync()
    return {"seconds": time.perf_counter() - t, "peak_bytes": status("VmHWM") - before}


def video_rss(env: rows.Env, frames: int, tracker: str) -> dict:
    """Peak RSS (bytes, after loading) while tracking one object over `frames` 720p frames, sampled
    at each quarter of the video so the growth with length shows."""
    model = env.model(TRACKERS[tracker], torch.float32)
    processor = rows._video_processor(env, edgetam=tracker == "edgetam")
    reset_peak()
    base = status("VmRSS")
    video = [rows.image(i % 8) for i in range(frames)]
    # ours in its bounded mode (only the memory window's outputs kept), which this row measures
    bounded = {"keep_all_outputs": False} if env.impl == "ours" else {}
    session = processor.init_video_session(
        video=video, inference_device=env.device, dtype=torch.float32, **bounded
    )
    processor.add_inputs_to_inference_session(
        session, 0, 1, input_points=[[[[400, 300]]]], input_labels=[[[1]]]
    )
    with torch.inference_mode():
        model(inference_session=session, frame_idx=0)
        samples = {}
        for i, _ in enumerate(model.propagate_in_video_iterator(session, start_frame_idx=1), start=2):
            if i % max(1, frames // 4) == 0 or i == frames:
                samples[i] = status("VmHWM") - base
    return {"frames": frames, "peak_bytes": status("VmHWM") - base, "by_frame": samples}


def _median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def lite_text(env: rows.Env, which: str, repeats: int, out: Path) -> dict:
    """What the text encoder costs a concept model ("sam3": SAM 3's CLIP; "s0", "s1", "l":
    SAM3-LiteText's): parameters, load time and peak-RSS increase (fp32), and the time of a new
    phrase on a cached image (text encoder + heads, and the text encoder alone) in fp32 and bf16,
    with the bf16 outputs' deviation from fp32. The fp32 outputs go to `out` for the driver."""
    name = "Sam3Model" if which == "sam3" else f"Sam3LiteTextModel:{which}"
    reset_peak()
    before = status("VmRSS")
    t = time.perf_counter()
    model = env.model(name, torch.float32)
    result = {"seconds": time.perf_counter() - t, "peak_bytes": status("VmHWM") - before}
    result["params"] = sum(p.numel() for p in model.parameters())
    result["text_params"] = sum(p.numel() for p in model.text_encoder.parameters()) + sum(
        p.numel() for p in model.text_projection.parameters()
    )
    ids, mask = rows._text(env)
    outputs = {}
    for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = model.to(dtype)
        with torch.inference_mode():
            vision = model.get_vision_features(pixel_values=rows.pixels(1008, dtype, env.device))

            def phrase(model=model, vision=vision):
                return model(vision_embeds=vision, input_ids=ids, attention_mask=mask)

            def text(model=model):
                return model.get_text_features(input_ids=ids, attention_mask=mask)

            outputs[dtype_name] = rows._concept_outputs(phrase())
            result[f"phrase_{dtype_name}"] = _median_seconds(phrase, repeats)
            result[f"text_{dtype_name}"] = _median_seconds(text, repeats)
    result["bf16_deviation"] = {
        k: (outputs["bfloat16"][k] - outputs["float32"][k]).abs().max().item() for k in outputs["float32"]
    }
    path = out / f"{env.impl}-lite-{which}.pt"
    torch.save(outputs["float32"], path)
    result["outputs"] = str(path)
    result["repeats"] = repeats
    return result


def serve(env: rows.Env, out: Path) -> None:
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # libraries' prints must not corrupt the protocol
    steps = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["row"], req["dtype"])
        env.quantize = req["dtype"] == "int8"
        try:
            with torch.inference_mode():
                if req["op"] == "prepare":
                    step = rows.ROWS[req["row"]][1](env, DTYPES[req["dtype"]])
                    if step is None:
                        answer.write(json.dumps({"skipped": True}) + "\n")
                        continue
                    outputs, _ = step()  # warm-up; its outputs are the ones compared
                    path = out / f"{env.impl}-{req['row']}-{req['dtype']}.pt"
                    torch.save({k: v.detach().cpu() for k, v in outputs.items()}, path)
                    steps[key] = step
                    answer.write(json.dumps({"outputs": str(path)}) + "\n")
                elif req["op"] == "time":
                    env.sync()
                    t = time.perf_counter()
                    _, seconds = steps[key]()
                    env.sync()
                    wall = time.perf_counter() - t
                    answer.write(json.dumps({"seconds": wall if seconds is None else seconds}) + "\n")
        except Exception as e:  # reported in the table; the other rows go on
            answer.write(json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("ours", "reference"), required=True)
    parser.add_argument("--sam3", type=Path, required=True)
    parser.add_argument("--edgetam", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--video-frames", type=int, default=8)
    parser.add_argument("--auto-points", type=int, default=32)
    parser.add_argument("--text-video", action="store_true", help="time the text-prompted video row")
    parser.add_argument("--load", action="store_true")
    parser.add_argument("--video-rss", type=int, default=0)
    parser.add_argument("--tracker", choices=sorted(TRACKERS), default="sam3", help="for --load/--video-rss")
    parser.add_argument("--lite-text", default="", help="sam3, s0, s1 or l: a concept model's text cost")
    parser.add_argument("--lite", action="append", default=[], help="SIZE=DIR: a LiteText checkpoint")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (--lite-text)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    env = rows.Env(
        library(args.impl),
        args.impl,
        args.sam3,
        args.edgetam,
        args.video_frames,
        args.auto_points,
        text_video=args.text_video,
        device=args.device,
        lite=dict(item.split("=", 1) for item in args.lite),
    )
    if args.device.startswith("cuda"):  # fp32 rows are fp32 (as the reference's parity assumes)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.load:
        print(json.dumps(load(env, args.tracker)))
    elif args.lite_text:
        print(json.dumps(lite_text(env, args.lite_text, args.repeats, args.out)))
    elif args.video_rss:
        print(json.dumps(video_rss(env, args.video_rss, args.tracker)))
    else:
        serve(env, args.out)


if __name__ == "__main__":
    main()
