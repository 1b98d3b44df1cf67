"""`make bench`: sam3_core next to the reference at the real widths, same weights, same inputs.

    python benchmarks/run.py [--layers 32] [--rows backbone,click] [--dtypes float32,bfloat16]
                             [--repeats 3] [--reference .ref/bin/python] [--video-rss-frames 300]
    python benchmarks/run.py --quick   # every row, both dtypes, a cut-down workload (QUICK below)
    python benchmarks/run.py --rows "" --no-load --video-rss-frames 0 --lite-text sam3,s0,s1,l
                                       # only the text-encoder table (SAM 3's CLIP vs SAM3-LiteText)
    python benchmarks/run.py --rows "" --no-load --video-rss-frames 0 --lite-text "" --layers 4
                                       # only the ONNX table (onnxruntime CPU vs ours, benchmarks/onnx_rows.py)

Each implementation runs in its own worker process (the reference in its own venv); the driver
asks them for the same row in turn, A B A B, so both see the same machine load, compares their
outputs (max abs diff per row: a fast wrong answer shows) and writes
`benchmarks/results/<machine>.json` and `.md`. Without a reference interpreter only ours runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sam3_core
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import checkpoints, report  # noqa: E402
from benchmarks.rows import GPU_ROWS, ROWS  # noqa: E402

IMPLS = ("ours", "reference")

# `--quick`: every row in fp32 and bf16 next to the reference in a few minutes on an idle 2-core
# CPU (ViT cut to 4 of 32 blocks, 1 timed run after the compared warm-up, a 3-frame video, an 8x8 automatic grid, RSS over
# 30 frames). Options given explicitly win over the preset.
QUICK = {"layers": 4, "repeats": 1, "video_frames": 3, "auto_points": 8, "video_rss_frames": 30}


class Worker:
    """A worker process speaking the JSON-lines protocol of `worker.py`."""

    def __init__(self, python: str, impl: str, args: list[str], env: dict):
        self.impl = impl
        self.proc = subprocess.Popen(
            [python, str(ROOT / "benchmarks" / "worker.py"), "--impl", impl, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.impl} worker died (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def environment() -> dict:
    """The workers' environment: our packages importable, the thread count pinned."""
    paths = [str(ROOT / "packages" / p / "src") for p in ("sam3_core", "sam3_sdk")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}


def max_diff(a: Path, b: Path) -> float | None:
    x, y = torch.load(a), torch.load(b)
    diffs = []
    for k in x.keys() & y.keys():
        if x[k].shape != y[k].shape:
            return float("inf")
        diffs.append((x[k].float() - y[k].float()).abs().max().item() if x[k].numel() else 0.0)
    return max(diffs) if diffs else None


def one_shot(python: str, impl: str, args: list[str], env: dict, layers: int) -> dict:
    """A fresh worker for one measurement (--load, --video-rss): its own peak RSS; the entry
    names the SAM 3 checkpoint's ViT depth it was measured with."""
    cmd = [python, str(ROOT / "benchmarks" / "worker.py"), "--impl", impl, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1][:300] if out.stderr.strip() else "failed"}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "vit_layers": layers}


SDK_LOAD_DTYPES = ("float32", "bfloat16")


def sdk_load(checkpoint: Path, dtype: str, layers: int) -> dict:
    """`Sam3.from_pretrained` + its detector and video tracker, in a fresh interpreter
    (scripts/measure_load_memory.py): peak RSS increase, file and parameter bytes, their ratios."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from measure_load_memory import measure

    try:
        return {**measure(checkpoint, dtype=dtype), "vit_layers": layers}
    except RuntimeError as e:
        return {"error": str(e).strip().splitlines()[-1][:300]}


def lite_text_entry(size: str, args, pythons: dict, common: list[str], env: dict) -> dict:
    """{impl: measurements} of one row of the text-cost table ("sam3" or a LiteText size), each
    implementation in a fresh worker (its own RSS), with the full-depth parameter counts and ours'
    fp32 deviation from the reference."""
    lite = [] if size == "sam3" else [f"--lite={size}={checkpoints.lite_text_checkpoint(size, args.layers)}"]
    with tempfile.TemporaryDirectory() as tmp:
        flags = [*common, *lite, "--lite-text", size, "--repeats", str(args.repeats), "--out", tmp]
        by_impl = {impl: one_shot(py, impl, flags, env, args.layers) for impl, py in pythons.items()}
        if len(by_impl) == 2 and all("outputs" in d for d in by_impl.values()):
            by_impl["max_abs_diff"] = max_diff(*(Path(by_impl[i]["outputs"]) for i in IMPLS))
    by_impl["full_params"] = checkpoints.full_params(size)
    print(f"text cost {size}: {json.dumps(by_impl)}", file=sys.stderr, flush=True)
    return by_impl


def onnx_entry(sam3: Path, edgetam: Path, args, env: dict) -> dict:
    """The ONNX table (benchmarks/onnx_rows.py in a fresh interpreter): export, then onnxruntime CPU
    next to ours in fp32 and bf16, with each graph's deviation from ours in fp32."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "onnx_rows.py"), "--sam3", str(sam3), "--edgetam",
           str(edgetam), "--repeats", str(args.repeats), "--threads", str(args.threads)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        last = out.stderr.strip().splitlines()[-1][:300] if out.stderr.strip() else ""
        how = (
            f"killed by signal {-out.returncode} (out of memory?)"
            if out.returncode < 0
            else f"exit {out.returncode}"
        )
        return {"error": f"{how}: {last}" if last else how}
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rows": rows, "vit_layers": args.layers, "repeats": args.repeats}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=checkpoints.FULL_LAYERS, help="ViT blocks (32 = full)")
    parser.add_argument("--rows", default=None, help=f"comma-separated, of: {','.join(ROWS)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where both implementations run")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--reference", default=str(ROOT / ".ref" / "bin" / "python"),
                        help="the reference venv's python (skipped when absent)")  # fmt: skip
    parser.add_argument("--video-frames", type=int, default=8, help="frames per tracking row")
    parser.add_argument("--auto-points", type=int, default=32, help="points per side of the automatic grid")
    parser.add_argument("--video-rss-frames", type=int, default=300, help="0 skips the RSS-over-video row")
    parser.add_argument("--no-load", action="store_true", help="skip the load time / RSS rows")
    parser.add_argument("--fresh", action="store_true",
                        help="start a new table (default: keep the rows of an earlier run with the same settings "
                        "that this run does not measure)")  # fmt: skip
    parser.add_argument("--lite-text", default="sam3,s0,s1,l",
                        help="concept models whose text cost is measured (sam3: SAM 3's CLIP; s0, s1, l: "
                        "SAM3-LiteText); empty skips")  # fmt: skip
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX table (export + onnxruntime)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--quick", action="store_true", help=f"cut-down preset: {QUICK}")
    if "--quick" in sys.argv[1:]:
        parser.set_defaults(**QUICK)
    args = parser.parse_args()
    started = time.perf_counter()

    if args.rows is None:  # every row; the many-object ones only where they take seconds
        args.rows = ",".join(r for r in ROWS if args.device != "cpu" or r not in GPU_ROWS)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; expected some of {list(ROWS)}")
    dtypes = args.dtypes.split(",")
    pythons = {"ours": sys.executable}
    if Path(args.reference).is_file():
        pythons["reference"] = args.reference
    else:
        print(f"no reference interpreter at {args.reference}: timing ours only", file=sys.stderr)
    print(
        f"checkpoints: SAM 3 with {args.layers} ViT blocks, EdgeTAM (cache: {checkpoints.CACHE})",
        file=sys.stderr,
    )
    sam3, edgetam = checkpoints.sam3_checkpoint(args.layers), checkpoints.edgetam_checkpoint()
    env = environment()
    common = ["--sam3", str(sam3), "--edgetam", str(edgetam), "--threads", str(args.threads),
              "--video-frames", str(args.video_frames), "--auto-points", str(args.auto_points),
              "--device", args.device]  # fmt: skip
    if hasattr(sam3_core, "Sam3VideoModel"):  # the text-prompted video row, once ours exists
        common.append("--text-video")

    meta = report.machine(args, list(pythons))
    kept, extra = ([], {}) if args.fresh else report.earlier(args.output, meta, bool(rows))
    trackers = ("sam3", "edgetam")  # the load and RSS rows, for each video tracker
    if not args.no_load:
        extra["load"] = {
            t: {
                impl: one_shot(py, impl, [*common, "--load", "--tracker", t], env, args.layers)
                for impl, py in pythons.items()
            }
            for t in trackers
        }
        # the SDK's load (tracker, detector and video tracker around one backbone): ours only, the
        # reference has no such composition; peak resident increase over the checkpoint's size
        extra["sdk_load"] = {dtype: {"ours": sdk_load(sam3, dtype, args.layers)} for dtype in SDK_LOAD_DTYPES}
        report.write(args.output, meta, kept, extra, quiet=True)
    if args.video_rss_frames:
        flag = ["--video-rss", str(args.video_rss_frames)]
        extra["video_rss"] = {
            t: {
                impl: one_shot(py, impl, [*common, *flag, "--tracker", t], env, args.layers)
                for impl, py in pythons.items()
            }
            for t in trackers
        }
        report.write(args.output, meta, kept, extra, quiet=True)
    sizes = [s.strip() for s in args.lite_text.split(",") if s.strip()]
    if sizes:
        extra["lite_text"] = {**extra.get("lite_text", {})}  # an earlier run's sizes stay until measured
        for size in sizes:  # written after each size: partial results survive a stop
            extra["lite_text"][size] = lite_text_entry(size, args, pythons, common, env)
            report.write(args.output, meta, kept, extra, quiet=True)
    if not args.no_onnx:
        extra["onnx"] = onnx_entry(sam3, edgetam, args, env)
        report.write(args.output, meta, kept, extra, quiet=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        workers = {impl: Worker(py, impl, [*common, "--out", tmp], env) for impl, py in pythons.items()}
        try:
            for dtype in dtypes:  # dtype-major: a worker holds one dtype's models at a time
                for row in rows:
                    entry = {"row": row, "label": ROWS[row][0], "dtype": dtype, "times": {}, "errors": {},
                             "measured": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
                    prepared = {
                        impl: w.ask(op="prepare", row=row, dtype=dtype) for impl, w in workers.items()
                    }
                    live = [i for i, p in prepared.items() if "outputs" in p]
                    entry["errors"] = {i: p["error"] for i, p in prepared.items() if "error" in p}
                    entry["skipped"] = all(p.get("skipped") for p in prepared.values())
                    for _ in range(args.repeats):  # interleaved: A B A B ...
                        for impl in live:
                            answer = workers[impl].ask(op="time", row=row, dtype=dtype)
                            entry["times"].setdefault(impl, []).append(answer.get("seconds"))
                    entry["seconds"] = {
                        i: statistics.median(t) for i, t in entry["times"].items() if None not in t
                    }
                    if len(live) == 2:
                        entry["max_abs_diff"] = max_diff(*(Path(prepared[i]["outputs"]) for i in IMPLS))
                    results.append(entry)
                    print(report.line(entry), file=sys.stderr, flush=True)
                    merged = report.merge(kept, results, list(ROWS))
                    report.write(
                        args.output, meta, merged, extra, quiet=True
                    )  # partial results survive a stop
        finally:
            for w in workers.values():
                w.close()

    report.write(args.output, meta, report.merge(kept, results, list(ROWS)), extra)
    print(f"benchmark done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
