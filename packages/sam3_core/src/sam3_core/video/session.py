"""`Sam3TrackerVideoInferenceSession`: the state of one video being tracked.

Plain, commented state. What grows with the video is bounded:

- frames are kept as uint8 (3, S, S) images, already resized to the model size, and normalised
  only when the backbone needs them (4x smaller than float32 pixel values);
- the backbone features of at most `max_vision_features_cache_size` frames are cached;
- with `keep_all_outputs=False`, per object, tracked (non-conditioning) outputs are kept only
  within the memory window of the frame being tracked (`memory_window` frames either side);
  conditioning outputs (frames with prompts) are kept for the whole session;
- when frames are streamed in, frames older than the memory window are dropped too.

The reference keeps every output, and so does `keep_all_outputs=True` (what
`Sam3TrackerVideoProcessor.init_video_session` gives a session over a whole video): tracking resumed
away from the last tracked frame (a click on a tracked frame, a new object, a propagation from
another start) reads the tracked neighbours of that frame, which pruning would have dropped.
Pruning is exact only for tracking that goes on from where it stopped (streaming, one pass).

Devices: `inference_device` runs the model; `inference_state_device` holds the outputs and the
feature cache; `video_storage_device` holds the frames.

Threads: a session is plain state without a lock; use it from one thread at a time (two
propagations interleaving their frames on one session mix their memories). The SDK's
`VideoSession` holds a lock around its session and refuses a second propagation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..dtypes import as_dtype
from ..processing.image import normalize_images
from ..scalars import as_int, is_int
from .frame import FramePlanning
from .frames import SAM_FRAME_NORMALIZATION, FrameNormalization, as_frame_storage
from .planner import Pass, plan_passes
from .session_outputs import SessionOutputs

__all__ = ["FrameNormalization", "Sam3TrackerVideoInferenceSession", "as_frame_storage"]


class Sam3TrackerVideoInferenceSession(SessionOutputs, FramePlanning):
    """Inputs, outputs and caches of one video tracking session.

    Args:
        video: (T, 3, S, S) frames, uint8 (resized, not normalised) or float pixel values; None
            when frames are streamed in one at a time.
        video_height, video_width: size of the original video in pixels (prompts are given in it).
        inference_device: where the model runs.
        inference_state_device: where outputs and cached features are kept ("cpu" saves GPU memory).
        video_storage_device: where the frames are kept.
        dtype: dtype of the model inputs (pixel values, mask prompts): torch.float32, bfloat16 or
            float64 (exact parity checks).
        max_vision_features_cache_size: how many frames' backbone features are cached.
        memory_window: how many frames before / after the current one keep their outputs; the
            model sets it from its config (`max(num_maskmem, max_object_pointers_in_encoder) - 1`).
        keep_all_outputs: keep every tracked output and streamed frame, as the reference does
            (memory grows with the video; tracking resumed on any frame then reads that frame's
            tracked neighbours, as the reference does). Also settable: `session.keep_all_outputs = True`.
    """

    def __init__(
        self,
        video: Tensor | None = None,
        video_height: int | None = None,
        video_width: int | None = None,
        inference_device: torch.device | str = "cpu",
        inference_state_device: torch.device | str | None = None,
        video_storage_device: torch.device | str | None = None,
        dtype: torch.dtype | str = torch.float32,
        max_vision_features_cache_size: int = 1,
        memory_window: int | None = None,
        keep_all_outputs: bool = False,
        frame_normalization: FrameNormalization = SAM_FRAME_NORMALIZATION,
    ) -> None:
        if not is_int(max_vision_features_cache_size) or max_vision_features_cache_size < 1:
            raise ValueError(
                f"max_vision_features_cache_size must be at least 1 (an int), got {max_vision_features_cache_size!r}"
            )
        self.inference_device = torch.device(inference_device)
        self.inference_state_device = torch.device(inference_state_device or self.inference_device)
        self.video_storage_device = torch.device(video_storage_device or self.inference_device)
        self.dtype = as_dtype(dtype)
        self.max_vision_features_cache_size = int(max_vision_features_cache_size)
        self.video_height = None if video_height is None else as_int("video_height", video_height)
        self.video_width = None if video_width is None else as_int("video_width", video_width)
        # None until a model sets it; then outputs are pruned
        self.memory_window = None if memory_window is None else as_int("memory_window", memory_window, 0)
        self.keep_all_outputs = keep_all_outputs  # True: no pruning (unbounded, like the reference)
        # how uint8 frames become pixel values: the video processor's (mean, std, rescale_factor)
        self.frame_normalization = frame_normalization

        # frame index -> (3, S, S) uint8 (or float) frame on video_storage_device
        self.processed_frames: dict[int, Tensor] | None = None
        self.streaming = video is None  # frames arrive one at a time through model(frame=...)
        self._num_frames = 0  # frames seen so far (streamed frames may have been dropped since)
        if video is not None:
            if video.ndim != 4 or video.shape[1] != 3:
                raise ValueError(f"video must be (frames, 3, height, width), got shape {tuple(video.shape)}")
            self.processed_frames = {
                i: as_frame_storage(frame, frame_normalization).to(self.video_storage_device)
                for i, frame in enumerate(video)
            }
            self._num_frames = len(self.processed_frames)

        # frame index -> {"maps": [(1, C/8, 4h, 4w), (1, C/4, 2h, 2w), (1, C, h, w)] the decoder's
        # features, "pos": [(1, C, h, w)] sine encoding of the last map}, on inference_state_device;
        # at most max_vision_features_cache_size frames
        self._vision_features: OrderedDict[int, dict[str, list[Tensor]]] = OrderedDict()

        # object ids (client side, any ints) <-> object indices (0, 1, ... in order of arrival)
        self._obj_id_to_idx: OrderedDict[int, int] = OrderedDict()
        self._obj_idx_to_id: OrderedDict[int, int] = OrderedDict()
        self.obj_ids: list[int] = []

        # obj_idx -> frame_idx -> {"point_coords": (1, 1, N, 2) model-input pixels,
        #                          "point_labels": (1, 1, N) int}, on inference_device
        self.point_inputs_per_obj: dict[int, dict[int, dict[str, Tensor]]] = {}
        # obj_idx -> frame_idx -> (1, 1, S, S) binary mask in `dtype`, on inference_device
        self.mask_inputs_per_obj: dict[int, dict[int, Tensor]] = {}
        # obj_idx -> {"cond_frame_outputs": {frame_idx: out}, "non_cond_frame_outputs": {...}}
        # (prompted / tracked frames) where out holds pred_masks (1, 1, 4h, 4w) mask logits,
        # object_pointer (1, C), object_score_logits (1, 1, 1), and once the frame's memory is
        # encoded maskmem_features (1, h*w, C_mem) bf16 and maskmem_pos_enc (1, h*w, C_mem)
        self.output_dict_per_obj: dict[int, dict[str, dict[int, dict[str, Any]]]] = {}
        # obj_idx -> frame_idx -> {"reverse": bool}: frames tracked (not prompted) for the object
        self.frames_tracked_per_obj: dict[int, dict[int, dict[str, bool]]] = {}
        # object ids given new prompts since the last model call on their frame
        self.obj_with_new_inputs: list[int] = []

    # -----------------------------------------------------------------------------------------
    # Frames
    # -----------------------------------------------------------------------------------------

    @property
    def num_frames(self) -> int | None:
        """Frames in the video (or streamed so far); None before any frame."""
        return self._num_frames if self.processed_frames is not None else None

    def set_default_memory_window(self, window: int) -> None:
        """The model's memory reach (frames either side); kept when the session already has one."""
        if self.memory_window is None:
            self.memory_window = window

    def use_frame_source(
        self, frames: Mapping[int, Tensor], num_frames: int, video_size: tuple[int, int] | None = None
    ) -> None:
        """Read the video's frames on demand instead of holding them (memory then does not grow
        with the video's length).

        frames: frame index -> (3, S, S) frame (uint8 resized, or float pixel values), e.g. a lazy
            decoder; `frame_idx in frames` must be True for 0 <= frame_idx < num_frames.
        num_frames: the video's length.
        video_size: (height, width) of the original video (prompts are given in it), when known.
        """
        if not is_int(num_frames) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
        num_frames = int(num_frames)
        if video_size is not None:
            self.set_video_size(*video_size)
        self.processed_frames = frames  # type: ignore[assignment]  # a mapping, not necessarily a dict
        self._num_frames = num_frames
        self.streaming = False

    def add_new_frame(self, pixel_values: Tensor, frame_idx: int | None = None) -> int:
        """Store a streamed frame ((3, S, S) or (1, 3, S, S) pixel values) and return its index."""
        if pixel_values.ndim == 4:
            if pixel_values.shape[0] != 1:
                raise ValueError(f"give one frame at a time, got a batch of {pixel_values.shape[0]}")
            pixel_values = pixel_values[0]
        if pixel_values.ndim != 3 or pixel_values.shape[0] != 3:
            raise ValueError(
                f"a frame must be (3, height, width) pixel values, got {tuple(pixel_values.shape)}"
            )
        frame_idx = self._num_frames if frame_idx is None else as_int("frame_idx", frame_idx)
        if frame_idx < 0:
            raise ValueError(f"frame_idx must be >= 0, got {frame_idx}")
        if self.processed_frames is None:
            self.processed_frames = {}
        self.processed_frames[frame_idx] = as_frame_storage(pixel_values, self.frame_normalization).to(
            self.video_storage_device
        )
        self._num_frames = max(self._num_frames, frame_idx + 1)
        if self.streaming and self.memory_window is not None and not self.keep_all_outputs:
            # a streamed frame is needed again only if it is re-tracked; keep the recent ones
            for old in [i for i in self.processed_frames if i < frame_idx - self.memory_window]:
                del self.processed_frames[old]
        return frame_idx

    def get_frame(self, frame_idx: int) -> Tensor:
        """Normalised pixel values (3, S, S) of a frame, in `dtype` on the inference device."""
        frame_idx = self.check_frame_idx(frame_idx)
        if frame_idx not in self.processed_frames:
            raise ValueError(
                f"frame {frame_idx} was streamed earlier and has been dropped (only the last "
                f"{self.memory_window} streamed frames are kept); pass it again with model(frame=...)"
            )
        frame = self.processed_frames[frame_idx].to(self.inference_device)
        pixels = normalize_images(frame, *self.frame_normalization) if frame.dtype == torch.uint8 else frame
        return pixels.to(self.dtype)

    def check_frame_idx(self, frame_idx: object, name: str = "frame_idx") -> int:
        """`frame_idx` as a Python int; a TypeError unless it is an int (Python's or numpy's), a
        ValueError unless it is a frame of the video. `name`: the argument's, for the errors."""
        if self.processed_frames is None:
            raise ValueError(
                "this session has no frames yet; pass video=... to init_video_session, or stream frames "
                "with model(inference_session=..., frame=...)"
            )
        frame_idx = as_int(name, frame_idx)
        if not 0 <= frame_idx < self._num_frames:
            raise ValueError(
                f"{name} {frame_idx} is out of range; the video has frames 0..{self._num_frames - 1}"
            )
        return frame_idx

    # -----------------------------------------------------------------------------------------
    # Backbone feature cache
    # -----------------------------------------------------------------------------------------

    def cache_vision_features(self, frame_idx: int, features: dict[str, list[Tensor]]) -> None:
        """Cache a frame's features, evicting the lowest frame index when full (as the reference)."""
        while len(self._vision_features) >= self.max_vision_features_cache_size:
            self._vision_features.pop(min(self._vision_features))
        self._vision_features[frame_idx] = {
            key: [t.to(self.inference_state_device) for t in value] for key, value in features.items()
        }

    def get_vision_features(self, frame_idx: int) -> dict[str, list[Tensor]] | None:
        """Cached features of a frame on the inference device, or None."""
        cached = self._vision_features.get(frame_idx)
        if cached is None:
            return None
        return {key: [t.to(self.inference_device) for t in value] for key, value in cached.items()}

    # -----------------------------------------------------------------------------------------
    # Objects
    # -----------------------------------------------------------------------------------------

    def obj_id_to_idx(self, obj_id: int) -> int:
        """The index of object `obj_id`, registering it when new."""
        obj_id = as_int("obj_id", obj_id)  # a dict key shown in outputs: a Python int
        obj_idx = self._obj_id_to_idx.get(obj_id)
        if obj_idx is not None:
            return obj_idx
        obj_idx = len(self._obj_id_to_idx)
        self._obj_id_to_idx[obj_id] = obj_idx
        self._obj_idx_to_id[obj_idx] = obj_id
        self.obj_ids = list(self._obj_id_to_idx)
        self.point_inputs_per_obj[obj_idx] = {}
        self.mask_inputs_per_obj[obj_idx] = {}
        self.output_dict_per_obj[obj_idx] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        self.frames_tracked_per_obj[obj_idx] = {}
        return obj_idx

    def obj_idx_to_id(self, obj_idx: int) -> int:
        """The client-side id of object index `obj_idx`."""
        return self._obj_idx_to_id[obj_idx]

    def get_obj_num(self) -> int:
        """How many objects the session tracks."""
        return len(self._obj_idx_to_id)

    def check_obj_id(self, obj_id: int) -> int:
        """The index of a known object id; a ValueError naming the known ids otherwise."""
        if obj_id not in self._obj_id_to_idx:
            raise ValueError(f"unknown object id {obj_id!r}; this session tracks objects {self.obj_ids}")
        return self._obj_id_to_idx[obj_id]

    def remove_object(self, obj_id: int) -> None:
        """Forget an object: its prompts and outputs. The other objects keep their ids."""
        removed = self.check_obj_id(obj_id)
        keep = [i for i in range(self.get_obj_num()) if i != removed]
        per_obj = (
            self.point_inputs_per_obj,
            self.mask_inputs_per_obj,
            self.output_dict_per_obj,
            self.frames_tracked_per_obj,
        )
        for table in per_obj:
            old = dict(table)
            table.clear()
            table.update({new: old[i] for new, i in enumerate(keep)})
        ids = [self._obj_idx_to_id[i] for i in keep]
        self._obj_id_to_idx = OrderedDict((oid, i) for i, oid in enumerate(ids))
        self._obj_idx_to_id = OrderedDict((i, oid) for i, oid in enumerate(ids))
        self.obj_ids = ids
        self.obj_with_new_inputs = [o for o in self.obj_with_new_inputs if o != obj_id]

    # -----------------------------------------------------------------------------------------
    # Prompts
    # -----------------------------------------------------------------------------------------

    def add_object_prompt(
        self,
        obj_id: int,
        frame_idx: int,
        points: Tensor | None = None,
        labels: Tensor | None = None,
        mask: Tensor | None = None,
        replace: bool = True,
    ) -> int:
        """Prompt an object on a frame (registering it when new) and return its index.

        points: (1, 1, N, 2) clicks / box corners in model-input pixels, with labels (1, 1, N); or
        mask: a (1, 1, S, S) mask. With `replace` False, the clicks come after the object's earlier
        clicks on the frame; a prompt of one kind removes the other kind there. Call
        `mark_new_inputs` once the call's objects are prompted.
        """
        obj_idx = self.obj_id_to_idx(obj_id)
        frame_idx = as_int("frame_idx", frame_idx)
        if mask is not None:
            self.add_mask_inputs(obj_idx, frame_idx, mask)
            self.remove_point_inputs(obj_idx, frame_idx)
            return obj_idx
        existing = self.point_inputs_per_obj[obj_idx].get(frame_idx)
        if not replace and existing is not None:
            points = torch.cat([existing["point_coords"].to(points.device), points], dim=2)
            labels = torch.cat([existing["point_labels"].to(labels.device), labels], dim=2)
        self.add_point_inputs(obj_idx, frame_idx, {"point_coords": points, "point_labels": labels})
        self.remove_mask_inputs(obj_idx, frame_idx)
        return obj_idx

    def set_video_size(self, height: int, width: int) -> None:
        """The original video's size in pixels (prompts are given in it)."""
        self.video_height, self.video_width = int(height), int(width)

    def add_point_inputs(self, obj_idx: int, frame_idx: int, inputs: dict[str, Tensor]) -> None:
        """Store the clicks / box corners of an object on a frame (moved to the inference device)."""
        self.point_inputs_per_obj[obj_idx][frame_idx] = {
            k: v.to(self.inference_device) if isinstance(v, Tensor) else v for k, v in inputs.items()
        }

    def remove_point_inputs(self, obj_idx: int, frame_idx: int) -> None:
        self.point_inputs_per_obj[obj_idx].pop(frame_idx, None)

    def add_mask_inputs(self, obj_idx: int, frame_idx: int, inputs: Tensor) -> None:
        """Store a (1, 1, S, S) mask prompt of an object on a frame."""
        self.mask_inputs_per_obj[obj_idx][frame_idx] = inputs.to(self.inference_device, dtype=self.dtype)

    def remove_mask_inputs(self, obj_idx: int, frame_idx: int) -> None:
        self.mask_inputs_per_obj[obj_idx].pop(frame_idx, None)

    def prompts_on(self, obj_idx: int, frame_idx: int) -> tuple[dict[str, Tensor] | None, Tensor | None]:
        """(point inputs, mask input) of an object on a frame; None where it has none."""
        points = self.point_inputs_per_obj[obj_idx].get(frame_idx)
        return points, self.mask_inputs_per_obj[obj_idx].get(frame_idx)

    def has_new_inputs(self, obj_id: int) -> bool:
        """Whether the object got prompts that the model has not segmented yet."""
        return obj_id in self.obj_with_new_inputs

    def has_pending_prompts(self) -> bool:
        """Whether any object got prompts that the model has not segmented yet."""
        return bool(self.obj_with_new_inputs)

    def mark_new_inputs(self, obj_ids: Sequence[int]) -> None:
        """These objects (and no others) have prompts to segment on the next frame the model runs."""
        self.obj_with_new_inputs = list(obj_ids)

    def prompted_frames(self, obj_id: int | None = None) -> list[int]:
        """Frames holding prompts (clicks, boxes or masks) of one object, or of any."""
        indices = [self.check_obj_id(obj_id)] if obj_id is not None else range(self.get_obj_num())
        frames: set[int] = set()
        for i in indices:
            frames |= set(self.point_inputs_per_obj[i]) | set(self.mask_inputs_per_obj[i])
        return sorted(frames)

    def refine(self, obj_id: int, frame_idx: int) -> None:
        """Make `frame_idx` a prompted frame of the object, for prompts about to be added there:
        its mask prompt on the frame gives way, and the frame no longer counts as tracked."""
        obj_idx = self.check_obj_id(obj_id)
        frame_idx = as_int("frame_idx", frame_idx)
        self.remove_mask_inputs(obj_idx, frame_idx)
        self.frames_tracked_per_obj[obj_idx].pop(frame_idx, None)

    def plan_pass(
        self,
        direction: str,
        start_frame: int | None = None,
        max_frames: int | None = None,
        also_prompted: Sequence[int] = (),
        repeat_start: bool = True,
    ) -> list[Pass]:
        """The passes of a propagation (`planner.plan_passes`) from this session's prompted frames
        (and `also_prompted`, e.g. frames phrases were added on)."""
        prompted = set(self.prompted_frames()) | set(also_prompted)
        return plan_passes(direction, self._num_frames, prompted, start_frame, max_frames, repeat_start)

    def mark_inputs_used(self, obj_id: int) -> None:
        """The object's new prompts have been segmented."""
        self.obj_with_new_inputs.remove(obj_id)

    # -----------------------------------------------------------------------------------------
    # One frame: open it, plan it, commit the engine's results (`frame.py`)
    # -----------------------------------------------------------------------------------------

    def open_frame(self, frame_idx: int | None, frame: Tensor | None, memory_window: int) -> int:
        """The frame a model call segments: a streamed `frame` is stored first (at `frame_idx`, by
        default the next index). `memory_window`: the model's reach, kept unless the session has one."""
        self.set_default_memory_window(memory_window)
        no_objects = "no objects to track; add prompts with add_inputs_to_inference_session first"
        if frame is not None:
            if self.get_obj_num() == 0:
                raise ValueError(no_objects)
            frame_idx = self.add_new_frame(frame, frame_idx)
        if frame_idx is None:
            raise ValueError("give frame_idx (a frame of the session's video) or a streamed frame=")
        frame_idx = self.check_frame_idx(frame_idx)
        if self.get_obj_num() == 0:
            raise ValueError(no_objects)
        return frame_idx

    # -----------------------------------------------------------------------------------------
    # Resetting
    # -----------------------------------------------------------------------------------------

    def reset_tracking_data(self) -> None:
        """Forget objects, prompts and outputs; keep the frames and the feature cache."""
        self._obj_id_to_idx.clear()
        self._obj_idx_to_id.clear()
        self.obj_ids = []
        self.point_inputs_per_obj.clear()
        self.mask_inputs_per_obj.clear()
        self.output_dict_per_obj.clear()
        self.frames_tracked_per_obj.clear()
        self.obj_with_new_inputs = []

    def reset_inference_session(self) -> None:
        """Forget objects, prompts, outputs and cached features; keep the frames."""
        self.reset_tracking_data()
        self._vision_features.clear()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(frames={self.num_frames}, objects={self.obj_ids}, "
            f"size={self.video_height}x{self.video_width}, dtype={self.dtype}, device={self.inference_device})"
        )
