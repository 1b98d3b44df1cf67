"""Host synchronisations per tracked frame on CUDA (issue: no sync inside the per-object loop).

    python scripts/gpu/sync_count.py [--layers 4] [--objects 1,3,16] [--frames 4] [--dtype bfloat16]

Tracks K clicked objects through a few frames of a random-weight SAM 3 checkpoint at the real widths
(ViT depth --layers) with `torch.cuda.set_sync_debug_mode("warn")`, counts the synchronising calls
that torch reports per propagated frame, and prints one JSON line per object count with the counts
and the source lines (ours) that synchronised most. A count that grows with K is a sync inside the
per-object loop.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks import checkpoints, rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--objects", default="1,3,16")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("sync_count.py needs a CUDA device (torch sees none)")
    import sam3_core

    dtype = getattr(torch, args.dtype)
    folder = checkpoints.sam3_checkpoint(args.layers)
    model = sam3_core.Sam3TrackerVideoModel.from_pretrained(str(folder)).eval().to("cuda", dtype)
    processor = sam3_core.Sam3TrackerVideoProcessor()
    frames = [rows.image(seed) for seed in range(args.frames)]
    for k in (int(x) for x in args.objects.split(",")):
        session = processor.init_video_session(video=frames, inference_device="cuda", dtype=dtype)
        clicks = [[[[100 + 37 * i % 500, 100 + 53 * i % 500]]] for i in range(k)]
        processor.add_inputs_to_inference_session(
            session, 0, list(range(1, k + 1)), input_points=[clicks], input_labels=[[[1]] * k]
        )
        with torch.inference_mode():
            model(inference_session=session, frame_idx=0)
            where: collections.Counter = collections.Counter()
            per_frame = []
            it = model.propagate_in_video_iterator(session, start_frame_idx=1)
            while True:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    torch.cuda.set_sync_debug_mode("warn")
                    try:
                        next(it)
                    except StopIteration:
                        break
                    finally:
                        torch.cuda.set_sync_debug_mode("default")
                syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
                per_frame.append(len(syncs))
                for w in syncs:
                    where[f"{Path(w.filename).name}:{w.lineno}"] += 1
        print(json.dumps({"objects": k, "dtype": args.dtype, "syncs_per_frame": per_frame,
                          "top": where.most_common(12)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
