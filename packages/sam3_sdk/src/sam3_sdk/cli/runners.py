"""The local loops: images in batches (decoded ahead on a worker thread, written on another), videos
one after the other. A bad input is reported and skipped; finished inputs are never redone."""

from __future__ import annotations

import errno
from concurrent.futures import Future, ThreadPoolExecutor

from tqdm import tqdm

from ..model import Sam3
from .inputs import Decoded, InputFile, prefetch
from .jobs import ImageJob, VideoJob
from .outputs import ImageResult, RunOutputs
from .progress import RunStats, progress_bar

__all__ = ["pending", "run_images", "run_videos"]

# A video's failure with one of these is the output folder's, not the video's: the run stops.
_STOPS_THE_RUN = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def pending(items: list[InputFile], outputs: RunOutputs, stats: RunStats) -> list[InputFile]:
    """The inputs an earlier run did not finish (the others count as skipped). A record under the
    name of one of these (another input's of the same name, an edited file's) is removed now, before
    its files are replaced."""
    todo = [item for item in items if not outputs.is_done(item)]
    for item in todo:
        outputs.forget(item.key)
    stats.skipped += len(items) - len(todo)
    return todo


def run_images(
    sam: Sam3,
    job: ImageJob,
    items: list[InputFile],
    outputs: RunOutputs,
    stats: RunStats,
    batch_size: int = 4,
    prefetch_depth: int = 8,
    quiet: bool = False,
) -> None:
    """Run `job` on every pending image: `batch_size` images per backbone pass; up to
    `prefetch_depth` images decoded ahead of the model (0: decoded on this thread)."""
    todo = pending(items, outputs, stats)
    writes: list[tuple[Future, ImageResult]] = []
    with progress_bar(len(todo), "img", quiet, desc=job.command) as bar, ThreadPoolExecutor(1) as writer:

        def finish(batch: list[Decoded]) -> None:
            for decoded, result in zip(batch, job.run_batch(sam, batch)):
                if isinstance(result, ImageResult):
                    writes.append((writer.submit(outputs.write_image, result), result))
                else:
                    stats.fail(str(decoded.item.path), result)
            failed: OSError | None = None
            for write, result in writes:
                try:
                    write.result()
                except OSError as e:  # disk full, no permission: the run stops after this batch
                    failed = failed or e
                    continue
                stats.done += 1  # counted once its record is written, never before
                stats.instances += len(result.annotations)
            writes.clear()
            if failed is not None:
                raise failed
            bar.update(len(batch))
            bar.set_postfix(instances=stats.instances, failed=stats.failed, refresh=False)

        batch: list[Decoded] = []
        for decoded in prefetch(todo, sam.feature_store.processor, prefetch_depth):
            batch.append(decoded)
            if len(batch) == batch_size:
                finish(batch)
                batch = []
        if batch:
            finish(batch)


def run_videos(
    sam: Sam3,
    job: VideoJob,
    items: list[InputFile],
    outputs: RunOutputs,
    stats: RunStats,
    quiet: bool = False,
) -> None:
    """Track `job`'s objects through every pending video, one after the other."""
    todo = pending(items, outputs, stats)
    with progress_bar(len(todo), "video", quiet, desc="track") as bar:
        for item in todo:
            frames = tqdm(total=0, unit="frame", desc=item.name, leave=False, disable=quiet, position=1)

            def progress(done: int, total: int, frames: tqdm = frames) -> None:
                frames.total = total
                frames.update(done - frames.n)

            mp4 = outputs.video_path(item.key, ".mp4") if job.mp4 else None
            try:
                result = job.run(sam, item, mp4, progress=progress)
            except OSError as e:
                if mp4 is not None:
                    mp4.unlink(missing_ok=True)  # a half-written MP4 has no record
                if e.errno in _STOPS_THE_RUN:
                    raise
                stats.fail(str(item.path), f"{type(e).__name__}: {e}")
            except Exception as e:  # unreadable video, prompt outside the frame, ...: reported, skipped
                if mp4 is not None:
                    mp4.unlink(missing_ok=True)
                stats.fail(str(item.path), f"{type(e).__name__}: {e}")
            else:
                outputs.write_video(result)
                stats.done += 1
                stats.instances += len(result.objects)
            finally:
                frames.close()
            bar.update(1)
            bar.set_postfix(objects=stats.instances, failed=stats.failed, refresh=False)
