"""The `sam3` command line's arguments: the parser, the prompt specs and the exit codes."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import __version__

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_INPUTS",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "parse_box",
    "parse_frame_box",
    "parse_frame_point",
    "parse_point",
]

# Exit codes that scripts can test (documented in the README and in `sam3 --help`).
EXIT_OK = 0  # every input was processed (or was already done, with --resume)
EXIT_ERROR = 1  # the run could not start or stopped: model not loadable, output folder not writable
EXIT_USAGE = 2  # bad command line or prompt, or a feature that is not available yet
EXIT_INPUT_FAILED = 3  # the run finished, but some inputs failed (each reported, then skipped)
EXIT_NO_INPUTS = 4  # nothing matched the input paths
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C; what was done is kept (rerun with --resume)

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    every input was processed (or already done, with --resume)
  {EXIT_ERROR}    the run could not start or stopped (model not loadable, output not writable)
  {EXIT_USAGE}    bad command line or prompt, or a feature not available yet
  {EXIT_INPUT_FAILED}    finished, but some inputs failed (reported and skipped)
  {EXIT_NO_INPUTS}    nothing matched the input paths
  {EXIT_INTERRUPTED}  interrupted; rerun with --resume to finish
"""

DTYPES = ("float32", "bfloat16", "float16")


def _numbers(text: str, count: int, what: str, example: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(v == v and abs(v) != float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"{what} {text!r}: expected {count} numbers like {example}")
    return values


def _polarity(text: str, what: str, example: str) -> tuple[str, int]:
    """'x,y' / 'x,y:neg' / 'x,y:pos' → ('x,y', label) with label 1 (positive) or 0 (negative)."""
    body, _, flag = text.partition(":")
    if flag not in ("", "pos", "neg"):
        raise argparse.ArgumentTypeError(
            f"{what} {text!r}: the suffix must be ':pos' or ':neg', like {example}"
        )
    return body, 0 if flag == "neg" else 1


def parse_point(text: str) -> tuple[float, float, int]:
    """'x,y[:neg]' → (x, y, label): pixels of the image, label 1 positive / 0 negative."""
    body, label = _polarity(text, "point", "120,80:neg")
    x, y = _numbers(body, 2, "point", "120,80 or 120,80:neg")
    return x, y, label


def parse_box(text: str) -> tuple[float, float, float, float, int]:
    """'x1,y1,x2,y2[:neg]' → (x1, y1, x2, y2, label): pixels, label 1 (example) / 0 (counter-example)."""
    body, label = _polarity(text, "box", "10,20,200,180:neg")
    x1, y1, x2, y2 = _numbers(body, 4, "box", "10,20,200,180")
    if not (x2 > x1 and y2 > y1):
        raise argparse.ArgumentTypeError(f"box {text!r}: expected x1 < x2 and y1 < y2 (x1,y1,x2,y2 pixels)")
    return x1, y1, x2, y2, label


def _frame(text: str, what: str, example: str) -> tuple[int, str]:
    frame, sep, rest = text.partition(":")
    if not sep or not frame.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"{what} {text!r}: expected FRAME:... with a frame number, like {example}"
        )
    return int(frame), rest


def parse_frame_point(text: str) -> tuple[int, float, float, int]:
    """'FRAME:x,y[:neg]' → (frame, x, y, label)."""
    frame, rest = _frame(text, "point", "0:120,80")
    x, y, label = parse_point(rest)
    return frame, x, y, label


def parse_frame_box(text: str) -> tuple[int, float, float, float, float]:
    """'FRAME:x1,y1,x2,y2' → (frame, x1, y1, x2, y2)."""
    frame, rest = _frame(text, "box", "0:10,20,200,180")
    x1, y1, x2, y2, label = parse_box(rest)
    if label == 0:
        raise argparse.ArgumentTypeError(f"box {text!r}: a tracked object's box cannot be negative")
    return frame, x1, y1, x2, y2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _unit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


class _OrderedPrompt(argparse.Action):
    """Keeps --obj / --point / --box of `sam3 track` in command-line order: each --obj starts a new
    object and the prompts after it belong to it."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        items = getattr(namespace, "video_prompts", None) or []
        items.append((self.dest, values))
        namespace.video_prompts = items


def _common(parser: argparse.ArgumentParser, inputs_help: str) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        default=os.environ.get("SAM3_MODEL") or "facebook/sam3",
        help="hub id (a SAM 3 or SAM3-LiteText checkpoint), local folder, or tiny-random / "
        "tiny-random-litetext (offline, random weights); default $SAM3_MODEL or facebook/sam3",
    )
    model.add_argument(
        "--tracker-model",
        default=os.environ.get("SAM3_TRACKER_MODEL") or None,
        metavar="MODEL",
        help="with a SAM3-LiteText --model (no tracker of its own): the SAM 3 checkpoint whose tracker "
        "serves clicks and boxes (object, everything) and video tracking (track), e.g. facebook/sam3, "
        "or tiny-random (offline); default $SAM3_TRACKER_MODEL",
    )
    model.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    model.add_argument("--dtype", choices=DTYPES, default="float32", help="weights and activations")
    model.add_argument("--batch-size", type=_positive_int, default=4, help="images per backbone pass")
    run = parser.add_argument_group("run")
    run.add_argument("--resume", action="store_true", help="skip the inputs an earlier run finished")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary; errors only")
    run.add_argument(
        "--prefetch",
        type=_non_negative_int,
        default=8,
        metavar="N",
        help="images decoded and preprocessed ahead of the model on a worker thread (0: none)",
    )
    run.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (ADDRESS, or RAY_ADDRESS / a local instance when omitted); "
        'needs pip install "sam3-sdk[ray]"',
    )
    run.add_argument(
        "--replicas", type=_positive_int, default=None, help="model replicas on Ray (default: one per GPU)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The `sam3` parser with its four commands (concept, object, everything, track)."""
    parser = argparse.ArgumentParser(
        prog="sam3",
        description="SAM 3 from the command line: segment concepts, objects or everything in images; "
        "track objects through videos.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sam3-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    images_help = "image files, folders (searched recursively) or glob patterns"
    fmt = argparse.RawDescriptionHelpFormatter

    concept = commands.add_parser(
        "concept", help="every instance of a concept (text and/or example boxes)", epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )  # fmt: skip
    _common(concept, images_help)
    concept.add_argument(
        "--text", action="append", default=[], help='a noun phrase, e.g. "yellow school bus" (repeatable)'
    )
    concept.add_argument(
        "--box", action="append", type=parse_box, default=[], metavar="x1,y1,x2,y2[:neg]",
        help="an example box in pixels; :neg marks a counter-example (repeatable)",
    )  # fmt: skip
    concept.add_argument("--threshold", type=_unit, default=0.5, help="minimum instance score (default 0.5)")
    concept.add_argument("--overlay", action="store_true", help="also write overlays/<name>.jpg")

    obj = commands.add_parser(
        "object", help="one object from clicks and/or a box", epilog=EXIT_CODES_HELP, formatter_class=fmt
    )
    _common(obj, images_help)
    obj.add_argument(
        "--point", action="append", type=parse_point, default=[], metavar="x,y[:neg]",
        help="a click in pixels; :neg marks a negative click (repeatable)",
    )  # fmt: skip
    obj.add_argument("--box", type=parse_box, default=None, metavar="x1,y1,x2,y2", help="a box in pixels")
    obj.add_argument(
        "--threshold",
        type=_unit,
        default=0.0,
        help="drop the mask when its predicted IoU is lower (default 0)",
    )
    obj.add_argument("--overlay", action="store_true", help="also write overlays/<name>.jpg")

    everything = commands.add_parser(
        "everything",
        help="every object (automatic mask generation)",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    _common(everything, images_help)
    everything.add_argument("--points-per-side", type=_positive_int, default=32, help="grid of N×N clicks")
    everything.add_argument(
        "--points-per-batch", type=_positive_int, default=64, help="clicks decoded at once"
    )
    everything.add_argument(
        "--threshold", type=_unit, default=0.88, help="minimum predicted IoU of a mask (default 0.88)"
    )
    everything.add_argument(
        "--stability-threshold", type=_unit, default=0.95, help="minimum stability score (default 0.95)"
    )
    everything.add_argument(
        "--min-area", type=_non_negative_int, default=0, help="remove holes/islands below"
    )
    everything.add_argument("--overlay", action="store_true", help="also write overlays/<name>.jpg")

    track = commands.add_parser(
        "track",
        help="track objects through videos",
        description="Track objects through videos: every instance of phrases (--text), or objects you "
        "prompt: each --obj ID starts an object; the --point / --box after it prompt that object (object 1 "
        "when no --obj comes first). An object's prompts are on one frame.",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    _common(track, "video files, folders (of videos, or of frames) or glob patterns")
    track.add_argument(
        "--text", action="append", default=[], metavar="PHRASE",
        help='find and track every instance of a noun phrase, e.g. "person" (repeatable; each object '
        "records the phrase that found it); not with --point / --box",
    )  # fmt: skip
    track.add_argument(
        "--threshold", type=_unit, default=None,
        help="with --text: the detection score an instance needs to start a track (the model's "
        "new_det_thresh; detections are kept from the lower of it and score_threshold_detection). "
        "Default: the checkpoint's (0.7 for facebook/sam3)",
    )  # fmt: skip
    track.add_argument(
        "--video-model", default=None, metavar="MODEL",
        help="track clicks with another video checkpoint, e.g. yonigozlan/edgetam-video-1 (EdgeTAM) or "
        "tiny-random-edgetam; not with --text",
    )  # fmt: skip
    track.add_argument(
        "--point", dest="point", action=_OrderedPrompt, type=parse_frame_point, metavar="FRAME:x,y[:neg]",
        help="a click on a frame (repeatable)",
    )  # fmt: skip
    track.add_argument(
        "--box", dest="box", action=_OrderedPrompt, type=parse_frame_box, metavar="FRAME:x1,y1,x2,y2",
        help="a box on a frame",
    )  # fmt: skip
    track.add_argument("--obj", dest="obj", action=_OrderedPrompt, type=_positive_int, metavar="ID")
    track.add_argument("--direction", choices=("forward", "backward", "both"), default="forward")
    track.add_argument("--no-mp4", action="store_true", help="skip the annotated MP4")
    track.set_defaults(video_prompts=[])
    # `sam3 export onnx ...` is parsed by cli/export_command.py (main hands it over); listed for --help
    commands.add_parser(
        "export", help="export the models as ONNX graphs: sam3 export onnx --help", add_help=False
    )
    return parser
