"""Video tracking results: one frame's masks (`VideoFrameMasks`) and a compact store of every
frame's masks (`VideoMasks`, COCO RLE per object and frame) with its exports."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .atomic import write_atomically
from .coco import DEFAULT_CATEGORY, video_annotation, youtube_vis_dataset
from .results import masks_to_boxes, overlay_masks, palette
from .rle import mask_to_rle, rle_to_mask
from .video_export import write_annotated_mp4, write_png_zip
from .video_io import VideoLike, VideoReader

__all__ = ["VideoFrameMasks", "VideoMasks", "object_color"]


def object_color(obj_id: int) -> tuple[int, int, int]:
    """The display colour (R, G, B) of object `obj_id` (object 1 gets the first palette colour)."""
    return palette(int(obj_id) - 1)


@dataclass
class VideoFrameMasks:
    """The tracked objects on one frame.

    frame_idx: the frame. object_ids: ids of the objects, in the order of `masks`.
    masks: (N, H, W) bool at the video's size. scores: (N,) float32: for clicked objects the
    probability that the object is visible on this frame (the tracker's object score, through a
    sigmoid); for objects found by a phrase the detection score they were found with.
    phrases: object id -> the phrase that found it (`track_concept`, `VideoSession.add_text`);
    clicked objects are absent.
    """

    frame_idx: int
    object_ids: list[int]
    masks: np.ndarray
    scores: np.ndarray
    phrases: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if self.masks.ndim != 3 or not len(self.masks) == len(self.scores) == len(self.object_ids):
            raise ValueError(
                f"masks {self.masks.shape}, scores {self.scores.shape} and object ids {self.object_ids} disagree"
            )
        self.phrases = {int(o): str(p) for o, p in self.phrases.items() if o in self.object_ids}

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
        """One record per object: object_id, segmentation (COCO compressed RLE), area, bbox (XYWH),
        score, and phrase for objects found by a phrase."""
        records = []
        for i, (obj_id, mask) in enumerate(zip(self.object_ids, self.masks)):
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            record = {
                "object_id": int(obj_id),
                "segmentation": mask_to_rle(mask),
                "area": int(mask.sum()),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(self.scores[i]),
            }
            if obj_id in self.phrases:
                record["phrase"] = self.phrases[obj_id]
            records.append(record)
        return records


@dataclass
class VideoMasks:
    """Tracking results of a whole video, held compactly (COCO RLE per object and frame).

    `masks[frame_idx]` → `VideoFrameMasks`; `frames` lists the frames that have results.
    Exports: `to_coco()` / `save_coco_json` (the YouTube-VIS layout video-instance tools read),
    `save_png_zip` (index masks), `save_mp4` (annotated video); `to_json()` / `from_dict` hold every
    frame's records as they are stored (the CLI sends them between processes).
    Reading while another thread adds frames (a propagation) is safe: readers work on a snapshot.
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
        for frame, records in list(self._frames.items()):
            self._frames[frame] = [r for r in records if r["object_id"] != obj_id]

    def clear(self) -> None:
        self._frames.clear()

    @property
    def frames(self) -> list[int]:
        return sorted(self._frames)

    @property
    def object_ids(self) -> list[int]:
        return sorted({r["object_id"] for records in list(self._frames.values()) for r in records})

    @property
    def phrases(self) -> dict[int, str]:
        """Object id -> the phrase that found it, over every frame (clicked objects absent)."""
        return {
            r["object_id"]: r["phrase"]
            for records in list(self._frames.values())
            for r in records
            if "phrase" in r
        }

    @property
    def visible_object_ids(self) -> list[int]:
        """Ids of the objects whose mask is non-empty on at least one frame."""
        return sorted(
            {r["object_id"] for records in list(self._frames.values()) for r in records if r["area"] > 0}
        )

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
            phrases={r["object_id"]: r["phrase"] for r in records if "phrase" in r},
        )

    def __getitem__(self, frame_idx: int) -> VideoFrameMasks:
        result = self.get(frame_idx)
        if result is None:
            raise KeyError(f"frame {frame_idx} has no results; frames with results: {self.frames[:20]}")
        return result

    def to_dict(self) -> dict:
        """{"video": {height, width, num_frames, fps}, "object_ids": [...], "phrases": {id: phrase},
        "frames": [{frame_idx, annotations}]} (annotations carry "phrase" where known)."""
        h, w = self.size
        return {
            "video": {"height": h, "width": w, "num_frames": self.num_frames, "fps": self.fps},
            "object_ids": self.object_ids,
            "phrases": {str(k): v for k, v in sorted(self.phrases.items())},
            "frames": [{"frame_idx": f, "annotations": self._frames[f]} for f in self.frames],
        }

    @classmethod
    def from_dict(cls, data: dict) -> VideoMasks:
        """The results `to_dict` (or the JSON of `save_coco_json`) holds."""
        video = data["video"]
        return cls(
            size=(int(video["height"]), int(video["width"])),
            num_frames=int(video["num_frames"]),
            fps=float(video["fps"]),
            _frames={int(f["frame_idx"]): list(f["annotations"]) for f in data["frames"]},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_coco(self, name: str = "video") -> dict:
        """The YouTube-VIS file of these results (layout in `sam3_sdk.coco`): one annotation per
        object with one RLE per frame (null where the object has no mask on that frame or the frame
        was not tracked); frame t is named `<name>/<t:05d>.jpg`; an object found by a phrase has
        that phrase as its category, a clicked one "object"."""
        h, w = self.size
        phrases = self.phrases
        annotations = []
        for obj_id in self.object_ids:
            masks: list[np.ndarray | None] = [None] * self.num_frames
            scores: list[float | None] = [None] * self.num_frames
            for frame, records in self._frames.items():
                for r in records:
                    if r["object_id"] == obj_id and 0 <= frame < self.num_frames:
                        masks[frame], scores[frame] = rle_to_mask(r["segmentation"]), r["score"]
            category = phrases.get(obj_id, DEFAULT_CATEGORY)
            annotations.append(video_annotation(obj_id, masks, scores, category))
        video = {"file_names": [f"{name}/{t:05d}.jpg" for t in range(self.num_frames)], "height": h,
                 "width": w, "length": self.num_frames, "fps": self.fps}  # fmt: skip
        return youtube_vis_dataset(video, annotations)

    def save_coco_json(self, path: str | os.PathLike, name: str = "video") -> Path:
        """`to_coco` as a JSON file (written atomically)."""
        return write_atomically(path, json.dumps(self.to_coco(name)).encode())

    def save_png_zip(self, path: str | os.PathLike) -> Path:
        """A zip of `frame_000000.png` index masks (pixel value = object id), one per frame with results."""
        return write_png_zip(self, path)

    def save_mp4(self, path: str | os.PathLike, video: VideoLike | VideoReader, **kwargs: Any) -> Path:
        """The video with the masks drawn in (H.264, yuv420p); see `video_export.write_annotated_mp4`."""
        return write_annotated_mp4(video, self, path, **kwargs)
