""" "Find by text" in the Video tracking tab: phrases typed by the user find every instance on the
shown frame (SAM 3's detector); the instances join the tab's objects, with the phrase each came from.

The per-tab state keeps `phrases` (object id -> phrase) for the legend, the object picker and the
status lines; the session's results carry the same phrases into the exports."""

from __future__ import annotations

from typing import Any

import gradio as gr
from sam3_sdk.video import VideoFrameMasks, VideoSession

from .video_models import SAM3

TEXT_HELP = (
    "One or more phrases, comma-separated (e.g. `person, dog`): **Find** segments every instance on "
    "the shown frame, **Propagate** tracks them (and instances that appear later)."
)
TEXT_NEEDS_SAM3 = (
    "Finding objects by text needs the SAM 3 tracker (EdgeTAM has no text detector): pick SAM 3 "
    "above, or click on the objects."
)
MAX_PHRASES = 8  # each phrase is one detector pass per frame


def parse_phrases(text: str | None) -> list[str]:
    """The phrases of a comma-separated line, stripped, empty ones and repeats dropped.

    Raises gr.Error when none is left or there are more than MAX_PHRASES."""
    phrases: list[str] = []
    for part in (text or "").split(","):
        phrase = " ".join(part.split())
        if phrase and phrase.casefold() not in (p.casefold() for p in phrases):
            phrases.append(phrase)
    if not phrases:
        raise gr.Error("Type what to find, e.g. `person` or `person, dog` (comma-separated phrases).")
    if len(phrases) > MAX_PHRASES:
        raise gr.Error(f"{len(phrases)} phrases were typed; up to {MAX_PHRASES} at a time are accepted.")
    return phrases


def text_controls(choice: str) -> tuple[Any, Any, str]:
    """Updates of the phrase box, the Find button and the note under them for the tracker `choice`."""
    enabled = choice == SAM3
    return (
        gr.Textbox(interactive=enabled),
        gr.Button(interactive=enabled),
        TEXT_HELP if enabled else TEXT_NEEDS_SAM3,
    )


def remember_phrases(st: dict, result: VideoFrameMasks) -> None:
    """Record the phrase of each phrase-found object on a frame's result (click objects have none)."""
    st["phrases"].update({int(k): v for k, v in (getattr(result, "phrases", None) or {}).items()})


def object_label(obj_id: int, phrases: dict[int, str]) -> str:
    """ "Object 3" for a clicked object, "Object 3 · dog" for one found by the phrase "dog"."""
    phrase = phrases.get(obj_id)
    return f"Object {obj_id}" + (f" · {phrase}" if phrase else "")


def _same(a: str | None, b: str) -> bool:
    return a is not None and " ".join(a.split()).casefold() == b.casefold()


def found_message(result: VideoFrameMasks, phrases: list[str], frame_idx: int) -> str:
    """The status line after Find: per phrase, the objects found on the frame; zero is an answer."""
    found = getattr(result, "phrases", None) or {}
    scores = dict(zip(result.object_ids, result.scores))
    hits, misses = [], []
    for phrase in phrases:
        ids = [o for o in result.object_ids if _same(found.get(o), phrase)]
        if not ids:
            misses.append(repr(phrase))
            continue
        listed = ", ".join(f"{o} ({scores[o]:.2f})" for o in ids)
        noun = "instance" if len(ids) == 1 else "instances"
        hits.append(f"{len(ids)} {noun} of {phrase!r} (object{'s' if len(ids) > 1 else ''} {listed})")
    if not hits:
        return (
            f"Nothing was found for {' or '.join(misses)} on frame {frame_idx}. Try another phrase or "
            "frame, or click on the object; Propagate also looks for the phrase on the other frames."
        )
    text = f"Found {'; '.join(hits)} on frame {frame_idx}"
    if misses:
        text += f"; nothing for {' or '.join(misses)}"
    return text + ". Propagate to track them, or click to fix or add objects."


def find(session: VideoSession, st: dict, text: str | None, frame_idx: int) -> str:
    """Add the phrases of `text` to the tab's session on `frame_idx`; returns the status line.

    Raises gr.Error (a sentence for the page) when the tracker has no text detector or the
    phrases are refused."""
    if st["tracker"] != SAM3:
        raise gr.Error(TEXT_NEEDS_SAM3)
    phrases = parse_phrases(text)
    before = set(session.object_ids)
    try:
        result = session.add_text(phrases if len(phrases) > 1 else phrases[0], frame=frame_idx)
    except ValueError as e:
        raise gr.Error(str(e)) from None
    remember_phrases(st, result)
    keep_clicking_new(st, session, before)
    return found_message(result, phrases, frame_idx)


def keep_clicking_new(st: dict, session: VideoSession, before: set[int]) -> None:
    """When found instances took the id the next click was going to add, clicks go to a new id."""
    if st["current"] not in before and st["current"] in session.object_ids:
        st["current"] = next_object_id(st, session)


def next_object_id(st: dict, session: VideoSession | None) -> int:
    """An id no object of the tab uses (tracked, clicked or about to be clicked)."""
    used = set(session.object_ids if session else []) | set(st["clicks"]) | set(st["phrases"])
    return max(used | {st["current"]}) + 1
