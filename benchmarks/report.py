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
        "gpu": gpu(),
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
    load = extra.get("load")
    if load:
        o, r = load.get("ours", {}), load.get("reference", {})
        fmt = lambda d, k, f: f(d[k]) if k in d else "—"  # noqa: E731
        out.append(
            f"| load video tracker (time) | float32 | {fmt(o, 'seconds', _ms)} | {fmt(r, 'seconds', _ms)} | "
            + (f"{r['seconds'] / o['seconds']:.2f}×" if "seconds" in o and "seconds" in r else "—")
            + " | |"
        )
        out.append(
            f"| load video tracker (peak RSS) | float32 | {fmt(o, 'peak_bytes', lambda b: f'{b / gb:.2f} GiB')} | "
            f"{fmt(r, 'peak_bytes', lambda b: f'{b / gb:.2f} GiB')} | "
            + (
                f"{o['peak_bytes'] / r['peak_bytes']:.2f} of ref"
                if "peak_bytes" in o and "peak_bytes" in r
                else "—"
            )
            + " | |"
        )
    rss = extra.get("video_rss")
    if rss:
        o, r = rss.get("ours", {}), rss.get("reference", {})
        frames = o.get("frames") or r.get("frames")
        cell = lambda d: f"{d['peak_bytes'] / gb:.2f} GiB" if "peak_bytes" in d else "error"  # noqa: E731
        ratio = (
            f"{o['peak_bytes'] / r['peak_bytes']:.2f} of ref"
            if "peak_bytes" in o and "peak_bytes" in r
            else "—"
        )
        out.append(
            f"| peak RSS over a {frames}-frame 720p video (after load) | float32 | {cell(o)} | {cell(r)} | {ratio} | |"
        )
        for impl, d in (("ours", o), ("reference", r)):
            if "by_frame" in d:
                steps = ", ".join(f"{k}: {v / gb:.2f}" for k, v in d["by_frame"].items())
                out.append(f"\nRSS growth ({impl}, GiB by frame): {steps}")
    return "\n".join(out) + "\n"


def write(folder: Path, meta: dict, results: list[dict], extra: dict, quiet: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = slug(meta)
    (folder / f"{name}.json").write_text(json.dumps({"machine": meta, "rows": results, **extra}, indent=1))
    text = markdown(meta, results, extra)
    (folder / f"{name}.md").write_text(text)
    if not quiet:
        print(text)
