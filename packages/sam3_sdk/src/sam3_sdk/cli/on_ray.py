"""The same batch jobs on a Ray cluster (`sam3 ... --ray [ADDRESS]`, `pip install "sam3-sdk[ray]"`).

    images: read_binary_files ─▶ map_batches(decode, tasks) ─▶ map_batches(ImageReplica, actor pool) ─▶ driver
    videos: from_items(paths) ─▶ map_batches(VideoReplica, actor pool, one video per call) ─────────▶ driver

Ray Data reads the files and streams them through the stages; the replicas (one per GPU, or one per
group of CPUs) hold a loaded `Sam3` and run the same `ImageJob` / `VideoJob` as a local run; the
driver writes every result with the same `RunOutputs`. Scheduling, retries and data movement are
Ray's: Ray Data restarts a replica that dies and retries its batch, and a result is written under
its input's name, once, whichever attempt produced it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import ray
import ray.data
import torch
from sam3_core import Sam3TrackerProcessor

from ..testing import RANDOM_CHECKPOINTS, resolve_name
from .inputs import Decoded, InputFile, decode_image
from .jobs import ImageJob, VideoJob, load_sam
from .outputs import ImageResult, RunOutputs, VideoResult
from .progress import RunStats, progress_bar
from .runners import pending

__all__ = [
    "ImageReplica",
    "VideoReplica",
    "connect",
    "decode_batch",
    "replica_resources",
    "run",
    "run_images",
]

# Ray fuses consecutive stages with equal resources into one worker, which would make each replica
# decode its images in turn with the model; a distinct share keeps decoding a separate pool of tasks
# that runs ahead of the replicas.
DECODE_CPUS = 0.5
CPUS_PER_REPLICA = 4  # a CPU replica's share on big nodes: torch's threads scale poorly past a few cores


def connect(address: str) -> None:
    """Join the cluster at `address` (e.g. ray://head:10001), or RAY_ADDRESS / a new local instance
    when empty; a process that already called `ray.init` keeps its instance."""
    if not ray.is_initialized():
        ray.init(address=address or None)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI shows its own bar


def replica_resources(device: str | None, replicas: int | None) -> tuple[int, dict]:
    """(number of replicas, resources of each): one GPU each when the cluster has GPUs (and no CPU
    device was asked for), else a group of CPUs each, leaving a CPU for reading and decoding."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and (device is None or device.startswith("cuda")):
        return replicas or gpus, {"num_gpus": 1}
    cpus = max(1, int(resources.get("CPU", 1)))
    per = min(CPUS_PER_REPLICA, max(1, cpus // 2))
    return replicas or max(1, (cpus - 1) // per), {"num_cpus": per}


def _placeholder(path: str) -> InputFile:
    # Workers know an input by its path; the driver gives results their names and ids.
    return InputFile(path=Path(path), name=path, key=path, index=-1)


def decode_batch(batch: dict[str, np.ndarray], processor: Sam3TrackerProcessor) -> dict[str, np.ndarray]:
    """Ray Data stage: file bytes → (H, W, 3) uint8 images and (3, S, S) backbone inputs; a file that
    does not decode keeps its row, with the reason in `error`."""
    paths, images, pixels, errors = [], [], [], []
    for data, path in zip(batch["bytes"], batch["path"]):
        decoded = decode_image(_placeholder(str(path)), processor, data=bytes(data))
        paths.append(str(path))
        errors.append(decoded.error or "")
        images.append(decoded.image if decoded.image is not None else np.zeros((1, 1, 3), np.uint8))
        pixels.append(
            decoded.pixels.numpy()
            if decoded.pixels is not None
            else np.zeros((3, processor.size, processor.size), np.float32)
        )
    column = np.empty(len(images), dtype=object)  # images of different sizes
    column[:] = images
    return {"path": np.array(paths), "image": column, "pixels": np.stack(pixels), "error": np.array(errors)}


class ImageReplica:
    """One loaded model; Ray Data calls it on batches of decoded images."""

    def __init__(
        self, job: ImageJob, model: str, device: str | None, dtype: str, tracker_model: str | None = None
    ) -> None:
        self.job = job
        self.sam = load_sam(model, device, dtype, tracker_model=tracker_model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = [
            _decoded(str(path), image, torch.from_numpy(np.asarray(pixels)), str(error))
            for path, image, pixels, error in zip(
                batch["path"], batch["image"], batch["pixels"], batch["error"]
            )
        ]
        results = self.job.run_batch(self.sam, decoded)
        ok = [r if isinstance(r, ImageResult) else None for r in results]
        return {
            "path": batch["path"],
            "error": np.array([r if isinstance(r, str) else "" for r in results]),
            "record": np.array([json.dumps(r.record()) if r else "" for r in ok]),
            "mask_png": np.array([r.mask_png if r else b"" for r in ok], dtype=object),
            "overlay_jpg": np.array([(r.overlay_jpg or b"") if r else b"" for r in ok], dtype=object),
        }


def _decoded(path: str, image: np.ndarray, pixels: torch.Tensor, error: str) -> Decoded:
    if error:
        return Decoded(_placeholder(path), error=error)
    return Decoded(_placeholder(path), image=np.asarray(image, dtype=np.uint8), pixels=pixels)


class VideoReplica:
    """One loaded model; Ray Data calls it on one video at a time."""

    def __init__(
        self, job: VideoJob, model: str, device: str | None, dtype: str, tracker_model: str | None = None
    ) -> None:
        self.job = job
        self.sam = load_sam(model, device, dtype, job.video_model, tracker_model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths, errors, records, mp4s = [], [], [], []
        for path in batch["path"]:
            path = str(path)
            with tempfile.TemporaryDirectory() as tmp:
                mp4 = Path(tmp) / "annotated.mp4" if self.job.mp4 else None
                try:
                    result = self.job.run(self.sam, _placeholder(path), mp4)
                except Exception as e:  # a bad video is reported by the driver, the others go on
                    errors.append(f"{type(e).__name__}: {e}")
                    records.append("")
                    mp4s.append(b"")
                else:
                    errors.append("")
                    records.append(json.dumps({**result.record(), "masks_json": result.masks_json}))
                    mp4s.append(mp4.read_bytes() if mp4 is not None else b"")
            paths.append(path)
        return {"path": np.array(paths), "error": np.array(errors), "record": np.array(records),
                "mp4": np.array(mp4s, dtype=object)}  # fmt: skip


def run_images(
    args: argparse.Namespace,
    job: ImageJob,
    todo: list[InputFile],
    outputs: RunOutputs,
    stats: RunStats,
) -> None:
    """Run `job` on `todo` through Ray Data; each result is written as it arrives."""
    by_path = {str(item.path.resolve()): item for item in todo}
    count, resources = replica_resources(args.device, args.replicas)
    processor = _processor(args.tracker_model or args.model)  # the tracker's, as a local run's features
    ds = ray.data.read_binary_files(list(by_path), include_paths=True)
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs={"processor": processor},
        batch_size=args.batch_size,
        batch_format="numpy",
        num_cpus=DECODE_CPUS,
    )
    ds = ds.map_batches(
        ImageReplica, fn_constructor_kwargs=_replica_kwargs(args, job),
        batch_size=args.batch_size, batch_format="numpy", concurrency=count, **resources,
    )  # fmt: skip
    with progress_bar(len(todo), "img", args.quiet, desc=f"{job.command} (ray)") as bar:
        for row in ds.iter_rows():
            item = by_path[_resolved(row["path"])]
            if row["error"]:
                stats.fail(str(item.path), str(row["error"]))
            else:
                fields = json.loads(row["record"])
                fields.update(key=item.key, index=item.index, file_name=item.name, source=item.source)
                result = ImageResult(
                    **fields, mask_png=bytes(row["mask_png"]), overlay_jpg=bytes(row["overlay_jpg"]) or None
                )
                outputs.write_image(result)
                stats.done += 1
                stats.instances += len(result.annotations)
            bar.update(1)
            bar.set_postfix(instances=stats.instances, failed=stats.failed, refresh=False)


def _replica_kwargs(args: argparse.Namespace, job: ImageJob | VideoJob) -> dict:
    """What each replica loads: the same model (and tracker) as a local run."""
    return {"job": job, "model": args.model, "device": args.device, "dtype": args.dtype,
            "tracker_model": args.tracker_model}  # fmt: skip


def _resolved(path: str) -> str:
    path = str(path)
    return str(Path(path if path.startswith("/") else "/" + path).resolve())


def _processor(model: str) -> Sam3TrackerProcessor:
    """The checkpoint's image processor (its config's size, resample and normalisation)."""
    return Sam3TrackerProcessor.from_pretrained(resolve_name(model))


def run_videos(
    args: argparse.Namespace, job: VideoJob, todo: list[InputFile], outputs: RunOutputs, stats: RunStats
) -> None:
    """Track `job`'s objects through each video of `todo`, one video per replica call."""
    by_path = {str(item.path.resolve()): item for item in todo}
    count, resources = replica_resources(args.device, args.replicas)
    ds = ray.data.from_items([{"path": p} for p in by_path], override_num_blocks=len(by_path))
    ds = ds.map_batches(
        VideoReplica, fn_constructor_kwargs=_replica_kwargs(args, job),
        batch_size=1, batch_format="numpy", concurrency=count, **resources,
    )  # fmt: skip
    with progress_bar(len(todo), "video", args.quiet, desc="track (ray)") as bar:
        for row in ds.iter_rows():
            item = by_path[str(row["path"])]
            if row["error"]:
                stats.fail(str(item.path), str(row["error"]))
            else:
                fields = json.loads(row["record"])
                fields.update(key=item.key, index=item.index, file_name=item.name, source=item.source)
                result = VideoResult(**fields, mp4=bytes(row["mp4"]) or None)
                outputs.write_video(result)
                stats.done += 1
                stats.instances += len(result.objects)
            bar.update(1)


def run(args: argparse.Namespace, job: ImageJob | VideoJob, items: list[InputFile], outputs: RunOutputs,
        stats: RunStats) -> None:  # fmt: skip
    """`sam3 ... --ray`: connect, then run the pending inputs of `items` on the cluster."""
    todo = pending(items, outputs, stats)
    if not todo:
        return
    for name in (args.model, getattr(job, "video_model", None), args.tracker_model):
        if name in RANDOM_CHECKPOINTS:
            resolve_name(name)  # written once here, not raced by the replicas of this machine
    connect(args.ray)
    if isinstance(job, VideoJob):
        run_videos(args, job, todo, outputs, stats)
    else:
        run_images(args, job, todo, outputs, stats)
