"""`sam3`, the entry point: parse, find the inputs, run locally or on Ray, write the run's COCO file
and summary, and exit with a code that says how it went (see `arguments`)."""

from __future__ import annotations

import argparse
import sys

from .arguments import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NO_INPUTS,
    EXIT_USAGE,
    build_parser,
)
from .inputs import expand_images, expand_videos
from .jobs import ImageJob, VideoJob, load_sam, tracker_problem
from .outputs import RunOutputs
from .progress import RunStats
from .runners import run_images, run_videos

__all__ = ["main"]


def _error(message: str) -> None:
    print(f"sam3: error: {message}", file=sys.stderr)


RESUME_HINT = (
    "sam3: the inputs finished so far are kept, each with its record; free some space (or fix the "
    "folder) and run the same command with --resume to do the rest"
)


def _write_run_files(
    outputs: RunOutputs, job: ImageJob | VideoJob, items: list, stats: RunStats, args: argparse.Namespace
) -> bool:
    """annotations.json (images: what is done so far, also after an interrupt) and summary.json,
    each tried; False, after saying which could not be written and why (a full disk)."""
    run = {"command": args.command, "model": args.model, **_tracker_setting(args)}
    writes = [("summary.json", lambda: outputs.write_summary(stats, run))]
    if isinstance(job, ImageJob):
        writes.insert(0, ("annotations.json", lambda: outputs.write_coco(items, job.categories)))
    written = True
    for name, write in writes:
        try:
            write()
        except OSError as e:
            _error(f"cannot write {outputs.root / name}: {e.strerror or e}")
            written = False
    return written


def _tracker_setting(args: argparse.Namespace) -> dict:
    # Only when given: the settings of a run without it stay those earlier versions recorded, so
    # their output folders still resume
    return {} if args.tracker_model is None else {"tracker_model": args.tracker_model}


def main(argv: list[str] | None = None) -> int:
    """Run the `sam3` command line with `argv` (default: sys.argv[1:]); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:  # `sam3 export onnx ...` has its own parser
        from .export_command import export_main

        return export_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help / --version (0) or a bad argument (2, already explained)
        return int(e.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        job = VideoJob.from_args(args) if args.command == "track" else ImageJob.from_args(args)
    except ValueError as e:
        _error(str(e))
        return EXIT_USAGE

    expand = expand_videos if args.command == "track" else expand_images
    items, problems = expand(args.inputs, exclude=args.out)  # outputs are never inputs
    stats = RunStats(total=len(items))
    for problem in problems:
        stats.fail("input", problem)
    if not items:
        _error("nothing to do: no input matched " + " ".join(repr(p) for p in args.inputs))
        return EXIT_NO_INPUTS

    problem = tracker_problem(args.model, args.tracker_model, job)  # before the output folder is touched
    if problem is not None:
        _error(problem)
        return EXIT_USAGE

    outputs = RunOutputs(args.out)
    settings = {"model": args.model, "dtype": args.dtype, **_tracker_setting(args), **job.settings()}
    try:
        outputs.prepare(settings, resume=args.resume)
    except ValueError as e:
        _error(str(e))
        return EXIT_USAGE
    except OSError as e:
        _error(f"cannot write to the output folder {args.out!r}: {e}")
        return EXIT_ERROR

    unit = "videos" if args.command == "track" else "images"
    failed_write = False  # a write of an input's outputs failed: the run stopped
    try:
        if args.ray is not None:
            try:
                from . import on_ray  # noqa: PLC0415 (Ray is an optional extra: imported only when asked for)
            except ImportError as e:
                _error(f'--ray needs Ray ({e}); install it with: pip install "sam3-sdk[ray]"')
                return EXIT_ERROR
            on_ray.run(args, job, items, outputs, stats)
        else:
            try:
                sam = load_sam(
                    args.model, args.device, args.dtype, getattr(job, "video_model", None), args.tracker_model
                )
            except Exception as e:  # no weights, no access, no network, bad folder: say why, stop
                with_tracker = (
                    "" if args.tracker_model is None else f" with --tracker-model {args.tracker_model!r}"
                )
                _error(
                    f"the model {args.model!r}{with_tracker} could not be loaded: {e}\n"
                    "For an offline smoke run with random weights: --model tiny-random"
                )
                return EXIT_ERROR
            if isinstance(job, VideoJob):
                run_videos(sam, job, items, outputs, stats, quiet=args.quiet)
            else:
                run_images(sam, job, items, outputs, stats, args.batch_size, args.prefetch, args.quiet)
    except KeyboardInterrupt:
        stats.interrupted = True
    except OSError as e:
        _error(f"writing the outputs failed: {e}")
        failed_write = True
    finally:
        finished = _write_run_files(outputs, job, items, stats, args)
    if failed_write or not finished:
        print(RESUME_HINT, file=sys.stderr)
        return EXIT_ERROR
    if not args.quiet:
        print(stats.summary(unit), file=sys.stderr)
    if stats.interrupted:
        print("sam3: interrupted; run the same command with --resume to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    return stats.exit_code()
