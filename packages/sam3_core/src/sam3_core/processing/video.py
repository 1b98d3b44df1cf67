"""`Sam3TrackerVideoProcessor`: videos and per-frame prompts in, a tracking session out.

It is the image tracker's processor (`Sam3TrackerProcessor`: point / box normalisation, image
preprocessing, `post_process_masks`) plus the video session helpers. A session reads the caller's
frames on demand (`ResizedFrames`): each is resized to the model size when the model needs it and
normalised then, so a session holds no copy of the video and its memory does not grow with length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..scalars import as_int, is_int
from ..video.session import Sam3TrackerVideoInferenceSession
from .image import resize_images, to_rgb_tensor
from .processor_config import channels, resample_name
from .saving import image_processor_settings
from .tracker import Sam3TrackerProcessor

__all__ = ["ResizedFrames", "Sam3TrackerVideoProcessor"]


class ResizedFrames(Mapping):
    """A video's frames as a session reads them: index → (3, S, S) frame (uint8 for 8-bit input),
    resized by the processor when asked for. Holds only the caller's frames (a list, an array, or
    any indexable with a length, e.g. a lazy decoder), so nothing is copied up front."""

    def __init__(self, frames: Any, processor: Sam3TrackerVideoProcessor, device: Any = None) -> None:
        self.frames, self.processor, self.device = frames, processor, device

    def __getitem__(self, frame_idx: int) -> Tensor:
        if frame_idx not in self:
            raise KeyError(frame_idx)
        return self.processor.resize_frame(to_rgb_tensor(self.frames[frame_idx]), self.device)

    def __contains__(self, frame_idx: object) -> bool:
        return is_int(frame_idx) and 0 <= frame_idx < len(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.frames)))


class Sam3TrackerVideoProcessor(Sam3TrackerProcessor):
    """Prepares videos and prompts for `Sam3TrackerVideoModel` and post-processes its masks.

    Args: as `Sam3TrackerProcessor` (`size` 1008, `target_size`, `point_pad_value` -10, `mask_size`,
        the image resize and normalisation), plus the video frames' own settings (`video_resample`,
        `video_mean`, `video_std`, `video_rescale_factor`; default: the images'): frames given to
        `init_video_session` are resized with them and normalised with them when the model reads
        a frame, as the `video_processor` section of processor_config.json asks.
    """

    def _processor_config(self) -> dict[str, Any]:
        video = image_processor_settings(
            self.size,
            None,
            "Sam2VideoVideoProcessor",
            mean=self.video_mean,
            std=self.video_std,
            rescale_factor=self.video_rescale_factor,
            resample=self.video_resample,
        )
        return {**super()._processor_config(), "video_processor": video}

    session_class: type[Sam3TrackerVideoInferenceSession] = Sam3TrackerVideoInferenceSession
    reads_video_settings = True

    def __init__(
        self,
        *args: Any,
        video_mean: Sequence[float] | None = None,
        video_std: Sequence[float] | None = None,
        video_rescale_factor: float | None = None,
        video_resample: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.video_mean = channels("video_mean", video_mean) if video_mean is not None else self.image_mean
        self.video_std = channels("video_std", video_std) if video_std is not None else self.image_std
        if video_rescale_factor is not None and not video_rescale_factor > 0:
            raise ValueError(f"video_rescale_factor must be positive, got {video_rescale_factor!r}")
        self.video_rescale_factor = float(video_rescale_factor or self.rescale_factor)
        self.video_resample = resample_name(video_resample) if video_resample is not None else self.resample

    @property
    def frame_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...], float]:
        """(mean, std, rescale_factor) the session normalises stored uint8 frames with."""
        return self.video_mean, self.video_std, self.video_rescale_factor

    # -- videos -------------------------------------------------------------------------------

    def resize_frame(self, rgb: Tensor, device: str | torch.device | None = None) -> Tensor:
        """(3, H, W) frame → (3, S, S) at the model size, with the video's resample filter."""
        if device is not None:
            rgb = rgb.to(device)
        return resize_images(rgb.unsqueeze(0), (self.size, self.size), self.video_resample)[0]

    def preprocess_video(
        self, video: Any, device: str | torch.device | None = None
    ) -> tuple[Tensor, tuple[int, int]]:
        """Frames -> ((T, 3, S, S) resized frames, uint8 for 8-bit inputs, (height, width)).

        video: a list of frames (PIL images, numpy HWC arrays, torch CHW/HWC tensors, image file
            paths), or one (T, H, W, 3) / (T, 3, H, W) array or tensor. All frames must share a size.
        """
        resized: list[Tensor] = []
        size = self.check_video(
            _frame_list(video), lambda rgb: resized.append(self.resize_frame(rgb, device))
        )
        return torch.stack(resized), size

    def check_video(self, frames: Sequence[Any], each: Any = None) -> tuple[int, int]:
        """Read every frame once (a clear error now for an unreadable one, not mid-propagation) and
        return their common (height, width); frames of another size are refused. `each`, when
        given, is called with every decoded (3, H, W) frame (so a caller reads the video once)."""
        size = None
        for i, frame in enumerate(frames):
            try:
                rgb = to_rgb_tensor(frame)
            except (TypeError, ValueError) as e:
                raise type(e)(f"video frame {i}: {e}") from e
            hw = (int(rgb.shape[-2]), int(rgb.shape[-1]))
            if size is None:
                size = hw
            elif hw != size:
                raise ValueError(f"video frame {i} is {hw[0]}x{hw[1]} but frame 0 is {size[0]}x{size[1]}")
            if each is not None:
                each(rgb)
        return size

    def video_frames(
        self, video: Any, device: str | torch.device | None = None
    ) -> tuple[ResizedFrames, tuple[int, int]]:
        """The frames a session reads on demand (checked now) and their (height, width)."""
        frames = _frame_list(video)
        return ResizedFrames(frames, self, device), self.check_video(frames)

    def init_video_session(
        self,
        video: Any = None,
        inference_device: str | torch.device = "cpu",
        inference_state_device: str | torch.device | None = None,
        processing_device: str | torch.device | None = None,
        video_storage_device: str | torch.device | None = None,
        max_vision_features_cache_size: int = 1,
        dtype: torch.dtype = torch.float32,
        keep_all_outputs: bool | None = None,
    ) -> Sam3TrackerVideoInferenceSession:
        """Start tracking a video (or, with `video=None`, a stream of frames).

        Args:
            video: the frames (see `preprocess_video`); None to stream frames one by one through
                `model(inference_session=..., frame=...)`.
            inference_device: where the model runs.
            inference_state_device: where outputs and cached features live (default: inference_device).
            processing_device: where frames are resized (default: inference_device).
            video_storage_device: where streamed frames are kept (default: inference_device); a
                given video stays where it is and is read frame by frame.
            max_vision_features_cache_size: how many frames' backbone features to keep.
            dtype: the model's dtype (torch.float32, torch.bfloat16; torch.float64 for exact parity).
            keep_all_outputs: keep every tracked output, as the reference does, so that tracking
                resumed anywhere (a click on a tracked frame, a propagation from another frame)
                reads exactly the memories the reference reads; False keeps only the memory window
                around the frame being tracked (flat memory on long videos, but a resumed frame
                then misses the dropped neighbours). Default: True for a given `video`, False for
                streamed frames.
        """
        if keep_all_outputs is None:
            keep_all_outputs = video is not None
        return open_session(
            self.session_class,
            self,
            video,
            processing_device if processing_device is not None else inference_device,
            inference_device=inference_device,
            inference_state_device=inference_state_device,
            video_storage_device=video_storage_device,
            dtype=dtype,
            max_vision_features_cache_size=max_vision_features_cache_size,
            keep_all_outputs=keep_all_outputs,
        )

    # -- prompts ------------------------------------------------------------------------------

    def add_inputs_to_inference_session(
        self,
        inference_session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_ids: list[int] | int,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        input_masks: Any = None,
        original_size: Sequence[int] | Tensor | None = None,
        clear_old_inputs: bool = True,
    ) -> Sam3TrackerVideoInferenceSession:
        """Prompt objects on a frame.

        Args:
            inference_session: the session.
            frame_idx: the frame the prompts are on.
            obj_ids: one id or a list (any ints; reuse an id to refine that object).
            input_points: [[obj][point][x, y]] nested in one more list for the image, i.e.
                [image=1][object][point][x, y], in video pixels.
            input_labels: [1][object][point]: 1 positive click, 0 negative click.
            input_boxes: [1][object][x1, y1, x2, y2] in video pixels (replaces earlier clicks).
            input_masks: per object a (H, W) mask (array or tensor; any size, resized), or a list.
            original_size: (height, width) of the video; needed for streamed sessions.
            clear_old_inputs: replace the object's earlier clicks on this frame (else add to them).
        """
        session = inference_session
        obj_ids = _obj_id_list(obj_ids)
        if (input_points is None) != (input_labels is None):
            raise ValueError("give input_points and input_labels together (one label per point)")
        if input_points is None and input_boxes is None and input_masks is None:
            raise ValueError(
                "give at least one prompt: input_points + input_labels, input_boxes or input_masks"
            )
        if input_masks is not None and (input_points is not None or input_boxes is not None):
            raise ValueError("a mask prompt cannot be combined with points or boxes on the same frame")
        frame_idx = self._check_prompt_frame(session, frame_idx)
        if input_masks is not None:
            self._add_masks(session, frame_idx, obj_ids, input_masks)
        else:
            self._add_points(
                session,
                frame_idx,
                obj_ids,
                input_points,
                input_labels,
                input_boxes,
                original_size,
                clear_old_inputs,
            )
        session.mark_new_inputs(obj_ids)
        return session

    @staticmethod
    def _check_prompt_frame(session: Sam3TrackerVideoInferenceSession, frame_idx: object) -> int:
        """`frame_idx` as a Python int, checked against the session's video."""
        frame_idx = as_int("frame_idx", frame_idx)
        if frame_idx < 0:
            raise ValueError(f"frame_idx must be >= 0, got {frame_idx}")
        if not session.streaming and frame_idx >= (session.num_frames or 0):
            raise ValueError(
                f"frame_idx {frame_idx} is past the end of the video (frames 0..{(session.num_frames or 0) - 1})"
            )
        return frame_idx

    def _add_points(
        self,
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_ids: list[int],
        points: Any,
        labels: Any,
        boxes: Any,
        original_size: Sequence[int] | Tensor | None,
        clear_old_inputs: bool,
    ) -> None:
        if original_size is not None:
            if isinstance(original_size, Tensor):
                original_size = original_size.tolist()
            if len(original_size) != 2:
                raise ValueError(f"original_size must be (height, width), got {original_size!r}")
            session.set_video_size(*original_size)
        elif session.video_height is None or session.video_width is None:
            raise ValueError("original_size=(height, width) is needed for prompts on a streamed session")
        encoded = self(
            input_points=points,
            input_labels=labels,
            input_boxes=boxes,
            original_sizes=[[session.video_height, session.video_width]],
        )
        num = len(obj_ids)
        coords = encoded.get("input_points")
        point_labels = encoded.get("input_labels")
        for name, value in (("input_points", coords), ("input_boxes", encoded.get("input_boxes"))):
            if value is not None and (value.shape[0] != 1 or value.shape[1] != num):
                raise ValueError(
                    f"{name} describe {value.shape[1]} objects (on {value.shape[0]} images) but {num} object ids "
                    f"{obj_ids} were given; expected one image with one entry per object id"
                )
        if coords is None:
            coords = torch.zeros(1, num, 0, 2)
            point_labels = torch.zeros(1, num, 0, dtype=torch.int64)
        if encoded.get("input_boxes") is not None:
            if not clear_old_inputs:
                raise ValueError(
                    "a box must come before any click on an object; add it with clear_old_inputs=True"
                )
            corners = encoded["input_boxes"].reshape(1, num, 2, 2)
            corner_labels = torch.tensor([2, 3], dtype=torch.int64).repeat(1, num, 1)
            coords = torch.cat([corners, coords], dim=2)
            point_labels = torch.cat([corner_labels, point_labels], dim=2)
        for i, obj_id in enumerate(obj_ids):
            session.add_object_prompt(
                obj_id,
                frame_idx,
                points=coords[:, i : i + 1],
                labels=point_labels[:, i : i + 1],
                replace=clear_old_inputs,
            )

    def _add_masks(
        self, session: Sam3TrackerVideoInferenceSession, frame_idx: int, obj_ids: list[int], masks: Any
    ) -> None:
        masks = list(masks) if isinstance(masks, (list, tuple)) else [masks]
        if len(masks) != len(obj_ids):
            raise ValueError(
                f"got {len(masks)} masks for {len(obj_ids)} object ids {obj_ids}; give one per object"
            )
        for obj_id, mask in zip(obj_ids, masks, strict=True):
            mask = torch.as_tensor(np.asarray(mask)) if not isinstance(mask, Tensor) else mask
            if not 2 <= mask.ndim <= 4 or (mask.ndim > 2 and mask.shape[: mask.ndim - 2].numel() != 1):
                raise ValueError(f"the mask of object {obj_id} must be (H, W), got shape {tuple(mask.shape)}")
            mask = mask.reshape(1, 1, *mask.shape[-2:]).to(session.inference_device).float()
            if tuple(mask.shape[-2:]) != (self.target_size, self.target_size):
                mask = F.interpolate(
                    mask,
                    size=(self.target_size, self.target_size),
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
                mask = (mask >= 0.5).float()
            session.add_object_prompt(obj_id, frame_idx, mask=mask)


def open_session(
    session_class: type[Sam3TrackerVideoInferenceSession],
    processor: Sam3TrackerVideoProcessor,
    video: Any,
    processing_device: str | torch.device,
    **session_kwargs: Any,
) -> Sam3TrackerVideoInferenceSession:
    """A new session of `session_class` reading `video`'s frames on demand through `processor`
    (checked now), or waiting for streamed frames when `video` is None."""
    frames, size = (None, (None, None)) if video is None else processor.video_frames(video, processing_device)
    session = session_class(
        video=None,
        video_height=size[0],
        video_width=size[1],
        frame_normalization=processor.frame_normalization,
        **session_kwargs,
    )
    if frames is not None:
        session.use_frame_source(frames, len(frames))
    return session


def _obj_id_list(obj_ids: Any) -> list[int]:
    if is_int(obj_ids):
        return [int(obj_ids)]
    if not isinstance(obj_ids, (list, tuple)) or not obj_ids:
        raise ValueError(f"obj_ids must be an int or a non-empty list of ints, got {obj_ids!r}")
    bad = [o for o in obj_ids if not is_int(o)]
    if bad:
        raise ValueError(f"obj_ids must be ints, got {bad}")
    if len(set(obj_ids)) != len(obj_ids):
        raise ValueError(f"obj_ids {list(obj_ids)} repeat an id; give each object once")
    return [int(o) for o in obj_ids]


def _frame_list(video: Any) -> list[Any]:
    if isinstance(video, (str, os.PathLike)) and not os.path.isdir(video):
        raise ValueError(
            f"{str(video)!r}: sam3_core does not decode video files; pass a list of frames "
            "(sam3_sdk reads video files)"
        )
    if isinstance(video, (str, os.PathLike)):
        names = sorted(
            n for n in os.listdir(video) if n.lower().endswith((".jpg", ".jpeg", ".png", ".bmp", ".webp"))
        )
        if not names:
            raise ValueError(f"folder {str(video)!r} holds no image frames (.jpg, .png, ...)")
        return [os.path.join(video, n) for n in names]
    if isinstance(video, (np.ndarray, Tensor)):
        if video.ndim != 4:
            raise ValueError(
                f"a video array must be (frames, H, W, 3) or (frames, 3, H, W), got {tuple(video.shape)}"
            )
        return list(video)
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError("the video has no frames (an empty list)")
        return list(video)
    raise TypeError(f"video must be a list of frames or a 4-D array / tensor, got {type(video).__name__}")
