"""What each command computes: `ImageJob` (concept, object, everything) for a batch of decoded
images and `VideoJob` (track) for one video; both run the SDK's predictors through `Sam3`, and
both the local runner and the Ray replicas call them, so a run gives the same records anywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sam3_core.checkpoint import read_config, resolve_checkpoint_dir

from ..features import ImageFeatures
from ..model import CONCEPT_ONLY_MODEL_TYPES, Sam3
from ..results import Instances
from ..testing import resolve_name
from ..tracking import track_concept
from ..video_export import write_annotated_mp4
from ..video_io import open_video
from ..video_results import VideoMasks
from .inputs import Decoded, InputFile
from .outputs import ImageResult, VideoResult, image_result

__all__ = ["EXEMPLAR_CATEGORY", "OBJECT_CATEGORY", "ImageJob", "VideoJob", "load_sam", "tracker_problem"]

OBJECT_CATEGORY = "object"  # the category of `object` and `everything` masks
EXEMPLAR_CATEGORY = "exemplar"  # the category of a concept given by example boxes only

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_sam(
    model: str,
    device: str | None = None,
    dtype: str = "float32",
    video_model: str | None = None,
    tracker_model: str | None = None,
) -> Sam3:
    """`Sam3` from a hub id, a folder, or a random checkpoint's name (`tiny-random`,
    `tiny-random-litetext`: offline, random weights, resolved here, at the CLI's edge, by
    `sam3_sdk.testing`); video_model: the checkpoint clicks are tracked with (default: SAM 3's own
    tracker; `tiny-random-edgetam` too is resolved here); tracker_model: for a SAM3-LiteText
    `model` (no tracker of its own), the SAM 3 checkpoint whose tracker serves clicks and video."""
    extra = {} if tracker_model is None else {"tracker_model": resolve_name(tracker_model)}
    return Sam3.from_pretrained(
        resolve_name(model),
        device=device,
        dtype=DTYPES[dtype],
        video_model=resolve_name(video_model),
        **extra,
    )


def _model_type(model: str) -> str | None:
    """The `model_type` of a checkpoint's config (only its JSON files are fetched from the hub), or
    None when it cannot be read: then loading it fails, and `load_sam`'s error says why."""
    try:
        return read_config(resolve_checkpoint_dir(resolve_name(model), allow_patterns=("*.json",))).get(
            "model_type"
        )
    except Exception:  # missing folder, no network, gated repo, bad config: reported by the load
        return None


def tracker_problem(model: str, tracker_model: str | None, job: ImageJob | VideoJob) -> str | None:
    """What is wrong with `--model` / `--tracker-model` for `job`, in the CLI's words, or None:
    a SAM3-LiteText checkpoint (no tracker) for a job that needs SAM 3's tracker and no
    --tracker-model, or a --tracker-model with a checkpoint that has its own tracker. Checked on
    the config before any weights load (the SDK would raise the same, naming its keyword)."""
    if tracker_model is None and not job.needs_tracker:
        return None
    model_type = _model_type(model)
    if model_type is None:
        return None
    concept_only = model_type in CONCEPT_ONLY_MODEL_TYPES
    if tracker_model is None and concept_only:
        what = job.settings()["command"]
        return (
            f"{what} needs SAM 3's tracker, which --model {model!r} does not have (a SAM3-LiteText "
            "checkpoint, concept segmentation only); add it with --tracker-model facebook/sam3 (or set "
            "$SAM3_TRACKER_MODEL; tiny-random for an offline run with random weights)"
        )
    if tracker_model is not None and not concept_only:
        return (
            f"--tracker-model {tracker_model!r} is for checkpoints without a tracker (SAM3-LiteText); "
            f"--model {model!r} is a {model_type!r} checkpoint with its own: leave --tracker-model out "
            "(and unset $SAM3_TRACKER_MODEL)"
        )
    return None


@dataclass(frozen=True)
class ImageJob:
    """One image command and its prompts. Coordinates are pixels of each image."""

    command: str  # "concept", "object" or "everything"
    texts: tuple[str, ...] = ()
    boxes: tuple[tuple[float, float, float, float, int], ...] = ()  # x1, y1, x2, y2, label (1 / 0)
    points: tuple[tuple[float, float, int], ...] = ()  # x, y, label (1 / 0)
    threshold: float = 0.5
    points_per_side: int = 32
    points_per_batch: int = 64
    stability_threshold: float = 0.95
    min_area: int = 0
    overlay: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ImageJob:
        """The job of parsed arguments; ValueError when the prompts cannot make one."""
        if args.command == "concept":
            texts = tuple(" ".join(t.split()) for t in args.text)
            if any(not t for t in texts):
                raise ValueError("--text is empty; give a short noun phrase such as 'yellow school bus'")
            if not texts and not args.box:
                raise ValueError("concept needs --text PHRASE and/or --box x1,y1,x2,y2 (an example)")
            return cls(
                "concept", texts=texts, boxes=tuple(args.box), threshold=args.threshold, overlay=args.overlay
            )
        if args.command == "object":
            if not args.point and args.box is None:
                raise ValueError("object needs --point x,y and/or --box x1,y1,x2,y2")
            if args.box is not None and args.box[4] == 0:
                raise ValueError("object: the --box of an object cannot be negative (:neg)")
            boxes = (args.box,) if args.box is not None else ()
            return cls(
                "object",
                points=tuple(args.point),
                boxes=boxes,
                threshold=args.threshold,
                overlay=args.overlay,
            )
        return cls(
            "everything", threshold=args.threshold, points_per_side=args.points_per_side,
            points_per_batch=args.points_per_batch, stability_threshold=args.stability_threshold,
            min_area=args.min_area, overlay=args.overlay,
        )  # fmt: skip

    def settings(self) -> dict:
        return asdict(self)

    @property
    def needs_tracker(self) -> bool:
        """Whether SAM 3's tracker runs this job (clicks, boxes, the everything grid)."""
        return self.command != "concept"

    @property
    def categories(self) -> list[str]:
        if self.command == "concept":
            return list(self.texts) or [EXEMPLAR_CATEGORY]
        return [OBJECT_CATEGORY]

    def predict(self, sam: Sam3, image: ImageFeatures) -> list[tuple[str, Instances]]:
        """The instances of each category on one image."""
        if self.command == "concept":
            boxes = [b[:4] for b in self.boxes] or None
            labels = [b[4] for b in self.boxes] or None
            return [
                (
                    category,
                    sam.segment_concept(
                        image, text=text, boxes=boxes, box_labels=labels, threshold=self.threshold
                    ),
                )
                for category, text in zip(self.categories, self.texts or (None,))
            ]
        if self.command == "object":
            found = sam.segment_object(
                image,
                points=[p[:2] for p in self.points] or None,
                labels=[p[2] for p in self.points] or None,
                box=self.boxes[0][:4] if self.boxes else None,
            )
            keep = slice(0, 1) if found.score >= self.threshold else slice(0, 0)  # the best candidate
            best = Instances(found.masks[keep], found.scores[keep], found.boxes[keep], prompt=found.prompt)
            return [(OBJECT_CATEGORY, best)]
        found = sam.generate_masks(
            image, points_per_side=self.points_per_side, points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.threshold, stability_score_thresh=self.stability_threshold,
            min_mask_region_area=self.min_area,
        )  # fmt: skip
        return [(OBJECT_CATEGORY, found)]

    @torch.inference_mode()
    def run_batch(self, sam: Sam3, batch: list[Decoded]) -> list[ImageResult | str]:
        """Each decoded image's `ImageResult`, or a sentence saying why it failed.

        The backbone runs once on the whole batch, (B, 3, S, S) → (B, C, h, w); each image's slice
        seeds its feature entry, so the heads that follow find it done.
        """
        out: list[ImageResult | str] = [d.error or "" for d in batch]
        good = [i for i, d in enumerate(batch) if d.error is None]
        if not good:
            return out
        entries = [sam.feature_store.get(batch[i].image) for i in good]
        pixels = torch.stack([batch[i].pixels for i in good]).to(sam.device, sam.dtype)  # (B, 3, S, S)
        maps = sam.feature_store.vision.backbone_map(pixels)  # (B, C, h, w)
        for j, entry in enumerate(entries):
            if entry.backbone_map is None:
                entry.backbone_map = maps[j : j + 1]
        for i, entry in zip(good, entries):
            try:
                found = self.predict(sam, entry)
                out[i] = image_result(batch[i].item, batch[i].image, found, self.overlay)
            except Exception as e:  # e.g. a prompt outside this image: this image fails, the batch goes on
                out[i] = f"{type(e).__name__}: {e}"
        return out


@dataclass(frozen=True)
class VideoJob:
    """Objects prompted on frames, or every instance of phrases, tracked through each video."""

    prompts: tuple[
        tuple[int, int, tuple, tuple, tuple | None], ...
    ] = ()  # obj_id, frame, points, labels, box
    direction: str = "forward"
    mp4: bool = True
    texts: tuple[str, ...] = ()  # phrases: every instance found and tracked (instead of prompts)
    threshold: float | None = None  # with texts: the score a detection needs to start a track
    video_model: str | None = None  # the checkpoint prompts are tracked with (None: SAM 3's)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> VideoJob:
        """The job of `sam3 track`'s ordered --obj / --point / --box; ValueError when they cannot make one."""
        texts = tuple(" ".join(t.split()) for t in args.text)
        if any(not t for t in texts):
            raise ValueError("--text is empty; give a short noun phrase such as 'person'")
        if texts:
            if args.video_prompts:
                raise ValueError(
                    "give either --text (every instance of a phrase) or --point / --box, not both"
                )
            if args.video_model is not None:
                raise ValueError("--video-model tracks clicks; phrases (--text) need SAM 3's own tracker")
            return cls(texts=texts, threshold=args.threshold, direction=args.direction, mp4=not args.no_mp4)
        if args.threshold is not None:
            raise ValueError("--threshold applies to --text (the detection score); clicks take no threshold")
        objects: dict[int, dict[str, Any]] = {}
        current = 1
        for kind, value in args.video_prompts:
            if kind == "obj":
                current = value
                continue
            prompt = objects.setdefault(current, {"frame": value[0], "points": [], "labels": [], "box": None})
            if value[0] != prompt["frame"]:
                raise ValueError(
                    f"object {current} has prompts on frames {prompt['frame']} and {value[0]}; give each "
                    "object's prompts on one frame (or start another object with --obj ID)"
                )
            if kind == "point":
                prompt["points"].append(value[1:3])
                prompt["labels"].append(value[3])
            elif prompt["box"] is not None:
                raise ValueError(f"object {current} has two --box prompts; one box per object")
            else:
                prompt["box"] = tuple(value[1:])
        if not objects:
            raise ValueError("track needs --point FRAME:x,y or --box FRAME:x1,y1,x2,y2 (with --obj ID)")
        prompts = tuple(
            (obj_id, p["frame"], tuple(p["points"]), tuple(p["labels"]), p["box"])
            for obj_id, p in sorted(objects.items())
        )
        return cls(
            prompts=prompts, direction=args.direction, mp4=not args.no_mp4, video_model=args.video_model
        )

    def settings(self) -> dict:
        return {"command": "track", **asdict(self)}

    @property
    def needs_tracker(self) -> bool:
        """Whether SAM 3's tracker runs this job: phrases always, clicks unless --video-model."""
        return self.video_model is None

    def prompt_dict(self) -> dict[int, dict]:
        """{obj_id: dict(frame, points, labels, box)} for `Sam3.track_object`."""
        return {
            obj_id: {
                "frame": frame,
                "points": list(points) or None,
                "labels": list(labels) or None,
                "box": box,
            }
            for obj_id, frame, points, labels, box in self.prompts
        }

    def run(
        self,
        sam: Sam3,
        item: InputFile,
        mp4_path: Path | None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> VideoResult:
        """Track the objects (or the phrases' instances) through `item`; the annotated MP4 goes to
        `mp4_path` (when set)."""
        reader = open_video(item.path)
        masks = VideoMasks(size=reader.size, num_frames=len(reader), fps=reader.fps)
        if self.texts:
            concepts = sam.concept_video_predictor
            if self.threshold is not None:
                floor = min(concepts.model.settings.score_threshold_detection, self.threshold)
                concepts = concepts.with_settings(
                    new_det_thresh=self.threshold, score_threshold_detection=floor
                )
            frames = track_concept(
                concepts, reader, list(self.texts), direction=self.direction, progress=progress
            )
        else:
            frames = sam.track_object(reader, self.prompt_dict(), direction=self.direction, progress=progress)
        for frame in frames:
            masks.add(frame)
        if mp4_path is not None:
            write_annotated_mp4(item.path, masks, mp4_path)
        return VideoResult(
            key=item.key, index=item.index, file_name=item.name, masks_json=masks.to_json(),
            objects=masks.object_ids, frames=len(masks), source=item.source,
        )  # fmt: skip
