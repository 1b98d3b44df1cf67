"""What the Video tracking tab shows of its state: the frame with the objects drawn in, the
legend and the object picker's choices."""

from __future__ import annotations

from PIL import Image, ImageDraw
from sam3_sdk.video import VideoSession, object_color

from .video_text import object_label


def object_ids(st: dict) -> list[int]:
    """The tab's objects: the session's and the one the next click goes to."""
    session: VideoSession | None = st["session"]
    return sorted(set(session.object_ids if session else []) | {st["current"]})


def legend_html(st: dict) -> str:
    """Each object's colour swatch and label; the one the next click goes to is marked."""
    items = []
    for obj_id in object_ids(st):
        r, g, b = object_color(obj_id)
        mark = " ◀ clicking" if obj_id == st["current"] else ""
        items.append(
            f'<span style="display:inline-block;width:12px;height:12px;background:rgb({r},{g},{b})"></span> '
            f"{object_label(obj_id, st['phrases'])}{mark}"
        )
    return "&nbsp;&nbsp; ".join(items)


DISPLAY_SIDE = 960  # a small video's frames are shown enlarged to about this many pixels on the long side


def display_scale(session: VideoSession) -> int:
    """How many times the frame picture is enlarged (a whole number, 1 for videos of DISPLAY_SIDE px or
    more). The page shows a picture smaller than its box at its own size, and Gradio maps a click on
    an image shown larger than its pixels wrongly: small videos are enlarged here instead, and a
    click's coordinates divided back."""
    return max(1, DISPLAY_SIDE // max(session.size))


def frame_picture(st: dict, frame_idx: int) -> Image.Image:
    """The frame with each object's mask, id and clicks drawn in its colour, enlarged `display_scale` times."""
    session: VideoSession = st["session"]
    rgb = session.frame(frame_idx)
    result = session.results.get(frame_idx)
    canvas = result.overlay(rgb) if result is not None and len(result) else Image.fromarray(rgb)
    s = display_scale(session)
    if s > 1:
        canvas = canvas.resize((canvas.width * s, canvas.height * s), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    if result is not None:  # each object's id at its box's corner, in its colour
        for obj_id, (x1, y1, x2, _) in zip(result.object_ids, result.boxes):
            if x2 > x1:
                draw.text((x1 * s + 2, y1 * s + 1), str(obj_id), fill=object_color(obj_id), stroke_width=1,
                          stroke_fill=(0, 0, 0))  # fmt: skip
    radius = max(3, round(min(canvas.size) / 60))
    for obj_id, per_frame in st["clicks"].items():
        for x, y, label in per_frame.get(frame_idx, []):
            color = (40, 220, 60) if label == 1 else (230, 40, 40)
            x, y = (x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5  # the pixel's centre on the enlarged picture
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius), fill=color, outline=object_color(obj_id)
            )
    return canvas


def object_choices(st: dict) -> list[tuple[str, str]]:
    """(label, value) pairs: the label names the phrase an object was found by."""
    return [(object_label(i, st["phrases"]), f"Object {i}") for i in object_ids(st)]
