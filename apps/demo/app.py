"""Entry point of the SAM 3 demo, locally (`make demo`) and as a Hugging Face Space.

    python apps/demo/app.py [--model facebook/sam3 | yonigozlan/sam3-litetext-s0 | PATH | tiny-random
                            | tiny-random-litetext] [--tracker-model facebook/sam3 | PATH | tiny-random]
                            [--host 127.0.0.1] [--port 7860]
                            [--video-model yonigozlan/edgetam-video-1 | PATH | tiny-random-edgetam]

The model also comes from the SAM3_MODEL environment variable (default facebook/sam3); on a Hugging
Face Space set it as a variable, and HF_TOKEN as a secret. The model loads once per process.
A SAM3-LiteText model (small text encoder, no tracker) segments concepts; its clicks and video use
SAM 3's tracker from `--tracker-model` (or SAM3_TRACKER_MODEL), e.g. facebook/sam3.
The Video tracking tab tracks with SAM 3 or EdgeTAM; EdgeTAM's checkpoint is `--video-model` (or
SAM3_VIDEO_MODEL, default yonigozlan/edgetam-video-1), loaded when a video is first tracked with it.
`--max-concurrency N` (or SAM3_MAX_CONCURRENCY) bounds the model calls that run at once; later
requests wait in the queue and see their position.
The Point prompting tab decodes clicks in the browser (onnxruntime-web, vendored by `make install`);
SAM3_BROWSER_DECODE=0 starts its setting off (see sam3_demo/browser_decode.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from PIL import Image  # noqa: E402
from sam3_core.allocator import limit_arenas  # noqa: E402
from sam3_demo import browser_decode, video_order  # noqa: E402
from sam3_demo.loading import load_model  # noqa: E402
from sam3_demo.ui import CSS, build_app  # noqa: E402
from sam3_demo.uploads import MAX_UPLOAD  # noqa: E402
from sam3_demo.video_models import DEFAULT_EDGETAM, VideoModels  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SAM 3 demo")
    parser.add_argument(
        "--model",
        default=os.environ.get("SAM3_MODEL"),
        help="hub id (SAM 3 or SAM3-LiteText), folder, tiny-random or tiny-random-litetext",
    )
    parser.add_argument(
        "--tracker-model",
        default=os.environ.get("SAM3_TRACKER_MODEL"),
        help="for a SAM3-LiteText --model: the SAM 3 checkpoint whose tracker serves clicks and video "
        "(e.g. facebook/sam3; default $SAM3_TRACKER_MODEL, else concept segmentation only)",
    )
    parser.add_argument(
        "--video-model",
        default=os.environ.get("SAM3_VIDEO_MODEL"),
        help=f"EdgeTAM checkpoint of the Video tracking tab: hub id, folder, or tiny-random-edgetam "
        f"(default $SAM3_VIDEO_MODEL, else {DEFAULT_EDGETAM})",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=int(os.environ.get("SAM3_MAX_CONCURRENCY", "1")),
        help="model calls that run at once (default 1); the others wait in the queue",
    )
    args = parser.parse_args(argv)
    if args.max_concurrency < 1:
        parser.error(f"--max-concurrency must be at least 1, got {args.max_concurrency}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    limit_arenas(2)  # Gradio's handler threads share two heaps, trimmed when tabs close
    slot = load_model(args.model, device=args.device, tracker_model=args.tracker_model)
    if slot.error:
        print(
            f"\nThe model could not be loaded: {slot.error}\n"
            "The page will say so. For an offline smoke run: --model tiny-random\n",
            file=sys.stderr,
            flush=True,
        )
    # Gradio opens each uploaded image (its header) before our handler runs; PIL's own guard would
    # fail that open with a bare error. read_image refuses large images from the header with a message.
    Image.MAX_IMAGE_PIXELS = None
    app = build_app(
        slot, VideoModels(slot, args.video_model, device=args.device), max_concurrency=args.max_concurrency
    )
    app.queue(default_concurrency_limit=args.max_concurrency).launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=MAX_UPLOAD,
        show_error=True,
        css=CSS,
        # the Point tab's in-browser click decoding (onnxruntime-web); the video tab's click guard
        head=browser_decode.head() + "\n" + video_order.HEAD,
    )


if __name__ == "__main__":
    main()
