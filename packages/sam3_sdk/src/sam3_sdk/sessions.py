"""Interactive sessions: the image's features are computed once; each new prompt only decodes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .image_predictor import ImagePredictor
from .images import ImageLike
from .prompts import check_box, check_points
from .results import ObjectMasks

__all__ = ["ImageSession"]


@dataclass
class _Prompt:
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None


class ImageSession:
    """Click-by-click segmentation of one object on one image.

    >>> session = sam.image_session(image)
    >>> session.add_point(120, 80)                  # positive click → ObjectMasks
    >>> session.add_point(200, 90, positive=False)  # refine
    >>> session.undo(); session.clear()

    Safe to share between threads: each call holds the session's lock, so two clicks at once are
    both kept (one after the other) and each result belongs to the prompts it was computed from.
    """

    def __init__(self, predictor: ImagePredictor, image: ImageLike) -> None:
        self.predictor = predictor
        self.features = predictor.set_image(image)  # the one backbone pass, now
        self._history: list[_Prompt] = [_Prompt()]
        self.result: ObjectMasks | None = None
        self._lock = threading.RLock()  # a call reads the last prompt and pushes the next one

    @property
    def image(self) -> np.ndarray:
        return self.features.image

    @property
    def prompt(self) -> _Prompt:
        return self._history[-1]

    def _push(self, prompt: _Prompt) -> ObjectMasks | None:
        self._history.append(prompt)
        return self._run()

    def _run(self, multimask: bool | None = None) -> ObjectMasks | None:
        with self._lock:
            p = self.prompt
            if not p.points and p.box is None:
                self.result = None
                return None
            self.result = self.predictor.predict(
                self.features,
                points=p.points or None,
                labels=p.labels or None,
                box=p.box,
                multimask=multimask,
            )
            return self.result

    def add_point(self, x: float, y: float, positive: bool = True) -> ObjectMasks:
        """Add a click at pixel (x, y) and re-run the decoder with all clicks so far."""
        check_points([(x, y)], [int(positive)], self.features.size)
        with self._lock:
            p = self.prompt
            point = (float(x), float(y))
            return self._push(_Prompt(p.points + [point], p.labels + [int(bool(positive))], p.box))

    def set_box(self, box: tuple[float, float, float, float] | None) -> ObjectMasks | None:
        """Set (or, with None, remove) the box prompt."""
        box_arr = check_box(box, self.features.size)
        with self._lock:
            p = self.prompt
            return self._push(
                _Prompt(list(p.points), list(p.labels), None if box_arr is None else tuple(box_arr.tolist()))
            )

    def undo(self) -> ObjectMasks | None:
        """Take back the last prompt change."""
        with self._lock:
            if len(self._history) > 1:
                self._history.pop()
            return self._run()

    def clear(self) -> None:
        with self._lock:
            self._history = [_Prompt()]
            self.result = None

    def predict(self, multimask: bool | None = None) -> ObjectMasks | None:
        """Decode the current prompts again, e.g. with another `multimask` choice."""
        return self._run(multimask)
