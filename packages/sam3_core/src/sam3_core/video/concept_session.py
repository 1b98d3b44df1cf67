"""`Sam3VideoInferenceSession`: the state of one video tracked by phrases (`Sam3VideoModel`).

It is the video tracker's session (frames, per-object prompts and outputs, feature cache; see
`session.py`) plus what text-prompted tracking adds:

- the phrases (`prompts`: prompt id -> text) with their tokens and, once computed, their text
  features, and the phrase each object came from (`obj_id_to_prompt_id`);
- the bookkeeping of the detection-to-track logic (`concept_tracker.py`): each object's detection
  score, per-frame tracker scores, last occluded frame, first frame, unmatched frames, keep-alive
  counter, duplicate-overlap counts, and the objects removed or suppressed.

Object ids are assigned by the model (0, 1, 2, ... in order of detection) and never reused.
"""

from __future__ import annotations

from collections import defaultdict

from torch import Tensor

from .session import Sam3TrackerVideoInferenceSession

__all__ = ["Sam3VideoInferenceSession"]


class Sam3VideoInferenceSession(Sam3TrackerVideoInferenceSession):
    """Frames, phrases, tracked objects and caches of one text-prompted video session.

    Args: as `Sam3TrackerVideoInferenceSession` (video (T, 3, S, S) or None to stream,
        video_height / video_width of the original video, the devices, dtype,
        max_vision_features_cache_size). Created by `Sam3VideoProcessor.init_video_session`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # phrases: prompt id (0, 1, ... in order of addition) -> text, (1, L) token ids and mask,
        # and the detector's text features once computed
        self.prompts: dict[int, str] = {}
        self.prompt_input_ids: dict[int, Tensor] = {}
        self.prompt_attention_masks: dict[int, Tensor] = {}
        self.prompt_embeddings: dict[int, object] = {}
        self.obj_id_to_prompt_id: dict[int, int] = {}

        # per object: detection score when it was found (-1e4 once removed), sigmoid tracker score
        # per frame (frame -> obj_id -> score), last frame it was occluded or suppressed ((1,) long)
        self.obj_id_to_score: dict[int, float] = {}
        self.obj_id_to_tracker_score_frame_wise: defaultdict[int, dict[int, float]] = defaultdict(dict)
        self.obj_id_to_last_occluded: dict[int, Tensor] = {}
        self.max_obj_id = -1  # the largest object id assigned so far

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

    def add_prompt(self, prompt_text: str) -> int:
        """Register a phrase and return its prompt id (the existing id for a repeated phrase)."""
        if not isinstance(prompt_text, str) or not prompt_text.strip():
            raise ValueError(f"a text prompt must be a non-empty string, got {prompt_text!r}")
        for prompt_id, text in self.prompts.items():
            if text == prompt_text:
                return prompt_id
        prompt_id = len(self.prompts)
        self.prompts[prompt_id] = prompt_text
        return prompt_id

    def remove_object(self, obj_id: int, strict: bool = False) -> None:
        """Forget an object (its prompts, outputs and phrase); unknown ids are ignored unless
        `strict`."""
        if obj_id not in self._obj_id_to_idx:
            if strict:
                raise ValueError(f"unknown object id {obj_id!r}; this session tracks objects {self.obj_ids}")
            return
        super().remove_object(obj_id)
        self.obj_id_to_prompt_id.pop(obj_id, None)

    def promote_to_conditioning(self, obj_idx: int, frame_idx: int) -> None:
        """Make an object's tracked output on a frame a conditioning one (kept for the whole
        session and preferred as memory): a detection confirmed it with high confidence."""
        cond, tracked = self.object_outputs(obj_idx)
        if frame_idx in tracked:
            cond[frame_idx] = tracked.pop(frame_idx)

    def reset_state(self) -> None:
        """Forget phrases, objects, outputs, bookkeeping and cached features; keep the frames."""
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
