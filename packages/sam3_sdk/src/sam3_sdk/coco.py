"""The files people's tools read: COCO instance annotations for images and the YouTube-VIS layout
for videos. The SDK's exports (`Instances.to_coco`, `VideoMasks.to_coco`), the CLI's annotations
and the demo's downloads all go through these functions, so the layouts cannot drift apart.

COCO (`pycocotools.coco.COCO` loads it):

    {"info", "images": [{id, file_name, height, width}],
     "annotations": [{id, image_id, category_id, segmentation (compressed RLE), area, bbox, iscrowd, score}],
     "categories": [{id, name}]}

YouTube-VIS (one annotation per tracked object, one entry per frame; `pycocotools.mask.decode`
reads each RLE):

    {"info", "videos": [{id, file_names, height, width, length}],
     "annotations": [{id, video_id, category_id, object_id, segmentations: [RLE | null per frame],
                      areas: [int | null], bboxes: [XYWH | null], iscrowd, score}],
     "categories": [{id, name}]}

Boxes are the masks' own tight boxes (XYWH pixels, width counting pixels as pycocotools' `toBbox`
does), so a box never leaves the image and always agrees with its segmentation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .rle import mask_to_rle

__all__ = [
    "DEFAULT_CATEGORY",
    "annotation",
    "coco_dataset",
    "mask_bbox",
    "video_annotation",
    "youtube_vis_dataset",
]

DEFAULT_CATEGORY = "object"  # the category of masks found without a phrase (clicks, segment everything)
INFO = {"description": "SAM 3 predictions", "version": "1.0"}


def mask_bbox(mask: np.ndarray) -> list[float]:
    """(H, W) bool mask → its tight box [x, y, width, height] in pixels; [0, 0, 0, 0] when empty."""
    mask = np.asarray(mask, dtype=bool)
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x1, x2, y1, y2 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def annotation(mask: np.ndarray, score: float, **extra) -> dict:
    """One instance's COCO fields without ids: segmentation (compressed RLE), area, bbox (the mask's
    box, XYWH), iscrowd 0, score; `extra` fields (e.g. category, stability_score) are added as given."""
    mask = np.asarray(mask, dtype=bool)
    return {
        "segmentation": mask_to_rle(mask),
        "area": int(mask.sum()),
        "bbox": mask_bbox(mask),
        "iscrowd": 0,
        "score": float(score),
        **extra,
    }


def _category_ids(names: Iterable[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name in names:
        ids.setdefault(str(name), len(ids) + 1)
    return ids


def coco_dataset(images: Sequence[dict], annotations: Sequence[dict], categories: Iterable[str] = ()) -> dict:
    """A COCO instances file.

    images: {id, file_name, height, width, ...}. annotations: `annotation` records with `image_id`
    and `category` (a name); ids are given in order from 1 and the name becomes a `category_id`.
    categories: names in the order their ids are given (names only met in `annotations` follow).
    """
    category_ids = _category_ids([*categories, *(a["category"] for a in annotations)])
    out = []
    for i, record in enumerate(annotations):
        record = dict(record)
        category = record.pop("category")
        record.setdefault("iscrowd", 0)
        out.append({"id": i + 1, "image_id": record.pop("image_id"), "category_id": category_ids[category],
                    **record})  # fmt: skip
    return {
        "info": INFO,
        "images": [dict(image) for image in images],
        "annotations": out,
        "categories": [{"id": i, "name": name} for name, i in category_ids.items()],
    }


def video_annotation(
    object_id: int, masks: Sequence[np.ndarray | None], scores: Sequence[float | None], category: str
) -> dict:
    """One tracked object over a video, without ids: masks[t] is its (H, W) bool mask on frame t, or
    None where it has no result; an empty mask is written as null too (the object is not there).
    score: the mean of its scores on the frames where it is seen."""
    segmentations, areas, bboxes, seen = [], [], [], []
    for mask, score in zip(masks, scores, strict=True):
        if mask is None or not mask.any():
            segmentations.append(None)
            areas.append(None)
            bboxes.append(None)
            continue
        segmentations.append(mask_to_rle(mask))
        areas.append(int(mask.sum()))
        bboxes.append(mask_bbox(mask))
        seen.append(float(score))
    return {
        "object_id": int(object_id),
        "category": category,
        "segmentations": segmentations,
        "areas": areas,
        "bboxes": bboxes,
        "iscrowd": 0,
        "score": float(np.mean(seen)) if seen else 0.0,
    }


def youtube_vis_dataset(video: dict, annotations: Sequence[dict], categories: Iterable[str] = ()) -> dict:
    """A YouTube-VIS file of one video. video: {file_names, height, width, length, ...} (its id is 1);
    annotations: `video_annotation` records; categories as in `coco_dataset`."""
    category_ids = _category_ids([*categories, *(a["category"] for a in annotations)])
    out = []
    for i, record in enumerate(annotations):
        record = dict(record)
        category = record.pop("category")
        out.append({"id": i + 1, "video_id": 1, "category_id": category_ids[category], **record})
    return {
        "info": INFO,
        "videos": [{"id": 1, **video}],
        "annotations": out,
        "categories": [{"id": i, "name": name} for name, i in category_ids.items()],
    }
