"""Images per second of the `sam3` batch loop, with and without decoding ahead on a worker thread.

    python scripts/benchmark_cli.py                       # tiny-random, 32 JPEGs of 1280x960, `object`
    python scripts/benchmark_cli.py --model facebook/sam3 --device cuda --images 64 --command concept

Writes the images once into a temporary folder, loads the model once, then runs the same job with
`--prefetch 0` (decode, then run the model, in turn) and with `--prefetch N` (a worker decodes and
preprocesses ahead), each into a fresh output folder, and prints images/s and the per-image cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sam3_sdk.cli.arguments import build_parser
from sam3_sdk.cli.inputs import expand_images
from sam3_sdk.cli.jobs import ImageJob, load_sam
from sam3_sdk.cli.outputs import RunOutputs
from sam3_sdk.cli.progress import RunStats
from sam3_sdk.cli.runners import run_images

PROMPTS = {
    "object": ["--point", "300,200"],
    "concept": ["--text", "bottle"],
    "everything": ["--points-per-side", "8"],
}


def write_jpegs(folder: Path, count: int, size: tuple[int, int]) -> None:
    h, w = size
    for i in range(count):
        rng = np.random.RandomState(i)
        yy, xx = np.mgrid[0:h, 0:w]
        rgb = np.stack([xx % 256, yy % 256, (xx * yy) % 256], -1) + rng.randint(0, 60, (h, w, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=92)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--command", choices=sorted(PROMPTS), default="object")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, nargs=2, default=(960, 1280), metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting; the best is kept")
    opts = parser.parse_args()

    sam = load_sam(opts.model, opts.device, opts.dtype)
    print(f"model {opts.model} on {sam.device}, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        write_jpegs(folder, opts.images, tuple(opts.size))
        args = build_parser().parse_args([opts.command, str(folder), *PROMPTS[opts.command], "--out", tmp])
        job = ImageJob.from_args(args)
        items, _ = expand_images([str(folder)])
        run_images(sam, job, items[:2], RunOutputs(Path(tmp) / "warmup"), RunStats(), quiet=True)  # warm-up
        for depth in (0, opts.prefetch):
            best = float("inf")
            for r in range(opts.repeats):
                outputs = RunOutputs(Path(tmp) / f"out-{depth}-{r}")
                outputs.prepare(job.settings(), resume=False)
                stats = RunStats(total=len(items))
                start = time.perf_counter()
                run_images(sam, job, items, outputs, stats, opts.batch_size, depth, quiet=True)
                best = min(best, time.perf_counter() - start)
                assert stats.done == len(items), stats.failures
            print(
                f"prefetch {depth:2d}: {len(items) / best:6.2f} images/s ({1000 * best / len(items):6.1f} ms/image), "
                f"{opts.images} images of {opts.size[1]}x{opts.size[0]}, batch {opts.batch_size}, {opts.command}"
            )


if __name__ == "__main__":
    main()
