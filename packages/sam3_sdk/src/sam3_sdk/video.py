"""Video tracking: per-frame results, a compact store of them, and the interactive `VideoSession`.

>>> session = sam.video_session("clip.mp4")
>>> first = session.add_object(frame=0, points=[(210, 350)])      # → VideoFrameMasks of frame 0
>>> session.refine(first.object_ids[0], frame=40, points=[(200, 340), (260, 300)], labels=[1, 0])
>>> for frame in session.propagate("both", progress=print): ...
>>> session.results.save_coco_json("masks.json")
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from sam3_core.processing.image import resize_images, to_rgb_tensor

from .prompts import check_box, check_mask, check_points
from .results import masks_to_boxes, overlay_masks, palette, write_atomically
from .rle import mask_to_rle, rle_to_mask
from .video_io import VideoLike, VideoReader, open_video

if TYPE_CHECKING:
    from .model import Sam3

__all__ = ["VideoFrameMasks", "VideoMasks", "VideoSession", "object_color", "DIRECTIONS"]

DIRECTIONS = ("forward", "backward", "both")
Progress = Callable[[int, int], Any]  # progress(frames done, frames in this propagation)


def object_color(obj_id: int) -> tuple[int, int, int]:
    """The display colour (R, G, B) of object `obj_id` (object 1 gets the first palette colour)."""
    return palette(int(obj_id) - 1)


@dataclass
class VideoFrameMasks:
    """The tracked objects on one frame.

    frame_idx: the frame. object_ids: ids of the objects, in the order of `masks`.
    masks: (N, H, W) bool at the video's size. scores: (N,) float32 probability that the object
    is visible on this frame (the tracker's object score, through a sigmoid).
    """

    frame_idx: int
    object_ids: list[int]
    masks: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if self.masks.ndim != 3 or not len(self.masks) == len(self.scores) == len(self.object_ids):
            raise ValueError(
                f"masks {self.masks.shape}, scores {self.scores.shape} and object ids {self.object_ids} disagree"
            )

    def __len__(self) -> int:
        return len(self.object_ids)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def mask(self, obj_id: int) -> np.ndarray:
        """(H, W) bool mask of one object."""
        if obj_id not in self.object_ids:
            raise ValueError(
                f"unknown object id {obj_id!r}; frame {self.frame_idx} has objects {self.object_ids}"
            )
        return self.masks[self.object_ids.index(obj_id)]

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 xyxy pixel boxes (zeros for empty masks)."""
        return masks_to_boxes(self.masks)

    def index_mask(self) -> np.ndarray:
        """(H, W) uint8 (uint16 for ids above 255): each pixel holds the id of the object there, 0 none."""
        dtype = np.uint8 if max(self.object_ids, default=0) < 256 else np.uint16
        out = np.zeros(self.size, dtype=dtype)
        for obj_id, mask in zip(self.object_ids, self.masks):
            out[mask] = obj_id
        return out

    def overlay(self, image: Any, alpha: float = 0.5) -> Image.Image:
        """The frame with each object in its colour (`object_color`)."""
        return overlay_masks(
            image, self.masks, alpha=alpha, colors=[object_color(o) for o in self.object_ids]
        )

    def to_coco_rle(self) -> list[dict]:
        """One record per object: object_id, segmentation (COCO compressed RLE), area, bbox (XYWH), score."""
        records = []
        for i, (obj_id, mask) in enumerate(zip(self.object_ids, self.masks)):
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            records.append(
                {
                    "object_id": int(obj_id),
                    "segmentation": mask_to_rle(mask),
                    "area": int(mask.sum()),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(self.scores[i]),
                }
            )
        return records


@dataclass
class VideoMasks:
    """Tracking results of a whole video, held compactly (COCO RLE per object and frame).

    `masks[frame_idx]` → `VideoFrameMasks`; `frames` lists the frames that have results.
    Exports: `to_json()` / `save_coco_json`, `save_png_zip` (index masks), `save_mp4` (annotated video).
    """

    size: tuple[int, int]  # (height, width)
    num_frames: int
    fps: float = 30.0
    _frames: dict[int, list[dict]] = field(default_factory=dict)

    def add(self, result: VideoFrameMasks) -> None:
        """Store (or replace) one frame's results."""
        if result.size != tuple(self.size):
            raise ValueError(
                f"frame {result.frame_idx} masks are {result.size}, the video is {tuple(self.size)}"
            )
        self._frames[result.frame_idx] = result.to_coco_rle()

    def remove_object(self, obj_id: int) -> None:
        for frame, records in self._frames.items():
            self._frames[frame] = [r for r in records if r["object_id"] != obj_id]

    def clear(self) -> None:
        self._frames.clear()

    @property
    def frames(self) -> list[int]:
        return sorted(self._frames)

    @property
    def object_ids(self) -> list[int]:
        return sorted({r["object_id"] for records in self._frames.values() for r in records})

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, frame_idx: object) -> bool:
        return frame_idx in self._frames

    def get(self, frame_idx: int) -> VideoFrameMasks | None:
        records = self._frames.get(frame_idx)
        if records is None:
            return None
        h, w = self.size
        masks = (
            np.stack([rle_to_mask(r["segmentation"]) for r in records])
            if records
            else np.zeros((0, h, w), bool)
        )
        return VideoFrameMasks(
            frame_idx=frame_idx,
            object_ids=[r["object_id"] for r in records],
            masks=masks,
            scores=[r["score"] for r in records],
        )

    def __getitem__(self, frame_idx: int) -> VideoFrameMasks:
        result = self.get(frame_idx)
        if result is None:
            raise KeyError(f"frame {frame_idx} has no results; frames with results: {self.frames[:20]}")
        return result

    def to_dict(self) -> dict:
        """{"video": {height, width, num_frames, fps}, "object_ids": [...], "frames": [{frame_idx, annotations}]}."""
        h, w = self.size
        return {
            "video": {"height": h, "width": w, "num_frames": self.num_frames, "fps": self.fps},
            "object_ids": self.object_ids,
            "frames": [{"frame_idx": f, "annotations": self._frames[f]} for f in self.frames],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def save_coco_json(self, path: str | os.PathLike) -> Path:
        """The COCO RLE records of every frame, with object ids, as JSON (written atomically)."""
        return write_atomically(path, self.to_json().encode())

    def save_png_zip(self, path: str | os.PathLike) -> Path:
        """A zip of `frame_000000.png` index masks (pixel value = object id), one per frame with results."""
        from .video_export import write_png_zip

        return write_png_zip(self, path)

    def save_mp4(self, path: str | os.PathLike, video: VideoLike | VideoReader, **kwargs: Any) -> Path:
        """The video with the masks drawn in (H.264, yuv420p); see `video_export.write_annotated_mp4`."""
        from .video_export import write_annotated_mp4

        return write_annotated_mp4(video, self, path, **kwargs)


class ModelFrames(Mapping):
    """The frames as the tracker reads them, decoded and resized on demand: index → (3, S, S) uint8."""

    def __init__(self, reader: VideoReader, size: int, device: torch.device | str = "cpu") -> None:
        self.reader, self.size, self.device = reader, int(size), device

    def __getitem__(self, frame_idx: int) -> torch.Tensor:
        if frame_idx not in self:
            raise KeyError(frame_idx)
        rgb = to_rgb_tensor(self.reader[frame_idx]).to(self.device)
        return resize_images(rgb.unsqueeze(0), (self.size, self.size))[0]

    def __contains__(self, frame_idx: object) -> bool:
        return isinstance(frame_idx, (int, np.integer)) and 0 <= frame_idx < len(self.reader)

    def __len__(self) -> int:
        return len(self.reader)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.reader)))


class VideoSession:
    """Interactive tracking on one video: add objects, refine them on any frame, remove them, and
    propagate forwards, backwards or both ways from the prompted frames.

    Frames are decoded on demand (never all in memory); the tracker keeps only a bounded window
    of past outputs. `results` keeps every frame's masks compactly (COCO RLE) for display and export.
    """

    def __init__(
        self, sam: Sam3, video: VideoLike | VideoReader, fps: float | None = None, keep_results: bool = True
    ) -> None:
        self.sam = sam
        self.reader = open_video(video, fps=fps)
        self.model = sam.video_tracker
        self.processor = sam.video_processor
        self.keep_results = keep_results
        self.state = self.processor.init_video_session(
            inference_device=self.model.device, video_storage_device="cpu", dtype=self.model.dtype
        )
        self.state.video_height, self.state.video_width = self.reader.size
        self.state.use_frame_source(ModelFrames(self.reader, self.processor.size), len(self.reader))
        self.results = VideoMasks(size=self.reader.size, num_frames=len(self.reader), fps=self.reader.fps)
        self.stale = False  # prompts changed since the last propagation

    # -- the video ----------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return len(self.reader)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the video."""
        return self.reader.size

    @property
    def fps(self) -> float:
        return self.reader.fps

    @property
    def object_ids(self) -> list[int]:
        return list(self.state.obj_ids)

    def frame(self, frame_idx: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one frame."""
        return self.reader[self.reader.check_index(frame_idx)]

    def prompted_frames(self, obj_id: int | None = None) -> list[int]:
        """Frames that hold prompts (of one object, or of any)."""
        idxs = [self.state.check_obj_id(obj_id)] if obj_id is not None else range(self.state.get_obj_num())
        frames = set()
        for i in idxs:
            frames |= set(self.state.point_inputs_per_obj[i]) | set(self.state.mask_inputs_per_obj[i])
        return sorted(frames)

    # -- prompts ------------------------------------------------------------------------------

    def _check_frame(self, frame: Any) -> int:
        if not isinstance(frame, (int, np.integer)) or isinstance(frame, bool):
            raise ValueError(f"frame must be an int frame index, got {frame!r}")
        if not 0 <= frame < self.num_frames:
            raise ValueError(
                f"frame {int(frame)} is past the end of the video; expected a frame in 0..{self.num_frames - 1}"
            )
        return int(frame)

    def add_object(
        self,
        frame: int = 0,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
        obj_id: int | None = None,
    ) -> VideoFrameMasks:
        """Start tracking a new object from prompts on `frame` (pixels of the video frame).

        points: (x, y) clicks; labels: 1 positive / 0 negative (default all 1); box: (x1, y1, x2, y2);
        mask: (H, W) bool. obj_id: any int not in use (default: the next free id, from 1).
        Returns every object's masks on that frame.
        """
        if obj_id is None:
            obj_id = max(self.object_ids, default=0) + 1
        if not isinstance(obj_id, (int, np.integer)) or isinstance(obj_id, bool):
            raise ValueError(f"obj_id must be an int, got {obj_id!r}")
        if int(obj_id) in self.object_ids:
            raise ValueError(f"object id {obj_id} is already tracked; use refine() or another id")
        return self._prompt(int(obj_id), frame, points, labels, box, mask, replace=True)

    def refine(
        self,
        obj_id: int,
        frame: int,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
        replace: bool = True,
    ) -> VideoFrameMasks:
        """Correct an object on any frame. With `replace` (default) these prompts replace the object's
        earlier prompts on that frame; otherwise the clicks are added to them."""
        self.state.check_obj_id(obj_id)
        return self._prompt(obj_id, frame, points, labels, box, mask, replace=replace)

    def _prompt(self, obj_id, frame, points, labels, box, mask, replace) -> VideoFrameMasks:
        frame = self._check_frame(frame)
        size = self.size
        pts, labs = check_points(points, labels, size)
        box_arr = check_box(box, size)
        mask_arr = check_mask(mask, size)
        if pts is None and box_arr is None and mask_arr is None:
            raise ValueError(f"object {obj_id} on frame {frame}: give points, a box or a mask")
        if mask_arr is not None and (pts is not None or box_arr is not None):
            raise ValueError("a mask prompt cannot be combined with points or a box on the same frame")
        if mask_arr is not None:
            self.processor.add_inputs_to_inference_session(
                self.state, frame_idx=frame, obj_ids=obj_id, input_masks=mask_arr.astype(np.float32)
            )
        else:
            self.processor.add_inputs_to_inference_session(
                self.state,
                frame_idx=frame,
                obj_ids=obj_id,
                input_points=None if pts is None else [[pts.tolist()]],
                input_labels=None if labs is None else [[labs.tolist()]],
                input_boxes=None if box_arr is None else [[box_arr.tolist()]],
                clear_old_inputs=replace or box_arr is not None,
            )
        self.stale = True
        out = self.model(inference_session=self.state, frame_idx=frame)
        return self._record(out)

    def remove_object(self, obj_id: int) -> None:
        """Stop tracking an object: its prompts, memories and stored results go."""
        self.state.remove_object(obj_id)
        self.results.remove_object(obj_id)

    def reset(self) -> None:
        """Forget every object, prompt and result (the video stays open)."""
        self.state.reset_inference_session()
        self.results.clear()
        self.stale = False

    # -- tracking -----------------------------------------------------------------------------

    def _record(self, out) -> VideoFrameMasks:
        masks = self.processor.post_process_masks([out.pred_masks], original_sizes=[list(self.size)])[0][:, 0]
        scores = torch.sigmoid(out.object_score_logits.float()).reshape(-1)
        result = VideoFrameMasks(
            frame_idx=int(out.frame_idx),
            object_ids=[int(o) for o in out.object_ids],
            masks=masks.cpu().numpy(),
            scores=scores.cpu().numpy(),
        )
        if self.keep_results:
            self.results.add(result)
        return result

    def propagate(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        max_frames: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[VideoFrameMasks]:
        """Track every object through the video, yielding each frame's masks as it is done.

        direction: "forward" (from the earliest prompted frame to the end), "backward" (from the
        latest prompted frame to frame 0) or "both" (forward from the earliest prompted frame,
        then backward from it). start_frame overrides where each pass starts; max_frames limits
        how many frames each pass goes beyond its start. progress(done, total) is called per frame.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if not self.object_ids:
            raise ValueError("no objects to track; add one with add_object(frame=..., points=...) first")
        prompted = self.prompted_frames()
        if not prompted:
            raise ValueError("no object has prompts; add points, a box or a mask first")
        if start_frame is not None:
            start_frame = self._check_frame(start_frame)
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 0):
            raise ValueError(f"max_frames must be a non-negative int, got {max_frames!r}")
        last = self.num_frames - 1
        passes = []
        if direction in ("forward", "both"):
            s = prompted[0] if start_frame is None else start_frame
            end = last if max_frames is None else min(last, s + max_frames)
            passes.append((s, False, end - s + 1))
        if direction in ("backward", "both"):
            if start_frame is not None:
                s = start_frame
            else:
                s = prompted[0] if direction == "both" else prompted[-1]
            end = 0 if max_frames is None else max(0, s - max_frames)
            if direction == "both" and s == 0:
                pass  # nothing before the first frame
            else:
                passes.append((s, True, s - end + 1))
        total = sum(n for _, _, n in passes)
        done = 0
        for start, reverse, n in passes:
            self._ensure_segmented(start)
            for out in self.model.propagate_in_video_iterator(
                self.state, start_frame_idx=start, max_frame_num_to_track=n - 1, reverse=reverse
            ):
                done += 1
                result = self._record(out)
                if progress is not None:
                    progress(done, total)
                yield result
        self.stale = False

    def _ensure_segmented(self, frame: int) -> None:
        # The core propagates from a frame only after the prompted frames were segmented; every
        # prompt call does that, so nothing is needed unless prompts were added but not run.
        if self.state.obj_with_new_inputs:
            self._record(self.model(inference_session=self.state, frame_idx=frame))

    def track(self, direction: str = "forward", progress: Progress | None = None) -> VideoMasks:
        """Propagate all the way and return `results` (every frame's masks)."""
        for _ in self.propagate(direction, progress=progress):
            pass
        return self.results

    def close(self) -> None:
        """Free the session's frames, memories and decoder."""
        self.state.reset_inference_session()
        self.results.clear()
        self.reader.close()

    def __enter__(self) -> VideoSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.size
        return f"VideoSession(frames={self.num_frames}, size={h}x{w}, objects={self.object_ids})"


def check_video_prompts(prompts: Any) -> dict[int, dict]:
    """{obj_id: dict(frame=..., points=..., labels=..., box=..., mask=...)}, checked for shape."""
    allowed = {"frame", "points", "labels", "box", "mask"}
    if not isinstance(prompts, Mapping) or not prompts:
        raise ValueError(
            "prompts must be a non-empty dict {obj_id: dict(frame=0, points=[(x, y)], labels=[1], box=..., "
            f"mask=...)}}, got {prompts!r}"
        )
    out = {}
    for obj_id, prompt in prompts.items():
        if not isinstance(obj_id, (int, np.integer)) or isinstance(obj_id, bool):
            raise ValueError(f"object ids must be ints, got {obj_id!r}")
        if not isinstance(prompt, Mapping):
            raise ValueError(f"the prompt of object {obj_id} must be a dict, got {type(prompt).__name__}")
        unknown = set(prompt) - allowed
        if unknown:
            raise ValueError(
                f"object {obj_id}: unknown prompt keys {sorted(unknown)}; expected {sorted(allowed)}"
            )
        out[int(obj_id)] = dict(prompt)
    return out
