"""`Sam3VideoInferenceSession`: the state of one video tracked by phrases (`Sam3VideoModel`).

It is the video tracker's session (frames, per-object prompts and outputs, feature cache; see
`session.py`) plus what text-prompted tracking adds:

- the phrases (`prompts`: prompt id -> text) with their tokens and, once computed, their text
  features, and the phrase each object came from (`obj_id_to_prompt_id`);
- the bookkeeping of the detection-to-track logic (`concept_tracker.py`): each object's detection
  score, per-frame tracker scores, last occluded frame, first frame, unmatched frames, keep-alive
  counter, duplicate-overlap counts, and the objects removed or suppressed.

Object ids are assigned by the model (`first_obj_id`, then up, in order of detection) and never
reused.

Interactive use (an editor's session, e.g. the SDK's `VideoSession`) adds, all inert on a session
of phrases alone, whose results are then exactly the reference's:

- `detection_cache_bytes`: each frame's detections are cached per phrase (bounded in bytes), so
  propagating again does not run the detector's heads on frames already seen with those phrases;
- `add_clicked_object`: objects prompted by clicks, boxes or masks share the id space with the
  phrases' objects (a clicked object has a prompt id of its own, so no phrase's detection is
  matched with it, and a detection over it is taken to be it);
- `refine`, `hide_object`, `remove_object`, `forget_text`: correct an object on a frame,
  hide a phrase object (it stays tracked, so the detector does not find it again), drop an
  object, take a phrase back;
- protected objects (clicked, refined, or found before a repeated propagation:
  `protect_found_objects`) are never removed or hidden by the hot-start rules meant for fresh
  detections.

Only these methods change the state; the model reads it and commits each frame through
`commit_frame`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from torch import Tensor

from ..scalars import as_int, is_int
from .concept_detections import DetectionCache, Detections
from .session import Sam3TrackerVideoInferenceSession

__all__ = ["Sam3VideoInferenceSession"]

REMOVED_SCORE = -1e4  # the score a removed object keeps in the score tables
CLICKED_SCORE = 1.0  # the detection score of a clicked object (it was not detected)


class Sam3VideoInferenceSession(Sam3TrackerVideoInferenceSession):
    """Frames, phrases, tracked objects and caches of one text-prompted video session.

    Args: as `Sam3TrackerVideoInferenceSession` (video (T, 3, S, S) or None to stream,
        video_height / video_width of the original video, the devices, dtype,
        max_vision_features_cache_size), plus:
        detection_cache_bytes: bytes of detections kept per session for frames seen again
            (0, the default: none).
        first_obj_id: the id of the first object found (0 as the reference; 1 keeps 0 free, e.g.
            for the background of index masks).
    Created by `Sam3VideoProcessor.init_video_session`.
    """

    def __init__(
        self, *args: Any, detection_cache_bytes: int = 0, first_obj_id: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if not is_int(first_obj_id) or first_obj_id < 0:
            raise ValueError(f"first_obj_id must be an int >= 0, got {first_obj_id!r}")
        first_obj_id = self.first_obj_id = int(first_obj_id)
        # phrases: prompt id (0, 1, ... in order of addition) -> text, (1, L) token ids and mask,
        # and the detector's text features once computed; phrases taken back (ids never reused)
        self.prompts: dict[int, str] = {}
        self.prompt_input_ids: dict[int, Tensor] = {}
        self.prompt_attention_masks: dict[int, Tensor] = {}
        self.prompt_embeddings: dict[int, object] = {}
        self.obj_id_to_prompt_id: dict[int, int] = {}
        self.inactive_prompt_ids: set[int] = set()
        # frame -> prompt id -> `Detections`, bounded in bytes (empty unless detection_cache_bytes)
        self.detections = DetectionCache(detection_cache_bytes)

        # per object: detection score when it was found (-1e4 once removed), sigmoid tracker score
        # per frame (frame -> obj_id -> score), last frame it was occluded or suppressed ((1,) long)
        self.obj_id_to_score: dict[int, float] = {}
        self.obj_id_to_tracker_score_frame_wise: defaultdict[int, dict[int, float]] = defaultdict(dict)
        self.obj_id_to_last_occluded: dict[int, Tensor] = {}
        self.max_obj_id = first_obj_id - 1  # the largest object id assigned so far

        # hot-start bookkeeping: first frame of each object, the frames where it matched no
        # detection, its keep-alive counter, (earlier id, later id) -> frames both matched one
        # detection, the objects removed, and per frame the objects hidden without removal
        self.obj_first_frame_idx: dict[int, int] = {}
        self.unmatched_frame_inds: defaultdict[int, list[int]] = defaultdict(list)
        self.trk_keep_alive: dict[int, int] = {}
        self.overlap_pair_to_frame_inds: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self.removed_obj_ids: set[int] = set()
        self.suppressed_obj_ids: defaultdict[int, set[int]] = defaultdict(set)
        # objects removed by hot-start during `propagate_in_video_iterator`: hidden from every
        # frame's post-processed output, including frames yielded before they were removed
        self.hotstart_removed_obj_ids: set[int] = set()
        self.visited_frames: set[int] = set()  # frames the detection-to-track logic has run on

        # interactive additions (module doc): objects from clicks, objects never removed or
        # hidden by the hot-start rules, phrase objects still tracked but never shown
        self.clicked_obj_ids: set[int] = set()
        self.protected_obj_ids: set[int] = set()
        self.hidden_obj_ids: set[int] = set()

    # -----------------------------------------------------------------------------------------
    # Phrases
    # -----------------------------------------------------------------------------------------

    def add_prompt(self, prompt_text: str) -> int:
        """Register a phrase and return its prompt id (the existing id for a repeated phrase; a
        phrase taken back with `forget_text` comes back)."""
        if not isinstance(prompt_text, str) or not prompt_text.strip():
            raise ValueError(f"a text prompt must be a non-empty string, got {prompt_text!r}")
        for prompt_id, text in self.prompts.items():
            if text == prompt_text:
                self.inactive_prompt_ids.discard(prompt_id)
                return prompt_id
        prompt_id = len(self.prompts)
        self.prompts[prompt_id] = prompt_text
        return prompt_id

    def set_prompt_tokens(self, prompt_id: int, input_ids: Tensor, attention_mask: Tensor) -> None:
        """A phrase's (1, L) token ids and attention mask (moved to the inference device)."""
        self.prompt_input_ids[prompt_id] = input_ids.to(self.inference_device)
        self.prompt_attention_masks[prompt_id] = attention_mask.to(self.inference_device)

    @property
    def active_prompt_ids(self) -> list[int]:
        """The prompt ids of the phrases searched for, in order (those taken back left out)."""
        return [i for i in self.prompts if i not in self.inactive_prompt_ids]

    @property
    def active_phrases(self) -> list[str]:
        """The phrases searched for, in order of addition."""
        return [self.prompts[i] for i in self.active_prompt_ids]

    def phrase_of(self, obj_id: int) -> str | None:
        """The phrase an object was found by (None for clicked or unknown objects)."""
        prompt_id = self.obj_id_to_prompt_id.get(obj_id)
        return None if prompt_id is None or obj_id in self.clicked_obj_ids else self.prompts.get(prompt_id)

    def text_features(self, prompt_id: int, encode: Any) -> Any:
        """A phrase's text features, computed once by `encode(input_ids, attention_mask)`."""
        if prompt_id not in self.prompt_embeddings:
            self.prompt_embeddings[prompt_id] = encode(
                self.prompt_input_ids[prompt_id], self.prompt_attention_masks[prompt_id]
            )
        return self.prompt_embeddings[prompt_id]

    def forget_text(self, phrase: str) -> list[int]:
        """Take a phrase back: the objects it found are removed (hidden and refined ones too), the
        detector no longer looks for it and its cached detections go. Returns the removed ids."""
        prompt_id = next((i for i, p in self.prompts.items() if p == phrase), None)
        if prompt_id is None or prompt_id in self.inactive_prompt_ids:
            raise ValueError(f"unknown phrase {phrase!r}; the session's phrases are {self.active_phrases}")
        gone = [o for o in self.obj_ids if self.obj_id_to_prompt_id.get(o) == prompt_id]
        for obj_id in gone:
            self.remove_object(obj_id)
        self.inactive_prompt_ids.add(prompt_id)
        self.detections.forget_prompt(prompt_id)
        return gone

    # -----------------------------------------------------------------------------------------
    # Objects (interactive additions; see the module doc)
    # -----------------------------------------------------------------------------------------

    def next_obj_id(self) -> int:
        """The next id free for a new object (above every id given so far)."""
        return max([*self.obj_ids, self.max_obj_id, self.first_obj_id - 1]) + 1

    def obj_id_used(self, obj_id: int) -> bool:
        """Whether `obj_id` is tracked or was given to an object found earlier (never reused)."""
        return obj_id in self._obj_id_to_idx or obj_id in self.obj_id_to_score

    def add_clicked_object(self, obj_id: int) -> int:
        """Register an object prompted by clicks, a box or a mask (the prompts themselves go in as
        for the tracker's session) beside the phrases' objects. Returns its index.

        Its prompt id is one of its own (-1 - obj_id), so no phrase's detection is matched with it;
        it is protected, and the phrases' next ids continue above it."""
        obj_id = as_int("obj_id", obj_id)
        obj_idx = self.obj_id_to_idx(obj_id)
        self.clicked_obj_ids.add(obj_id)
        self.protected_obj_ids.add(obj_id)
        self.obj_id_to_prompt_id[obj_id] = -1 - obj_id
        self.obj_id_to_score.setdefault(obj_id, CLICKED_SCORE)
        self.max_obj_id = max(self.max_obj_id, obj_id)
        return obj_idx

    def refine(self, obj_id: int, frame_idx: int) -> None:
        """Prepare an object for prompts that correct it on `frame_idx` (added next, as for the
        tracker's session).

        A phrase object's detection mask on that frame gives way to the prompts, the frame
        becomes a prompted one, and the object is protected from then on; it keeps its phrase. A
        clicked object's prompts are its own: the new ones join or replace them as given."""
        obj_id = as_int("obj_id", obj_id)
        if obj_id in self.clicked_obj_ids:
            return
        super().refine(obj_id, frame_idx)
        self.protected_obj_ids.add(obj_id)

    def hide_object(self, obj_id: int) -> None:
        """Hide a phrase object for good: it stays tracked (so the detector does not find it again
        while it is followed) and is left out of every output (`hidden_obj_ids`)."""
        obj_id = as_int("obj_id", obj_id)
        self.check_obj_id(obj_id)
        if obj_id in self.clicked_obj_ids:
            raise ValueError(f"object {obj_id} was added by clicks; remove it with remove_object")
        self.hidden_obj_ids.add(obj_id)

    def remove_object(self, obj_id: int, strict: bool = False) -> None:
        """Forget an object (its prompts, outputs and phrase); unknown ids are ignored unless
        `strict`."""
        if obj_id not in self._obj_id_to_idx:
            if strict:
                raise ValueError(f"unknown object id {obj_id!r}; this session tracks objects {self.obj_ids}")
            return
        super().remove_object(obj_id)
        self.obj_id_to_prompt_id.pop(obj_id, None)
        for ids in (self.clicked_obj_ids, self.protected_obj_ids, self.hidden_obj_ids):
            ids.discard(obj_id)

    def protect_found_objects(self) -> None:
        """Before propagating again over frames already processed: every object found so far
        stays (the hot-start rules no longer remove or hide it), and their records are cleared."""
        self.protected_obj_ids |= set(self.obj_ids)
        self.unmatched_frame_inds.clear()
        self.overlap_pair_to_frame_inds.clear()

    def visited_any(self, frames: Iterable[int]) -> bool:
        """Whether the detection-to-track logic has already run on any of `frames`."""
        return not self.visited_frames.isdisjoint(frames)

    # -----------------------------------------------------------------------------------------
    # The model's side: cached detections, and committing a frame
    # -----------------------------------------------------------------------------------------

    def cached_detections(self, frame_idx: int, prompt_id: int) -> Detections | None:
        return self.detections.get(frame_idx, prompt_id)

    def cache_detections(self, frame_idx: int, prompt_id: int, dets: Detections) -> None:
        self.detections.put(frame_idx, prompt_id, dets)

    def add_found_objects(self, frame_idx: int, obj_ids: list[int], masks: Tensor) -> None:
        """Prompt objects the detector found on a frame with their (K, 4h, 4w) bool detection
        masks; the model segments them next (`obj_with_new_inputs`)."""
        for obj_id, mask in zip(obj_ids, masks):
            self.add_mask_inputs(self.obj_id_to_idx(obj_id), frame_idx, mask[None, None])
        self.mark_new_inputs(obj_ids)

    def clicked_obj_indices(self) -> list[int]:
        """The indices of the clicked objects, in index order."""
        return [i for i, o in enumerate(self.obj_ids) if o in self.clicked_obj_ids]

    def commit_frame(
        self,
        frame_idx: int,
        new_obj_ids: list[int],
        new_scores: list[float],
        removed: set[int],
        last_occluded: dict[int, Tensor],
    ) -> dict[int, float]:
        """Record a frame's decisions: the new objects' detection scores, the removed objects'
        score (`REMOVED_SCORE`), every object's last-occluded frame. Returns the frame's tracker
        scores (object id -> probability, filled in by the model) with the new and removed ones."""
        frame_scores = self.obj_id_to_tracker_score_frame_wise[frame_idx]
        self.obj_id_to_score.update(zip(new_obj_ids, new_scores))
        frame_scores.update(zip(new_obj_ids, new_scores))
        if new_obj_ids:
            self.max_obj_id = max(self.max_obj_id, max(new_obj_ids))
        last_occluded = dict(last_occluded)
        for obj_id in removed:
            self.obj_id_to_score[obj_id] = REMOVED_SCORE
            frame_scores[obj_id] = REMOVED_SCORE
            last_occluded.pop(obj_id, None)
        self.obj_id_to_last_occluded = last_occluded
        self.visited_frames.add(frame_idx)
        return frame_scores

    def note_hotstart_removed(self, obj_ids: Iterable[int]) -> None:
        """Objects removed by hot-start while a propagation holds outputs back: hidden from every
        frame's post-processed output (`hotstart_removed_obj_ids`)."""
        self.hotstart_removed_obj_ids.update(obj_ids)

    def promote_to_conditioning(self, obj_idx: int, frame_idx: int) -> None:
        """Make an object's tracked output on a frame a conditioning one (kept for the whole
        session and preferred as memory): a detection confirmed it with high confidence."""
        cond, tracked = self.object_outputs(obj_idx)
        if frame_idx in tracked:
            cond[frame_idx] = tracked.pop(frame_idx)

    def reset_state(self) -> None:
        """Forget phrases, objects, outputs, bookkeeping and cached features and detections; keep
        the frames and the session's options."""
        frames, num, size = self.processed_frames, self._num_frames, (self.video_height, self.video_width)
        streaming, window = self.streaming, self.memory_window
        self.__init__(
            inference_device=self.inference_device,
            inference_state_device=self.inference_state_device,
            video_storage_device=self.video_storage_device,
            dtype=self.dtype,
            max_vision_features_cache_size=self.max_vision_features_cache_size,
            keep_all_outputs=self.keep_all_outputs,
            frame_normalization=self.frame_normalization,
            detection_cache_bytes=self.detections.max_bytes,
            first_obj_id=self.first_obj_id,
        )
        self.processed_frames, self._num_frames = frames, num
        self.video_height, self.video_width = size
        self.streaming, self.memory_window = streaming, window

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(frames={self.num_frames}, prompts={list(self.prompts.values())}, "
            f"objects={self.obj_ids}, size={self.video_height}x{self.video_width}, dtype={self.dtype}, "
            f"device={self.inference_device})"
        )
