"""Find by text in the Video tracking tab: phrases typed by the user find every instance on the
shown frame (SAM 3's detector); the instances join the tab's objects, with the phrase each came from.

The per-tab state keeps `phrases` (object id -> phrase) for the legend, the object picker and the
status lines; the session's results carry the same phrases into the exports."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr
from sam3_sdk.video import VideoFrameMasks, VideoSession

from .video_models import SAM3

if TYPE_CHECKING:
    from sam3_sdk import Sam3
    from sam3_sdk.concept_video import ConceptVideoTracker

TEXT_HELP = (
    "One or more phrases, comma-separated (e.g. `person, dog`): **Find** segments every instance on "
    "the shown frame, **Propagate** tracks them (and instances that appear later)."
)
TEXT_NEEDS_SAM3 = (
    "Finding objects by text needs the SAM 3 tracker (EdgeTAM has no text detector): pick SAM 3 "
    "above, or click on the objects."
)
MAX_PHRASES = 8  # each phrase is one detector pass per frame
DEFAULT_THRESHOLD = 0.7  # SAM 3's score for a detection to start a track (its config's new_det_thresh)


class TextDetection:
    """The detection threshold of one session's phrases. The session makes its text-prompted
    tracker when its first phrase is searched (`tracker`, passed to `VideoSession(concept=...)`),
    with the threshold set then: a detection scoring `threshold` starts a track, and detections
    are kept for matching from the lower of it and the checkpoint's setting."""

    def __init__(self, sam: Sam3) -> None:
        self.sam = sam
        self.threshold = DEFAULT_THRESHOLD
        self.used: float | None = None  # the threshold the session's tracker was made with

    def tracker(self) -> ConceptVideoTracker:
        base = self.sam.concept_video_predictor
        self.used = threshold = float(self.threshold)
        keep = min(base.model.config.score_threshold_detection, threshold)
        return base.with_settings(new_det_thresh=threshold, score_threshold_detection=keep)


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


def text_controls(choice: str) -> tuple[Any, Any, Any, str]:
    """Updates of the phrase box, the Find button, the threshold and the note under them for the
    tracker `choice`."""
    enabled = choice == SAM3
    return (
        gr.Textbox(interactive=enabled),
        gr.Button(interactive=enabled),
        gr.Slider(interactive=enabled),
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
        listed = "; ".join(f"object {o}, score {scores[o]:.2f}" for o in ids)
        noun = "instance" if len(ids) == 1 else "instances"
        hits.append(f"{len(ids)} {noun} of {phrase!r} ({listed})")
    if not hits:
        return (
            f"Nothing was found for {' or '.join(misses)} on frame {frame_idx}. Try another phrase or "
            "frame, or click on the object; Propagate also looks for the phrase on the other frames."
        )
    text = f"Found {'; '.join(hits)} on frame {frame_idx}"
    if misses:
        text += f"; nothing for {' or '.join(misses)}"
    return text + ". Propagate to track them, or click to fix or add objects."


def find(
    st: dict, text: str | None, frame_idx: int, threshold: float, reopen: Callable[[], VideoSession]
) -> str:
    """Add the phrases of `text` to the tab's session on `frame_idx`, found with detection
    `threshold`; returns the status line. A session whose phrases were searched with another
    threshold and that has no objects yet is reopened (`reopen`) to search with this one.

    Raises gr.Error (a sentence for the page) when the tracker has no text detector, the
    phrases are refused or the threshold changed while the session has objects."""
    if st["tracker"] != SAM3 or st.get("detect") is None:
        raise gr.Error(TEXT_NEEDS_SAM3)
    phrases = parse_phrases(text)
    detect: TextDetection = st["detect"]
    if detect.used is not None and abs(detect.used - threshold) > 1e-6:
        if st["session"].object_ids:
            raise gr.Error(
                f"This video's phrases were searched with detection threshold {detect.used:.2f}. To search "
                f"with {threshold:.2f}, press Reset (it clears the objects), then Find."
            )
        reopen()  # nothing found or clicked yet: nothing is lost
        detect = st["detect"]
    detect.threshold = threshold
    session: VideoSession = st["session"]
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


def add_clicked_object(
    session: VideoSession, st: dict, frame_idx: int, obj_id: int, points: list, labels: list
) -> tuple[VideoFrameMasks, int]:
    """Start a clicked object as `obj_id`, or, when the session already uses that id (an instance
    the detector admitted and dropped, a removed phrase object it still follows), as the id the
    session picks, the tab's clicks moving to it. Returns the frame's masks and the object's id."""
    try:
        return session.add_object(frame=frame_idx, points=points, labels=labels, obj_id=obj_id), obj_id
    except ValueError:
        if not getattr(session, "phrases", None):
            raise  # without phrases every id the tab picks is free: the clicks were refused
    taken = set(session.object_ids)
    result = session.add_object(frame=frame_idx, points=points, labels=labels)
    new_id = min(set(session.object_ids) - taken)
    st["clicks"][new_id] = st["clicks"].pop(obj_id)
    st["current"] = new_id
    return result, new_id
