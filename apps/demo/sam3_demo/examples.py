"""Example images for the tabs, drawn on first use (no binary files in the repo)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw

EXAMPLES_DIR = Path(os.environ.get("SAM3_CACHE", Path.home() / ".cache" / "sam3")) / "demo-examples"


def _scene(path: Path, size: tuple[int, int], shapes: list[tuple[str, tuple, tuple]]) -> Path:
    w, h = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(h):  # sky-to-ground gradient
        t = y / max(h - 1, 1)
        draw.line([(0, y), (w, y)], fill=(int(120 + 80 * t), int(170 + 40 * t), int(230 - 120 * t)))
    for kind, box, color in shapes:
        (draw.ellipse if kind == "ellipse" else draw.rectangle)(box, fill=color, outline=(20, 20, 20))
    image.save(path)
    return path


def example_images() -> list[str]:
    """Paths of the example images (written once into the cache folder)."""
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    specs = {
        "shapes.png": ((480, 360), [("ellipse", (60, 80, 220, 240), (230, 60, 40)),
                                   ("rectangle", (260, 150, 420, 300), (250, 210, 40)),
                                   ("ellipse", (300, 40, 380, 120), (40, 160, 80))]),
        "buses.png": ((512, 320), [("rectangle", (40, 150, 230, 250), (250, 200, 20)),
                                  ("rectangle", (280, 140, 480, 250), (250, 200, 20)),
                                  ("ellipse", (70, 235, 110, 275), (30, 30, 30)),
                                  ("ellipse", (180, 235, 220, 275), (30, 30, 30))]),
    }  # fmt: skip
    paths = []
    for name, (size, shapes) in specs.items():
        path = EXAMPLES_DIR / name
        if not path.exists():
            _scene(path, size, shapes)
        paths.append(str(path))
    return paths


def example_gallery(image, outputs, on_image, elem_id: str | None = None) -> None:
    """Example images under an image input; a click loads one like an upload (`on_image(picture)`)."""
    import gradio as gr

    gr.Examples(
        [[e] for e in example_images()],
        inputs=[image],
        outputs=outputs,
        fn=on_image,
        run_on_click=True,
        cache_examples=False,
        label="Examples",
        elem_id=elem_id,
    )
