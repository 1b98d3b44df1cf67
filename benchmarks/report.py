"""The benchmark's machine description and its JSON + Markdown tables."""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        return re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or "unknown CPU"


def gpu() -> str | None:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def machine(args, impls: list[str]) -> dict:
    ref_version = None
    if "reference" in impls:
        out = subprocess.run(
            [args.reference, "-c", "import transformers, torch; print(transformers.__version__, torch.__version__)"],
            capture_output=True, text=True,
        )  # fmt: skip
        ref_version = out.stdout.strip() or None
    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": gpu() if getattr(args, "device", "cpu") != "cpu" else None,  # named only when timed on it
        "reference": ref_version,
        "vit_layers": args.layers,
        "repeats": args.repeats,
        "video_frames": args.video_frames,
        "auto_points": args.auto_points,
    }


def slug(meta: dict) -> str:
    """The results' file name: the CPU model (and GPU), lower-case, no punctuation."""
    name = meta["gpu"] or f"{meta['cpu']}-{meta['cores']}c"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# what a kept measurement must share with the run that fills in the rest of the table: the machine
# (load and RSS entries, which name their own ViT depth), and for timed rows the workload too
SAME_MACHINE = ("cpu", "cores", "threads", "torch", "gpu", "reference")
SAME_WORKLOAD = ("vit_layers", "repeats", "video_frames", "auto_points")
DTYPE_ORDER = ("float32", "bfloat16", "int8")


def earlier(folder: Path, meta: dict, timed_rows: bool) -> tuple[list[dict], dict]:
    """The rows and load/RSS entries of an earlier run on this machine, so a run of a few rows
    (`--rows`, `--no-load`, `--video-rss-frames 0`) fills in the table instead of replacing it.
    A run that times no rows (`--rows ""`) keeps the earlier rows and their workload in `meta`."""
    try:
        data = json.loads((folder / f"{slug(meta)}.json").read_text())
    except (OSError, ValueError):
        return [], {}
    old = data.get("machine", {})
    if any(old.get(k) != meta.get(k) for k in SAME_MACHINE):
        return [], {}
    extra = {
        k: data[k]
        for k in ("load", "sdk_load", "video_rss", "lite_text", "onnx")
        if isinstance(data.get(k), dict)
    }
    if not timed_rows:
        meta.update({k: old[k] for k in SAME_WORKLOAD if k in old})
    same = all(old.get(k) == meta.get(k) for k in SAME_WORKLOAD)
    return (data.get("rows", []) if same else []), extra


def merge(kept: list[dict], new: list[dict], order: list[str]) -> list[dict]:
    """`new` rows, plus the `kept` ones they do not measure again, in the report's order."""
    fresh = {(e["row"], e["dtype"]) for e in new}
    rows = [e for e in kept if (e["row"], e["dtype"]) not in fresh and e["row"] in order]
    rows = [e for e in rows + new if e["dtype"] in DTYPE_ORDER]
    return sorted(rows, key=lambda e: (DTYPE_ORDER.index(e["dtype"]), order.index(e["row"])))


def _ms(s: float | None) -> str:
    return "—" if s is None else (f"{s * 1e3:.0f} ms" if s < 10 else f"{s:.1f} s")


def cells(entry: dict) -> tuple[str, str, str, str]:
    s = entry.get("seconds", {})
    ours, ref = s.get("ours"), s.get("reference")
    ratio = f"{ref / ours:.2f}×" if ours and ref else "—"
    diff = entry.get("max_abs_diff")
    diff_s = "—" if diff is None else f"{diff:.1e}"
    if entry.get("skipped"):
        return "skipped", "skipped", "—", "—"
    errors = entry.get("errors", {})
    return (
        "error" if "ours" in errors else _ms(ours),
        "error" if "reference" in errors else _ms(ref),
        ratio,
        diff_s,
    )


def line(entry: dict) -> str:
    ours, ref, ratio, diff = cells(entry)
    errs = "; ".join(f"{k}: {v}" for k, v in entry.get("errors", {}).items())
    return f"{entry['label'][:52]:52s} {entry['dtype']:8s} ours {ours:>9s}  ref {ref:>9s}  {ratio:>6s}  diff {diff} {errs}"


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def _depth(tracker: str, d: dict) -> str:
    """The SAM 3 ViT depth a load/RSS entry was measured with (it may come from another run)."""
    return f" (ViT {d['vit_layers']} of 32 blocks)" if tracker == "sam3" and "vit_layers" in d else ""


def _pair(o: dict, r: dict, key: str, fmt, speed: bool) -> tuple[str, str, str]:
    """ours, reference and their ratio (a speed-up for times, a fraction of the reference for
    memory) for one load/RSS measurement."""
    cell = lambda d: fmt(d[key]) if key in d else ("error" if "error" in d else "—")  # noqa: E731
    if key in o and key in r and o[key] and r[key]:
        ratio = f"{r[key] / o[key]:.2f}×" if speed else f"{o[key] / r[key]:.2f} of ref"
    else:
        ratio = "—"
    return cell(o), cell(r), ratio


def markdown(meta: dict, results: list[dict], extra: dict) -> str:
    gb = 2**30
    out = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['threads']} torch threads, torch {meta['torch']}"
        + (f", GPU {meta['gpu']}" if meta["gpu"] else "")
        + f". Reference: transformers/torch {meta['reference'] or 'not run'}.",
        f"SAM 3 at full widths, random weights, ViT **{meta['vit_layers']} of 32 blocks**; "
        f"median of {meta['repeats']} runs, ours and the reference interleaved; tracking rows: median "
        f"frame of a {meta['video_frames']}-frame 720p video; automatic masks: {meta['auto_points']}² points.",
        "",
        "| what | dtype | ours | reference | speed-up | max abs diff |",
        "|---|---|---|---|---|---|",
    ]
    for e in results:
        out.append(f"| {e['label']} | {e['dtype']} | " + " | ".join(cells(e)) + " |")
    names = {"sam3": "SAM 3 tracker", "edgetam": "EdgeTAM"}
    for tracker, by_impl in extra.get("load", {}).items():
        o, r = by_impl.get("ours", {}), by_impl.get("reference", {})
        what = f"load {names.get(tracker, tracker)}{_depth(tracker, o or r)}"
        out.append(f"| {what} (time) | float32 | " + " | ".join(_pair(o, r, "seconds", _ms, True)) + " | |")
        out.append(
            f"| {what} (peak RSS) | float32 | " + " | ".join(_pair(o, r, "peak_bytes", _gib, False)) + " | |"
        )
    for dtype, by_impl in extra.get("sdk_load", {}).items():
        o = by_impl.get("ours", {})
        what = (
            f"SDK load, tracker + detector + video tracker{_depth('sam3', o)}: peak RSS increase / checkpoint"
        )
        if "ratio" in o:
            ours = f"{_gib(o['increase'])} / {_gib(o['file_bytes'])} = {o['ratio']:.2f}× the file"
            if dtype != "float32":
                ours += f" ({o['parameter_ratio']:.2f}× its {_gib(o['parameter_bytes'])} of parameters)"
        else:
            ours = "error" if "error" in o else "—"
        out.append(f"| {what} | {dtype} | {ours} | — | | |")
    notes = []
    if extra.get("load"):
        notes.append(
            "Load peak RSS: ours reads each tensor into its own memory (and, in a fresh interpreter, imports "
            "torch's meta kernels, ~70 MB, once); the reference's parameters are views of the memory-mapped "
            "file, so its figure leaves out the weights, which its first forward pass faults in (0.49 GiB "
            "more for the 8-block tracker, measured by summing its parameters after loading)."
        )
    growth = []
    for tracker, by_impl in extra.get("video_rss", {}).items():
        o, r = by_impl.get("ours", {}), by_impl.get("reference", {})
        frames = o.get("frames") or r.get("frames")
        what = f"{names.get(tracker, tracker)}{_depth(tracker, o or r)}: peak RSS over a {frames}-frame 720p video (after load)"
        out.append(f"| {what} | float32 | " + " | ".join(_pair(o, r, "peak_bytes", _gib, False)) + " | |")
        for impl, d in (("ours", o), ("reference", r)):
            if "by_frame" in d:
                steps = ", ".join(f"{k}: {v / gb:.2f}" for k, v in d["by_frame"].items())
                growth.append(f"RSS growth, {names.get(tracker, tracker)} ({impl}, GiB by frame): {steps}")
    if notes or growth:
        out += ["", *notes, *growth]
    out += lite_text_table(extra.get("lite_text", {}))
    out += onnx_table(extra.get("onnx", {}))
    return "\n".join(out) + "\n"


LITE_NAMES = {"sam3": "SAM 3 (CLIP)", "s0": "LiteText S0", "s1": "LiteText S1", "l": "LiteText L"}


def lite_text_table(entries: dict) -> list[str]:
    """The text-encoder table: SAM 3's concept model next to each SAM3-LiteText size."""
    if not entries:
        return []
    some = next(iter(entries.values()))
    layers = next((d["vit_layers"] for d in some.values() if isinstance(d, dict) and "vit_layers" in d), "?")
    repeats = next((d["repeats"] for d in some.values() if isinstance(d, dict) and "repeats" in d), "?")
    out = [
        "",
        "Text encoders: SAM 3's concept model (`Sam3Model`) and SAM3-LiteText's (`Sam3LiteTextModel`), ours next "
        "to the reference. Parameters at full depth (text: encoder + projection to the detector); load time "
        f"and peak-RSS increase of the whole concept model in fp32 with the ViT at {layers} of 32 blocks (the "
        "text encoders at full size); a new phrase on a cached image: text encoder + detector heads "
        f"(text encoder alone in brackets), median of {repeats} runs; bf16: ours' largest deviation from ours in fp32 (logits, boxes, "
        "mask logits); max abs diff: ours vs the reference in fp32.",
        "",
        "| model | params (text) | load ours / ref | peak RSS ours / ref | new phrase fp32 ours / ref "
        "| new phrase bf16 ours / ref | bf16 deviation | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, d in entries.items():
        o, r = d.get("ours", {}), d.get("reference", {})
        p = d.get("full_params", {})
        params = f"{p['model'] / 1e6:.0f} M ({p['text'] / 1e6:.1f} M)" if p else "—"

        def both(key, fmt, extra_key=None, o=o, r=r):
            def one(x):
                if key not in x:
                    return "error" if "error" in x else "—"
                return fmt(x[key]) + (f" ({fmt(x[extra_key])})" if extra_key and extra_key in x else "")

            return f"{one(o)} / {one(r)}"

        dev = o.get("bf16_deviation")
        dev_s = ", ".join(f"{k.removeprefix('pred_')} {v:.2g}" for k, v in dev.items()) if dev else "—"
        diff = d.get("max_abs_diff")
        out.append(
            f"| {LITE_NAMES.get(size, size)} | {params} | {both('seconds', _ms)} | {both('peak_bytes', _gib)} | "
            f"{both('phrase_float32', _ms, 'text_float32')} | {both('phrase_bfloat16', _ms, 'text_bfloat16')} | "
            f"{dev_s} | {'—' if diff is None else f'{diff:.1e}'} |"
        )
    return out


def onnx_table(entry: dict) -> list[str]:
    """onnxruntime (CPU) next to ours on the same weights (benchmarks/onnx_rows.py)."""
    if not entry:
        return []
    if "error" in entry:
        return ["", f"ONNX: error: {entry['error']}"]
    out = [
        "",
        f"ONNX export (sam3 export onnx) at the real widths, ViT at {entry.get('vit_layers', '?')} of 32 blocks: "
        "onnxruntime CPU (fp32 graph; the fp16-weight graph computes in fp32 too) next to ours in fp32 and bf16, "
        f"same weights and inputs, median of {entry.get('repeats', '?')} timed run(s) after a warm-up; deviation: "
        "the graph's largest |onnx - ours fp32| over its outputs; "
        "vs f64: the largest |x - ours in float64| of ours fp32 and of the fp32 graph (same inputs; the click "
        "and concept rows on the fp32 features), next to the outputs' largest |value|: where both are of one "
        "order, the deviation is float32 rounding, not the graph.",
        "",
        "| row | ours fp32 | ours bf16 | onnxruntime fp32 | deviation fp32 graph | deviation fp16-weight graph "
        "| ours fp32 vs f64 | onnx fp32 vs f64 | max abs | file fp32 / fp16 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in entry.get("rows", {}).values():
        out.append(
            f"| {row['label']} | {_ms(row.get('torch_float32'))} | {_ms(row.get('torch_bfloat16'))} | "
            f"{_ms(row.get('onnx_float32'))} | {row.get('onnx_float32_max_abs_diff', float('nan')):.1e} | "
            f"{row.get('onnx_fp16_weights_max_abs_diff', float('nan')):.1e} | "
            f"{row.get('torch_float32_vs_f64', float('nan')):.1e} | "
            f"{row.get('onnx_float32_vs_f64', float('nan')):.1e} | {row.get('max_abs_f64', float('nan')):.3g} | "
            f"{row.get('mb_float32', '?')} / {row.get('mb_fp16_weights', '?')} MB |"
        )
    return out


def write(folder: Path, meta: dict, results: list[dict], extra: dict, quiet: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = slug(meta)
    (folder / f"{name}.json").write_text(json.dumps({"machine": meta, "rows": results, **extra}, indent=1))
    text = markdown(meta, results, extra)
    (folder / f"{name}.md").write_text(text)
    if not quiet:
        print(text)
