"""`sam3 export onnx --model ID --out DIR`: the models as ONNX graphs plus `manifest.json`
(`sam3_sdk.export_onnx`). A part that cannot be exported is named with the reason."""

from __future__ import annotations

import argparse
import sys

from ..onnx_export import PARTS, OnnxExportRefused, export_onnx
from ..testing import resolve_name
from .arguments import EXIT_ERROR, EXIT_OK, EXIT_USAGE

__all__ = ["build_export_parser", "export_main"]


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sam3 export",
        description="Export the models as ONNX graphs (checked against PyTorch in onnxruntime), with a "
        "manifest.json naming each graph's inputs, outputs, shapes, dtypes and preprocessing.",
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser("onnx", help="ONNX graphs for onnxruntime (CPU, GPU, web)")
    onnx.add_argument(
        "--model", default="facebook/sam3",
        help="hub id or folder of a SAM 3 checkpoint (all parts) or an EdgeTAM one (image encoder and click "
        "decoders), or tiny-random / tiny-random-edgetam (default: %(default)s)",
    )  # fmt: skip
    onnx.add_argument("--out", required=True, help="folder for the .onnx files and manifest.json")
    onnx.add_argument(
        "--parts", nargs="+", choices=PARTS, default=None, metavar="PART",
        help=f"only these graphs ({', '.join(PARTS)}); default: every part the model has",
    )  # fmt: skip
    onnx.add_argument("--no-fp16", action="store_true", help="skip the *_fp16.onnx variants (fp16 weights)")
    return parser


def export_main(argv: list[str]) -> int:
    """Run `sam3 export ...` with the arguments after `export`; returns the exit code."""
    parser = build_export_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        manifest = export_onnx(resolve_name(args.model), args.out, parts=args.parts, fp16=not args.no_fp16)
    except OnnxExportRefused as e:
        print(f"sam3 export: refused: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as e:
        print(f"sam3 export: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for name, entry in manifest["graphs"].items():
        files = ", ".join(f for f in (entry["file"], entry.get("fp16_file")) if f)
        print(f"{name}: {files}")
    for refused in manifest["refused"]:
        print(f"not exported: {refused['part']}: {refused['reason']}", file=sys.stderr)
    print(f"manifest: {args.out}/manifest.json")
    return EXIT_OK
